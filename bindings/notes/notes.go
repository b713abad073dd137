// Package notes is the notes.note binding on stream "notes": notes that
// only authenticated connections may use, each recording the user who
// created it as its owner.
package notes

import (
	"github.com/wsbind/wsbind/resource"
)

// Note is a user's note.
type Note struct {
	ID    string
	Owner string
	Text  string
}

// Binding serves stream "notes".
var Binding = resource.MustNew(resource.Binding[Note]{
	Stream: "notes",
	Model:  "notes.note",
	ID:     func(n *Note) *string { return &n.ID },
	Fields: []resource.Field[Note]{
		resource.String("owner", func(n *Note) *string { return &n.Owner }, resource.ReadOnly()),
		resource.String("text", func(n *Note) *string { return &n.Text }, resource.Required()),
	},
	Permissions: []resource.Permission{resource.IsAuthenticated},
	OnCreate: func(c *resource.Call[Note], n *Note) error {
		n.Owner = c.User.ID
		return nil
	},
})
