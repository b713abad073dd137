package resource_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wsbind/wsbind/internal/backend/memory"
	"github.com/wsbind/wsbind/resource"
)

type Book struct {
	ID     string
	Title  string
	Pages  int
	Secret string
}

func ExampleNew() {
	books := resource.MustNew(resource.Binding[Book]{
		Stream: "books",
		Model:  "library.book",
		ID:     func(b *Book) *string { return &b.ID },
		Fields: []resource.Field[Book]{
			resource.String("title", func(b *Book) *string { return &b.Title }, resource.Required(), resource.MaxLength(100)),
			resource.Int("pages", func(b *Book) *int { return &b.Pages }, resource.MinValue(1)),
			resource.String("secret", func(b *Book) *string { return &b.Secret }, resource.WriteOnly()),
		},
		NewID: func(time.Time) string { return "b1" },
		Actions: []resource.Action[Book]{
			resource.ListAction("count", func(c *resource.Call[Book]) (any, int, error) {
				n, err := c.Count()
				return map[string]int{"books": n}, 200, err
			}),
		},
	})
	env := resource.Env{Store: memory.New()}
	ctx := context.Background()

	res, _ := books.Serve(ctx, env, resource.Request{Action: "create", Data: []byte(`{"title":"Dune","pages":"412","secret":"x"}`)})
	fmt.Println(res.Status, string(res.Data))

	_, err := books.Serve(ctx, env, resource.Request{Action: "create", Data: []byte(`{"pages":0}`)})
	fmt.Println(resource.CodeOf(err).Status(), resource.AsError(err).Fields())

	res, _ = books.Serve(ctx, env, resource.Request{Action: "count"})
	fmt.Println(res.Status, string(res.Data))
	// Output:
	// 201 {"id":"b1","title":"Dune","pages":412}
	// 400 [{title [This field is required.]} {pages [Ensure this value is greater than or equal to 1.]}]
	// 200 {"books":1}
}
