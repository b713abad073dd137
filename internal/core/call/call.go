// Package call is the contract between the router and a compiled binding:
// one action call in (Request), its reply out (Result). It is guest code:
// the standard library and this module only.
package call

import (
	"encoding/json"
	"time"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
)

// Request is one action call on a binding, decoded from a frame.
type Request struct {
	Action string
	// PK is payload.pk; "" when absent. Detail actions (retrieve, update,
	// patch, delete, subscribe, custom detail actions) fall back to data.pk
	// when it is "", as channels-api's README sends it.
	PK string
	// Data is payload.data; nil when absent or null.
	Data json.RawMessage
	// User is the connection's user; ConnID is the connection.
	User   identity.User
	ConnID string
	// Now is when the message is handled; it stamps ids and timestamps.
	Now time.Time
	// IfVersion, when HasIfVersion, is the version the request expects the
	// object at: a write of PK to an object at another version fails.
	IfVersion    int64
	HasIfVersion bool
}

// Result is a successful action's reply: status and JSON data.
type Result struct {
	Status int
	Data   []byte
	// Version is the object's version after a create or detail action,
	// 0 for none.
	Version int64
	// PK is the object a create or detail action worked on.
	PK string
	// Write marks a committed write: its reply is never an error, so one
	// too large for a message is sent truncated.
	Write bool
	// Page, for a list, holds its entries in order (Data is nil then), so
	// that the reply can truncate the ones that do not fit.
	Page []Entry
	// Cursor, for a list, is the history position of its page.
	Cursor string
	// Resume, for a subscribe with data.since, asks for the changes the
	// subscription missed to be replayed before the reply.
	Resume *Resume
}

// Resume is a subscription to replay from a history position: Sub as
// recorded, Part the objects its caller sees, From the position (Unix
// ms) its cursor names.
type Resume struct {
	Sub  store.Subscription
	Part store.Part
	From int64
}

// Entry is one object of a list page, as clients see it.
type Entry struct {
	ID   string
	Data []byte
}

// Images are a change's two stored images (0: before, 1: after) prepared
// for fan-out by the binding: their wire form, and who may see them.
type Images interface {
	// Wire is image i as clients see it; nil when the change has none.
	Wire(i int) []byte
	// Visible reports whether a subscriber sees each image (0: before,
	// 1: after; false where there is none): the binding's scope and object
	// permissions for the subscriber's user, and the subscription's filter.
	Visible(user identity.User, filter string) [2]bool
	// Err is why an image the checks or Wire needed could not be read
	// (images are read when first needed); the change is then not pushed.
	Err() error
}

// Action describes an action a binding offers.
type Action struct {
	Name   string
	Detail bool // takes a pk
	Custom bool
}

// Field describes one field of a binding's objects as clients see it, for
// tools (the route guest's describe export): its wire name, what it holds,
// and the options it was declared with.
type Field struct {
	Name string
	// Type is what the field holds: "string", "integer", "number",
	// "boolean", "date-time" (an RFC 3339 string) or "json" (any JSON).
	Type string
	// PK marks the object's id, which every binding has, first.
	PK bool
	// Required: create and update must send it. ReadOnly: output only.
	// WriteOnly: input only, never sent.
	Required, ReadOnly, WriteOnly bool
	// MaxLength and MinLength bound a string's characters; -1 when unset.
	MaxLength, MinLength int
	// Minimum and Maximum bound a number; nil when unset.
	Minimum, Maximum *float64
	// Choices are the values allowed, as text (integers in decimal); nil
	// when any value is.
	Choices []string
	// Default is the JSON value a create or update that leaves the field
	// out stores, as the field writes it; nil when there is none.
	Default []byte
	// AllowNull: input may be null (JSON fields only). AllowBlank: a
	// string may be empty. NoTrim: surrounding white space is kept.
	AllowNull, AllowBlank, NoTrim bool
}
