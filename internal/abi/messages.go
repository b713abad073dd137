package abi

import (
	"github.com/wsbind/wsbind/resource"
)

// User: ID (String), claim count (U64), then key, value (String) pairs in
// the order given.
func (w *Writer) User(u resource.User) {
	w.String(u.ID)
	w.U64(uint64(len(u.Claims)))
	for k, v := range u.Claims {
		w.String(k)
		w.String(v)
	}
}

// User reads what Writer.User wrote.
func (r *Reader) User() resource.User {
	u := resource.User{ID: r.String()}
	n := r.U64()
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

// Item: ID (String), Version (U64), Data (Bytes).
func (w *Writer) Item(it resource.Item) {
	w.String(it.ID)
	w.U64(uint64(it.Version))
	w.Bytes(it.Data)
}

// Item reads what Writer.Item wrote. Data aliases the buffer.
func (r *Reader) Item() resource.Item {
	return resource.Item{ID: r.String(), Version: int64(r.U64()), Data: r.Bytes()}
}

// Subscription: Topic, ConnID (String), User.
func (w *Writer) Subscription(s resource.Subscription) {
	w.String(s.Topic)
	w.String(s.ConnID)
	w.User(s.User)
}

// Subscription reads what Writer.Subscription wrote.
func (r *Reader) Subscription() resource.Subscription {
	return resource.Subscription{Topic: r.String(), ConnID: r.String(), User: r.User()}
}

// Message is the route function's input: one frame from one connection.
type Message struct {
	ConnID string
	User   resource.User
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

// Change is the streamfanout function's input: one committed write. Kind is
// "create", "update" or "delete"; Old is nil on create, New nil on delete.
type Change struct {
	Stream, PK, Kind string
	Old, New         []byte
}

// Encode appends Stream, PK, Kind (String), then for Old and New a
// presence flag (Bool) and, when present, the image (Bytes).
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
}

// Decode reads what Encode wrote.
func (c *Change) Decode(r *Reader) error {
	c.Stream, c.PK, c.Kind = r.String(), r.String(), r.String()
	c.Old, c.New = nil, nil
	if r.Bool() {
		c.Old = r.Bytes()
	}
	if r.Bool() {
		c.New = r.Bytes()
	}
	return r.Done()
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
	User   resource.User
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
