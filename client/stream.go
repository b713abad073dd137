package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Stream makes requests on one stream. Every method takes a context,
// bounded further by Options.Timeout, and returns the reply as a Result
// or the refusal as an *Error.
//
// Writes (Create, Update, Patch, Delete, Action) carry an
// idempotency_key, a new one per call unless IdempotencyKey gives one:
// when the connection ends before the reply, the client sends the same
// request again on the next connection, and the server runs it at most
// once. Reads are sent again as they are.
type Stream struct {
	c    *Client
	name string
}

// Name is the stream's name.
func (st *Stream) Name() string { return st.name }

// Result is a successful reply.
type Result struct {
	// Action is the action answered; Status the reply's response_status
	// (200, or 201 for a create, or a custom action's own).
	Action string
	Status int
	// Data is the reply's data as received: the object, a page's array,
	// a custom action's answer. Null when Truncated.
	Data json.RawMessage
	// PK is the object's pk: the reply's pk, or else data's "id".
	PK string
	// Version is the object's version after the request
	// (docs/protocol.md §8); 0 when the reply has none (a list, most
	// custom list actions).
	Version int64
	// Cursor is a list reply's position, to subscribe with Since after
	// listing; "" from a server without cursors.
	Cursor string
	// Truncated: a committed write whose object was too large to echo;
	// Data is null, PK and Version say what was written.
	Truncated bool
}

// Decode unmarshals Data into v.
func (r *Result) Decode(v any) error { return json.Unmarshal(r.Data, v) }

// CallOption adjusts one request: IfVersion, IdempotencyKey.
type CallOption struct{ apply func(*outPayload) }

// IfVersion makes an update, patch, delete or custom detail action
// conditional: the server answers 409 and changes nothing unless the
// object is at version v (docs/protocol.md §8).
func IfVersion(v int64) CallOption {
	return CallOption{func(p *outPayload) { p.IfVersion = &v }}
}

// IdempotencyKey sets the write's idempotency_key (1 to 128
// characters) instead of a new random one: give your own to retry a
// write yourself, after a timeout or a restart, with the same key.
func IdempotencyKey(key string) CallOption {
	return CallOption{func(p *outPayload) { p.IdempotencyKey = key }}
}

// NewIdempotencyKey returns a new random key, as the client makes for
// each write that has none.
func NewIdempotencyKey() string { return rand.Text() }

// Create creates an object from data (any value encoding/json marshals
// to a JSON object, or a json.RawMessage).
func (st *Stream) Create(ctx context.Context, data any, opts ...CallOption) (*Result, error) {
	return st.write(ctx, "create", nil, data, opts)
}

// Retrieve reads the object pk.
func (st *Stream) Retrieve(ctx context.Context, pk string, opts ...CallOption) (*Result, error) {
	return st.read(ctx, "retrieve", &pk, nil, opts)
}

// Update replaces the object pk's fields with data (every required
// field).
func (st *Stream) Update(ctx context.Context, pk string, data any, opts ...CallOption) (*Result, error) {
	return st.write(ctx, "update", &pk, data, opts)
}

// Patch changes only the fields data has.
func (st *Stream) Patch(ctx context.Context, pk string, data any, opts ...CallOption) (*Result, error) {
	return st.write(ctx, "patch", &pk, data, opts)
}

// Delete deletes the object pk.
func (st *Stream) Delete(ctx context.Context, pk string, opts ...CallOption) (*Result, error) {
	return st.write(ctx, "delete", &pk, nil, opts)
}

// List reads page page (from 1; 0 means the first) of the objects.
// Past the last page the server answers 404 "Invalid page.".
func (st *Stream) List(ctx context.Context, page int, opts ...CallOption) (*Result, error) {
	var data any
	if page > 0 {
		data = map[string]int{"page": page}
	}
	return st.read(ctx, "list", nil, data, opts)
}

// ListAfter reads the page of the objects whose pks sort after pk (a
// keyset page, docs/protocol.md §3); "" reads the first page. Give it
// the last pk of the page before: unlike a page number, it goes on from
// there whatever was deleted or created before it. Past the last object
// the page is empty; a page shorter than the first is the last.
func (st *Stream) ListAfter(ctx context.Context, pk string, opts ...CallOption) (*Result, error) {
	var data any
	if pk != "" {
		data = map[string]string{"after": pk}
	}
	return st.read(ctx, "list", nil, data, opts)
}

// Action calls the custom action name, on the object pk for a detail
// action or with pk "" for a list action, with data (nil for none). It
// is sent as a write: with an idempotency key, and again after a
// reconnect.
func (st *Stream) Action(ctx context.Context, name, pk string, data any, opts ...CallOption) (*Result, error) {
	var p *string
	if pk != "" {
		p = &pk
	}
	return st.write(ctx, name, p, data, opts)
}

func (st *Stream) read(ctx context.Context, action string, pk *string, data any, opts []CallOption) (*Result, error) {
	r, err := st.request(action, pk, data, opts)
	if err != nil {
		return nil, err
	}
	return st.result(st.c.do(ctx, r))
}

func (st *Stream) write(ctx context.Context, action string, pk *string, data any, opts []CallOption) (*Result, error) {
	r, err := st.request(action, pk, data, opts)
	if err != nil {
		return nil, err
	}
	if r.payload.IdempotencyKey == "" {
		r.payload.IdempotencyKey = NewIdempotencyKey()
	}
	return st.result(st.c.do(ctx, r))
}

func (st *Stream) request(action string, pk *string, data any, opts []CallOption) (*request, error) {
	r := &request{stream: st.name, payload: outPayload{Action: action, PK: pk}}
	if data != nil {
		raw, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("wsbind client: %s %s: data: %w", st.name, action, err)
		}
		r.payload.Data = raw
	}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&r.payload)
		}
	}
	if n := utf8.RuneCountInString(r.payload.IdempotencyKey); n > 128 {
		return nil, fmt.Errorf("wsbind client: idempotency key of %d characters, the limit is 128", n)
	}
	return r, nil
}

func (st *Stream) result(p *inPayload, err error) (*Result, error) {
	if err != nil {
		return nil, err
	}
	r := &Result{
		Action:    p.Action,
		Status:    *p.Status,
		Data:      p.Data,
		PK:        pkString(p.PK),
		Version:   p.Version,
		Cursor:    p.Cursor,
		Truncated: p.Truncated,
	}
	if r.PK == "" {
		r.PK = objectID(p.Data)
	}
	return r, nil
}
