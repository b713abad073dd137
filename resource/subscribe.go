package resource

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/core/store"
)

// maxFilter bounds a filter's canonical text: it is part of the
// subscription's key, which DynamoDB limits to 1,024 bytes.
const maxFilter = 512

var subscribable = map[string]bool{actionCreate: true, actionUpdate: true, actionDelete: true}

// subscribe records (or, for unsubscribe, removes) the subscription that
// data describes: {"action": ..., "filter": {...}} and the call's pk.
func (c *Call[T]) subscribe(remove bool) (call.Result, error) {
	var m []jsonv.Member
	if jsonv.KindOf(c.Data) == jsonv.Object {
		m, _ = jsonv.ParseObject(c.Data)
	}
	raw, ok := jsonv.Lookup(m, "action")
	if !ok || jsonv.KindOf(raw) == jsonv.Null {
		return call.Result{}, apierr.Invalid("action required")
	}
	action, ok := jsonv.Unquote(raw)
	if !ok || !subscribable[action] {
		return call.Result{}, apierr.Invalid("Invalid subscription action")
	}
	var filter string
	if raw, ok := jsonv.Lookup(m, "filter"); ok && jsonv.KindOf(raw) != jsonv.Null {
		var err error
		if filter, err = c.b.canonicalFilter(raw); err != nil {
			return call.Result{}, err
		}
	}
	var since int64
	if raw, ok := jsonv.Lookup(m, "since"); ok && jsonv.KindOf(raw) != jsonv.Null && !remove {
		text, ok := jsonv.Unquote(raw)
		if since, ok = parseCursor(text, ok); !ok {
			return call.Result{}, apierr.InvalidFields(FieldError{Field: "since", Messages: []string{"Not a valid cursor."}})
		}
	}
	sub := store.Subscription{Topic: store.Topic(c.b.def.Stream, action, c.PK), ConnID: c.ConnID, Filter: filter, User: c.User}
	var err error
	if remove {
		err = c.store.Unsubscribe(c.Context, sub)
	} else {
		err = c.store.Subscribe(c.Context, sub)
	}
	if err != nil {
		return call.Result{}, apierr.Internal(err)
	}
	res := call.Result{Status: 200, Data: append(jsonv.AppendString([]byte(`{"action":`), action), '}')}
	if since > 0 {
		// Registered first, then replayed: a change the fan-out misses
		// for want of this subscription is in the history by then.
		res.Resume = &call.Resume{Sub: sub, Part: c.view.part, From: since}
	}
	return res, nil
}

// parseCursor reads a since that was a JSON string.
func parseCursor(text string, isString bool) (int64, bool) {
	if !isString {
		return 0, false
	}
	return store.ParseCursor(text)
}

func filterError(msg string) error {
	return apierr.InvalidFields(FieldError{Field: "filter", Messages: []string{msg}})
}

// canonicalFilter checks a filter, {"field": value, ...}, and writes it
// with its members in name order and its values compact: the text that
// names the subscription, so that unsubscribe finds it.
func (b *binding[T]) canonicalFilter(raw []byte) (string, error) {
	if jsonv.KindOf(raw) != jsonv.Object {
		return "", filterError("Expected an object of field names to values.")
	}
	m, ok := jsonv.ParseObject(raw)
	if !ok {
		return "", filterError("Expected an object of field names to values.")
	}
	type pair struct {
		name  string
		value []byte
	}
	pairs := make([]pair, 0, len(m))
	for _, mem := range m {
		name := mem.Key()
		if name != "id" {
			f, ok := b.fields[name]
			switch {
			case !ok:
				return "", filterError(strconv.Quote(name) + " is not a field.")
			case f.opts.writeOnly:
				return "", filterError(strconv.Quote(name) + " is a write-only field.")
			case f.kind == kindJSON:
				return "", filterError(strconv.Quote(name) + " is not a scalar field.")
			}
		}
		v, ok := canonicalScalar(mem.Value)
		if !ok {
			return "", filterError("The value of " + strconv.Quote(name) + " is not a string, number, boolean or null.")
		}
		pairs = append(pairs, pair{name, v})
	}
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	if len(pairs) == 0 {
		return "", nil // {} filters nothing: the same subscription as no filter
	}
	out := []byte{'{'}
	for i, p := range pairs {
		if i > 0 {
			if pairs[i-1].name == p.name {
				return "", filterError(strconv.Quote(p.name) + " is given twice.")
			}
			out = append(out, ',')
		}
		out = jsonv.AppendString(out, p.name)
		out = append(out, ':')
		out = append(out, p.value...)
	}
	out = append(out, '}')
	if len(out) > maxFilter {
		return "", filterError("Ensure the filter has no more than " + strconv.Itoa(maxFilter) + " bytes.")
	}
	return string(out), nil
}

// canonicalScalar writes a scalar JSON value in one form: strings
// re-escaped, numbers as the shortest float text, literals as they are.
func canonicalScalar(raw []byte) ([]byte, bool) {
	switch jsonv.KindOf(raw) {
	case jsonv.String:
		s, ok := jsonv.Unquote(raw)
		return jsonv.AppendString(nil, s), ok
	case jsonv.Number:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, false
		}
		return strconv.AppendFloat(nil, f, 'g', -1, 64), true
	case jsonv.Bool, jsonv.Null:
		return jsonv.Compact(nil, raw), true
	}
	return nil, false
}

// images is a change prepared for fan-out: each image decoded when a
// check or a push first needs it, its wire form written once, filters
// matched once per distinct filter. A change whose visibility cannot
// depend on its images (no scope, no object permission, no filter) is
// pushed having decoded only the image the push carries, and a replay
// that asks about a change its subscription does not get decodes none.
type images[T any] struct {
	b      *binding[T]
	stored [2][]byte
	obj    [2]*T
	wire   [2][]byte
	read   [2]bool // decoding image i was tried
	err    error   // the first image that could not be read
	// members are the wire forms parsed, for filters (on first use).
	members [2][]jsonv.Member
	parsed  [2]bool
	// matched caches a filter's outcome on each image: 1 yes, 2 no;
	// last is the most recent filter, whose outcome is checked first.
	matched map[string][2]uint8
	last    string
	lastR   [2]uint8
}

func (b *binding[T]) images(old, new []byte) (call.Images, error) {
	return &images[T]{b: b, stored: [2][]byte{old, new}}, nil
}

// object is image i decoded, nil when there is none or it cannot be read
// (Err says why).
func (im *images[T]) object(i int) *T {
	if !im.read[i] {
		im.read[i] = true
		if im.stored[i] != nil {
			obj, err := im.b.decode(im.stored[i])
			if err != nil {
				im.err = cmp.Or(im.err, err)
			} else {
				im.obj[i] = obj
			}
		}
	}
	return im.obj[i]
}

func (im *images[T]) Wire(i int) []byte {
	if im.wire[i] == nil {
		if obj := im.object(i); obj != nil {
			im.wire[i] = im.b.encode(nil, obj, false)
		}
	}
	return im.wire[i]
}

func (im *images[T]) Err() error { return im.err }

func (im *images[T]) Visible(u User, filter string) [2]bool {
	b := im.b
	key, all := "", true
	if b.scoped() {
		key, all = b.def.Scope.Of(u)
	}
	var out [2]bool
	if all && filter == "" && len(b.def.ObjectPermissions) == 0 {
		// Every image there is is visible: none need be read.
		return [2]bool{im.stored[0] != nil, im.stored[1] != nil}
	}
	for i := range im.stored {
		obj := im.object(i)
		if obj == nil {
			continue
		}
		if !all && (key == "" || key != *b.def.Scope.Key(obj)) {
			continue
		}
		if !b.objectAllowed(u, actionRetrieve, obj) {
			continue
		}
		out[i] = filter == "" || im.match(filter, i)
	}
	return out
}

// match reports whether image i has every value the filter names.
func (im *images[T]) match(filter string, i int) bool {
	if filter == im.last && im.lastR[i] != 0 {
		return im.lastR[i] == 1
	}
	if r, ok := im.matched[filter]; ok && r[i] != 0 {
		im.last, im.lastR = filter, r
		return r[i] == 1
	}
	if !im.parsed[i] {
		im.members[i], _ = jsonv.ParseObject(im.Wire(i))
		im.parsed[i] = true
	}
	ok := matchFilter(filter, im.members[i])
	if im.matched == nil {
		im.matched = map[string][2]uint8{}
	}
	r := im.matched[filter]
	r[i] = 2
	if ok {
		r[i] = 1
	}
	im.matched[filter] = r
	im.last, im.lastR = filter, r
	return ok
}

func matchFilter(filter string, obj []jsonv.Member) bool {
	want, ok := jsonv.ParseObject([]byte(filter))
	if !ok {
		return false
	}
	for _, w := range want {
		got, ok := jsonv.Lookup(obj, w.Key())
		if !ok {
			return false
		}
		g, ok := canonicalScalar(got)
		if !ok || string(g) != string(w.Value) {
			return false
		}
	}
	return true
}
