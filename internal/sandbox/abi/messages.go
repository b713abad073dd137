package abi

import (
	"time"

	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/store"
)

// User: ID (String), role count (U64) and the roles (String) in order,
// claim count (U64), then key, value (String) pairs in the order given.
// ID comes first, so a reader that wants only the id stops there.
func (w *Writer) User(u identity.User) {
	w.String(u.ID)
	w.U64(uint64(len(u.Roles)))
	for _, role := range u.Roles {
		w.String(role)
	}
	w.U64(uint64(len(u.Claims)))
	for k, v := range u.Claims {
		w.String(k)
		w.String(v)
	}
}

// User reads what Writer.User wrote. No roles read as nil Roles, no
// claims as nil Claims.
func (r *Reader) User() identity.User { return r.user(nil) }

// user reads a User, sharing its roles through in when in is not nil.
func (r *Reader) user(in *Interner) identity.User {
	u := identity.User{ID: r.String()}
	start := r.b
	n := r.U64()
	if n > uint64(len(r.b)) { // each role takes at least 4 bytes
		r.err = ErrShort
		return u
	}
	if n > 0 {
		if in != nil {
			// The role list's bytes, read without copying, find a list
			// decoded before.
			end := r.b
			for range n {
				r.Bytes()
			}
			raw := start[:len(start)-len(r.b)]
			if roles, ok := in.roles[string(raw)]; ok {
				u.Roles = roles
			} else {
				sub := NewReader(end)
				u.Roles = make([]string, 0, n)
				for range n {
					u.Roles = append(u.Roles, in.String(sub.Bytes()))
				}
				in.roles[string(raw)] = u.Roles
			}
		} else {
			u.Roles = make([]string, 0, n)
			for range n {
				u.Roles = append(u.Roles, r.String())
			}
		}
	}
	n = r.U64()
	if n > uint64(len(r.b)) { // each claim takes at least 8 bytes
		r.err = ErrShort
		return u
	}
	for range n {
		if u.Claims == nil {
			u.Claims = make(map[string]string, n)
		}
		k := r.String()
		u.Claims[k] = r.String()
	}
	return u
}

// Interner shares the values that repeat across the records of one
// result: a fan-out reads thousands of subscriptions that name a few
// topics, filters and role lists, and decodes each of those once. Role
// lists are shared between users: never modify one.
type Interner struct {
	strs  map[string]string
	roles map[string][]string
}

// NewInterner returns an empty Interner.
func NewInterner() *Interner {
	return &Interner{strs: map[string]string{}, roles: map[string][]string{}}
}

// String returns b as a string, the same string for the same bytes.
func (in *Interner) String(b []byte) string {
	if s, ok := in.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	in.strs[s] = s
	return s
}

// Part: Stream, Scope (String), All (Bool).
func (w *Writer) Part(p store.Part) {
	w.String(p.Stream)
	w.String(p.Scope)
	w.Bool(p.All)
}

// Part reads what Writer.Part wrote.
func (r *Reader) Part() store.Part {
	return store.Part{Stream: r.String(), Scope: r.String(), All: r.Bool()}
}

// Item: ID, Scope (String), Version (U64), Data (Bytes).
func (w *Writer) Item(it store.Item) {
	w.String(it.ID)
	w.String(it.Scope)
	w.U64(uint64(it.Version))
	w.Bytes(it.Data)
}

// Item reads what Writer.Item wrote. Data aliases the buffer.
func (r *Reader) Item() store.Item {
	return store.Item{ID: r.String(), Scope: r.String(), Version: int64(r.U64()), Data: r.Bytes()}
}

// Subscription: Topic, ConnID, Filter (String), User.
func (w *Writer) Subscription(s store.Subscription) {
	w.String(s.Topic)
	w.String(s.ConnID)
	w.String(s.Filter)
	w.User(s.User)
}

// Subscription reads what Writer.Subscription wrote.
func (r *Reader) Subscription() store.Subscription {
	return store.Subscription{Topic: r.String(), ConnID: r.String(), Filter: r.String(), User: r.User()}
}

// SubscriptionInterned is Subscription, sharing topics, filters and role
// lists through in.
func (r *Reader) SubscriptionInterned(in *Interner) store.Subscription {
	s := store.Subscription{Topic: in.String(r.Bytes()), ConnID: r.String()}
	s.Filter = in.String(r.Bytes())
	s.User = r.user(in)
	return s
}

// Message is the route function's input: one frame from one connection.
type Message struct {
	ConnID string
	User   identity.User
	Frame  []byte
}

// Encode appends ConnID (String), User, Frame (Bytes).
func (m *Message) Encode(w *Writer) {
	w.String(m.ConnID)
	w.User(m.User)
	w.Bytes(m.Frame)
}

// Decode reads what Encode wrote.
func (m *Message) Decode(r *Reader) error {
	m.ConnID, m.User, m.Frame = r.String(), r.User(), r.Bytes()
	return r.Done()
}

// Change kinds: what a committed write did, as pushes name it.
const (
	KindCreate = "create"
	KindUpdate = "update"
	KindDelete = "delete"
)

// Change is the streamfanout function's input: one committed write. Stream
// is the binding's stream (a scoped item's scope is not part of it); Kind
// is KindCreate, KindUpdate or KindDelete; Old is nil on create, New nil
// on delete. Version is the object's version after the change: the
// stored version for create and update, the one after the last for
// delete; 0 when the images carry none (an item written by another tool).
type Change struct {
	Stream, PK, Kind string
	Old, New         []byte
	Version          int64
	// Scope is the object's scope key ("" unscoped); At its history
	// position in Unix ms (store.Change's).
	Scope string
	At    int64
}

// Encode appends Stream, PK, Kind (String), then for Old and New a
// presence flag (Bool) and, when present, the image (Bytes), then
// Version (U64), Scope (String) and At (U64).
func (c *Change) Encode(w *Writer) {
	w.String(c.Stream)
	w.String(c.PK)
	w.String(c.Kind)
	for _, img := range [2][]byte{c.Old, c.New} {
		w.Bool(img != nil)
		if img != nil {
			w.Bytes(img)
		}
	}
	w.U64(uint64(c.Version))
	w.String(c.Scope)
	w.U64(uint64(c.At))
}

// Decode reads what Encode wrote, and nothing after it.
func (c *Change) Decode(r *Reader) error {
	c.Read(r)
	return r.Done()
}

// Read reads one change Encode wrote, as one of several in a message;
// the reader's error says whether it could.
func (c *Change) Read(r *Reader) {
	c.Stream, c.PK, c.Kind = r.String(), r.String(), r.String()
	c.Old, c.New = nil, nil
	if r.Bool() {
		c.Old = r.Bytes()
	}
	if r.Bool() {
		c.New = r.Bytes()
	}
	c.Version = int64(r.U64())
	c.Scope = r.String()
	c.At = int64(r.U64())
}

// Connection event kinds.
const (
	EventConnect    = "connect"
	EventDisconnect = "disconnect"
)

// ConnEvent is the connect function's input, and FuncConnPut's request.
type ConnEvent struct {
	Kind   string // EventConnect or EventDisconnect
	ConnID string
	User   identity.User
	// At is the event's time in Unix milliseconds.
	At int64
}

// Encode appends Kind, ConnID (String), User, At (U64).
func (e *ConnEvent) Encode(w *Writer) {
	w.String(e.Kind)
	w.String(e.ConnID)
	w.User(e.User)
	w.U64(uint64(e.At))
}

// Decode reads what Encode wrote.
func (e *ConnEvent) Decode(r *Reader) error {
	e.Kind, e.ConnID, e.User, e.At = r.String(), r.String(), r.User(), int64(r.U64())
	return r.Done()
}

// Outcome is what the streamfanout and connect functions answer: a Status
// (U64) and a message (String) for the log when it is not OK. For connect,
// a Status other than OK refuses the connection.
type Outcome struct {
	Status  Status
	Message string
}

// Encode appends Status (U64) and Message (String).
func (o *Outcome) Encode(w *Writer) {
	w.U64(uint64(o.Status))
	w.String(o.Message)
}

// Decode reads what Encode wrote.
func (o *Outcome) Decode(r *Reader) error {
	o.Status, o.Message = Status(r.U64()), r.String()
	return r.Done()
}

// Claim: Fresh (Bool), Stream, Action (String), Lease and Expires (U64,
// Unix milliseconds), then a presence flag (Bool) and the Reply (Bytes).
func (w *Writer) Claim(c store.Claim) {
	w.Bool(c.Fresh)
	w.String(c.Stream)
	w.String(c.Action)
	w.U64(uint64(c.Lease.UnixMilli()))
	w.U64(uint64(c.Expires.UnixMilli()))
	w.Bool(c.Reply != nil)
	if c.Reply != nil {
		w.Bytes(c.Reply)
	}
}

// Claim reads what Writer.Claim wrote.
func (r *Reader) Claim() store.Claim {
	var c store.Claim
	c.Fresh = r.Bool()
	c.Stream, c.Action = r.String(), r.String()
	c.Lease = time.UnixMilli(int64(r.U64()))
	c.Expires = time.UnixMilli(int64(r.U64()))
	if r.Bool() {
		c.Reply = r.Bytes()
		if c.Reply == nil {
			c.Reply = []byte{}
		}
	}
	return c
}
