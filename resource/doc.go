// Package resource is how an application declares what wsbind serves: a
// resource binding per stream, as channels-api's ResourceBinding was for
// Django. Declare a Binding as a struct literal (stream, model label, the
// serializer's fields, permissions, custom actions), compile it with New,
// and register it in a Registry; clients then get create, retrieve,
// update, patch, list, delete and subscribe over one WebSocket.
//
//	var Binding = resource.MustNew(resource.Binding[Question]{
//		Stream: "questions",
//		Model:  "polls.question",
//		ID:     func(q *Question) *string { return &q.ID },
//		Fields: []resource.Field[Question]{
//			resource.String("question_text", func(q *Question) *string { return &q.Text },
//				resource.Required(), resource.MaxLength(200)),
//		},
//	})
//
// The package is guest code: it builds for GOOS=wasip1 and imports only
// the standard library. Fields use accessor functions instead of
// reflection, so validation stays fast inside WebAssembly.
package resource
