package resource_test

import (
	"fmt"

	"github.com/wsbind/wsbind/resource"
)

type Book struct {
	ID     string
	Title  string
	Pages  int
	Secret string
}

func ExampleNew() {
	books, err := resource.New(resource.Binding[Book]{
		Stream: "books",
		Model:  "library.book",
		ID:     func(b *Book) *string { return &b.ID },
		Fields: []resource.Field[Book]{
			resource.String("title", func(b *Book) *string { return &b.Title }, resource.Required(), resource.MaxLength(100)),
			resource.Int("pages", func(b *Book) *int { return &b.Pages }, resource.MinValue(1), resource.Default(100)),
			resource.String("secret", func(b *Book) *string { return &b.Secret }, resource.WriteOnly()),
		},
		Actions: []resource.Action[Book]{
			resource.ListAction("count", func(c *resource.Call[Book]) (any, int, error) {
				n, err := c.Count()
				return map[string]int{"books": n}, 200, err
			}),
		},
	})
	fmt.Println(books.Stream(), books.Model(), err)

	// Options that do not fit a field's kind fail at New, not on the
	// first message.
	_, err = resource.New(resource.Binding[Book]{
		Stream: "books",
		Model:  "library.book",
		ID:     func(b *Book) *string { return &b.ID },
		Fields: []resource.Field[Book]{
			resource.Int("pages", func(b *Book) *int { return &b.Pages }, resource.MaxLength(5)),
		},
	})
	fmt.Println(err)
	// Output:
	// books library.book <nil>
	// binding books: field "pages": MaxLength does not apply to a field of kind Int
}

type Note struct {
	ID, Owner, Text string
}

// Private notes: each user sees, changes and is pushed only their own;
// users with the "admin" role read everyone's, and change only their own.
func ExampleOwnedBy() {
	notes := resource.MustNew(resource.Binding[Note]{
		Stream: "notes",
		Model:  "notes.note",
		ID:     func(n *Note) *string { return &n.ID },
		Fields: []resource.Field[Note]{
			resource.String("owner", func(n *Note) *string { return &n.Owner }, resource.ReadOnly()),
			resource.String("text", func(n *Note) *string { return &n.Text }, resource.Required()),
		},
		Permissions: []resource.Permission{resource.IsAuthenticated},
		Scope:       resource.OwnedBy(func(n *Note) *string { return &n.Owner }, "admin"),
		ObjectPermissions: []resource.ObjectPermission[Note]{
			func(u resource.User, action string, n *Note) bool {
				return action == "retrieve" || n.Owner == u.ID
			},
		},
	})
	reg := resource.NewRegistry(resource.Settings{}).MustRegister(notes)
	fmt.Println(reg.Streams())
	// Output:
	// [notes]
}
