// Package notes is the notes.note binding on stream "notes": private
// notes. Each note belongs to the user who created it; a user lists,
// reads, changes, deletes and is pushed only their own notes, and users
// with the "admin" role may read everyone's, but change only their own.
package notes

import (
	"strconv"

	"github.com/wsbind/wsbind/resource"
)

// Note is a user's note.
type Note struct {
	ID     string
	Owner  string
	Text   string
	Pinned bool
}

// Count is what the "count" action answers: {"count": N}.
type Count int

// AppendJSON writes the count without reflection (resource.Appender).
func (n Count) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"count":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '}')
}

// AdminRole is the role that reads every user's notes.
const AdminRole = "admin"

// Binding serves stream "notes".
var Binding = resource.MustNew(resource.Binding[Note]{
	Stream: "notes",
	Model:  "notes.note",
	ID:     func(n *Note) *string { return &n.ID },
	Fields: []resource.Field[Note]{
		resource.String("owner", func(n *Note) *string { return &n.Owner }, resource.ReadOnly()),
		resource.String("text", func(n *Note) *string { return &n.Text }, resource.Required()),
		resource.Bool("pinned", func(n *Note) *bool { return &n.Pinned }, resource.Default(false)),
	},
	Permissions: []resource.Permission{resource.IsAuthenticated},
	// Each user's notes are their own; an admin sees everyone's.
	Scope: resource.OwnedBy(func(n *Note) *string { return &n.Owner }, AdminRole),
	// Reading is what the scope allows; writing is the owner's alone.
	ObjectPermissions: []resource.ObjectPermission[Note]{ownerWrites},
	Actions: []resource.Action[Note]{
		resource.DetailAction("pin", pin),
		resource.ListAction("count", count),
	},
})

// pin pins the note and returns it.
func pin(c *resource.Call[Note]) (any, int, error) {
	n, err := c.Update(c.PK, func(n *Note) error {
		n.Pinned = true
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return n, 200, nil
}

// count counts the notes the caller can see: their own, or every user's
// for an admin.
func count(c *resource.Call[Note]) (any, int, error) {
	n, err := c.Count()
	if err != nil {
		return nil, 0, err
	}
	return Count(n), 200, nil
}

// ownerWrites lets anyone who can see a note read it, and only its owner
// change or delete it.
func ownerWrites(u resource.User, action string, n *Note) bool {
	return action == "retrieve" || n.Owner == u.ID
}
