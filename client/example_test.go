package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/wsbind/wsbind/client"
)

// A session with the local emulator (`make run`): create a question,
// follow its updates, publish it.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://127.0.0.1:8080/", client.Options{
		// Called before every connection: return a fresh token here.
		Token:   func(context.Context) (string, error) { return "", nil },
		Timeout: 5 * time.Second,
		OnState: func(s client.State) { log.Println("connection:", s) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	questions := c.Stream("questions")
	r, err := questions.Create(ctx, map[string]any{"question_text": "Why?"})
	if err != nil {
		log.Fatal(err)
	}
	var q struct {
		ID   string `json:"id"`
		Text string `json:"question_text"`
	}
	if err := r.Decode(&q); err != nil {
		log.Fatal(err)
	}

	sub, err := questions.Subscribe(ctx, client.Sub{Action: "update", PK: r.PK})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Unsubscribe(ctx)

	// Only if nobody changed it since we read it.
	if _, err := questions.Action(ctx, "publish", r.PK, nil, client.IfVersion(r.Version)); err != nil {
		log.Fatal(err)
	}
	ev, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	switch {
	case ev.Gap:
		log.Println("changes missed while reconnecting: retrieve it again")
	default:
		log.Printf("%s %s is at version %d", ev.Action, ev.PK, ev.Version)
	}
}

// A live copy of the published questions.
func ExampleStream_Snapshot() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://127.0.0.1:8080/", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	sn, err := c.Stream("questions").Snapshot(ctx, map[string]any{"published": true})
	if err != nil {
		log.Fatal(err)
	}
	defer sn.Close(ctx)
	for {
		for _, o := range sn.Objects() {
			log.Println(o.PK, o.Version, string(o.Data))
		}
		<-sn.Changed()
	}
}

// The server's refusals are *Error values.
func ExampleError() {
	var err error = &client.Error{
		Stream: "questions", Action: "create", Status: 400,
		Fields: map[string][]string{"question_text": {"This field is required."}},
	}
	var e *client.Error
	if errors.As(err, &e) && e.Status == 400 {
		fmt.Println(e.Fields["question_text"][0])
		fmt.Println(err)
	}
	// Output:
	// This field is required.
	// wsbind: questions create: 400: question_text: This field is required.
}
