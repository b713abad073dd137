package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/core/store"
)

// Call is one action in progress: who asked, for what, and typed access to
// the binding's objects, confined to the caller's scope. Custom actions
// and hooks receive it.
type Call[T any] struct {
	Context context.Context
	User    User
	ConnID  string
	Action  string
	// PK is the object of a detail action ("" for list actions).
	PK string
	// Data is payload.data, nil when absent or null.
	Data json.RawMessage
	// Now is when the message is handled.
	Now time.Time

	b        *binding[T]
	settings *Settings
	store    store.Store
	view     view

	// ifVersion is payload.if_version, when hasIfVersion: writes of PK
	// require the object at that version.
	ifVersion    int64
	hasIfVersion bool
	// version is PK's version as last read or written; wrote is set once
	// any write has committed.
	version int64
	wrote   bool
}

// conflict is the error for an object found at another version than the
// request expected.
func conflict(version int64) error {
	return apierr.Conflict("Version conflict: the object is at version " + strconv.FormatInt(version, 10) + ".")
}

// Get loads the object with the pk, as the caller may see it: one outside
// the caller's scope is NotFound(), one the object permissions refuse for
// the call's action is PermissionDenied().
func (c *Call[T]) Get(pk string) (*T, error) {
	obj, _, err := c.get(pk, false)
	return obj, err
}

// get reads the object, checks it against the object permissions for the
// call's action, and returns it with its item. For a write by a caller who
// sees every scope, the item is read again, consistently, where it lives.
func (c *Call[T]) get(pk string, write bool) (*T, store.Item, error) {
	if pk == "" || c.view.none || len(pk) > store.MaxPK {
		return nil, store.Item{}, apierr.NotFound()
	}
	it, err := c.store.Get(c.Context, c.view.part, pk)
	if err == nil && write && c.view.part.All {
		it, err = c.store.Get(c.Context, c.b.part(it.Scope), pk)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Item{}, apierr.NotFound()
	}
	if err != nil {
		return nil, store.Item{}, apierr.Internal(err)
	}
	obj, err := c.b.decode(it.Data)
	if err != nil {
		return nil, store.Item{}, apierr.Internal(err)
	}
	if !c.b.objectAllowed(c.User, c.Action, obj) {
		return nil, store.Item{}, apierr.PermissionDenied()
	}
	if pk == c.PK {
		c.version = it.Version
		if write && c.hasIfVersion && it.Version != c.ifVersion {
			return nil, store.Item{}, conflict(it.Version)
		}
	}
	return obj, it, nil
}

// part is where objects of a scope key are written.
func (b *binding[T]) part(scope string) store.Part {
	return store.Part{Stream: b.def.Stream, Scope: scope}
}

// Update loads the object, lets change modify it, and stores it only if no
// one else wrote it meanwhile; when someone did, it starts over with the
// fresh object (a few times, then 409). It returns the stored object. The
// object must be the caller's to see, and the object permissions must
// allow the call's action on it as it was.
func (c *Call[T]) Update(pk string, change func(obj *T) error) (*T, error) {
	return c.replace(pk, change)
}

func (c *Call[T]) replace(pk string, change func(obj *T) error) (*T, error) {
	for range writeAttempts {
		obj, it, err := c.get(pk, true)
		if err != nil {
			return nil, err
		}
		if err := change(obj); err != nil {
			return nil, err
		}
		if c.b.scoped() && *c.b.def.Scope.Key(obj) != it.Scope {
			return nil, apierr.Invalid("The object's scope cannot change.")
		}
		*c.b.def.ID(obj) = pk
		v, err := c.store.Replace(c.Context, c.b.part(it.Scope), store.Item{ID: pk, Scope: it.Scope, Version: it.Version, Data: c.b.encode(nil, obj, true)})
		switch {
		case err == nil:
			c.wrote = true
			if pk == c.PK {
				c.version = v
			}
			return obj, nil
		case errors.Is(err, store.ErrNotFound):
			return nil, apierr.NotFound()
		case !errors.Is(err, store.ErrConflict):
			return nil, apierr.Internal(err)
		}
	}
	return nil, apierr.Conflict("The object was changed by another request; try again.")
}

// Count reports how many objects the caller's scope holds.
func (c *Call[T]) Count() (int, error) {
	if c.view.none {
		return 0, nil
	}
	n, err := c.store.Count(c.Context, c.view.part)
	if err != nil {
		return 0, apierr.Internal(err)
	}
	return n, nil
}

// Each calls fn for every object of the caller's scope in id order, a page
// at a time, until fn returns false. Each page starts after the last id
// of the one before (a keyset page), so a page costs what it holds and an
// object deleted meanwhile makes Each skip no other.
func (c *Call[T]) Each(fn func(obj *T) bool) error {
	if c.view.none {
		return nil
	}
	const batch = 100
	for after := ""; ; {
		items, err := c.store.List(c.Context, c.view.part, after, 0, batch)
		if err != nil {
			return apierr.Internal(err)
		}
		for _, it := range items {
			obj, err := c.b.decode(it.Data)
			if err != nil {
				return apierr.Internal(err)
			}
			if !fn(obj) {
				return nil
			}
		}
		if len(items) < batch {
			return nil
		}
		after = items[len(items)-1].ID
	}
}

// Serialize writes obj as the client sees it.
func (c *Call[T]) Serialize(obj *T) json.RawMessage { return c.b.encode(nil, obj, false) }

func (c *Call[T]) runCustom(a Action[T]) (call.Result, error) {
	if !a.detail {
		c.PK = ""
	} else if c.b.scoped() || len(c.b.def.ObjectPermissions) > 0 {
		// The object must be the caller's to see and act on before the
		// action runs, whatever the action then reads.
		if _, _, err := c.get(c.PK, false); err != nil {
			return call.Result{}, err
		}
	}
	v, status, err := a.run(c)
	if err != nil {
		return call.Result{}, err
	}
	if status == 0 {
		status = 200
	}
	var data []byte
	switch v := v.(type) {
	case *T:
		data = c.b.encode(nil, v, false)
	case T:
		data = c.b.encode(nil, &v, false)
	default:
		var ok bool
		if data, ok = jsonv.AppendValue(nil, v); !ok {
			return call.Result{}, apierr.Internal(fmt.Errorf("action %s returned a %T, which has no JSON form here (see resource.Appender)", a.name, v))
		}
	}
	res := call.Result{Status: status, Data: data, Write: c.wrote}
	if a.detail {
		res.PK, res.Version = c.PK, c.version
	}
	return res, nil
}

func (c *Call[T]) retrieve() (call.Result, error) {
	obj, err := c.Get(c.PK)
	if err != nil {
		return call.Result{}, err
	}
	return call.Result{Status: 200, Data: c.Serialize(obj), PK: c.PK, Version: c.version}, nil
}

func (c *Call[T]) create() (call.Result, error) {
	obj := new(T)
	if err := c.b.validate(c.Data, obj, false); err != nil {
		return call.Result{}, err
	}
	if c.b.def.OnCreate != nil {
		if err := c.b.def.OnCreate(c, obj); err != nil {
			return call.Result{}, err
		}
	}
	var scope string
	if c.b.scoped() {
		key, all := c.b.def.Scope.Of(c.User)
		objKey := c.b.def.Scope.Key(obj)
		switch {
		case key == "":
			return call.Result{}, apierr.PermissionDenied()
		case *objKey == "":
			*objKey = key
		case *objKey != key && !all:
			return call.Result{}, apierr.PermissionDenied()
		}
		scope = *objKey
	}
	if !c.b.objectAllowed(c.User, c.Action, obj) {
		return call.Result{}, apierr.PermissionDenied()
	}
	newID := c.b.def.NewID
	if newID == nil {
		newID = c.settings.NewID
	}
	for range writeAttempts {
		id := newID(c.Now)
		*c.b.def.ID(obj) = id
		err := c.store.Create(c.Context, c.b.part(scope), store.Item{ID: id, Scope: scope, Version: 1, Data: c.b.encode(nil, obj, true)})
		switch {
		case err == nil:
			c.wrote = true
			return call.Result{Status: 201, Data: c.Serialize(obj), PK: id, Version: 1, Write: true}, nil
		case !errors.Is(err, store.ErrExists):
			return call.Result{}, apierr.Internal(err)
		}
	}
	return call.Result{}, apierr.InvalidFields(FieldError{Field: "id", Messages: []string{c.b.modelName() + " with this id already exists."}})
}

func (b *binding[T]) modelName() string {
	_, name, _ := strings.Cut(b.def.Model, ".")
	return name
}

func (c *Call[T]) update(partial bool) (call.Result, error) {
	obj, err := c.replace(c.PK, func(obj *T) error {
		if err := c.b.validate(c.Data, obj, partial); err != nil {
			return err
		}
		if c.b.def.OnUpdate != nil {
			return c.b.def.OnUpdate(c, obj)
		}
		return nil
	})
	if err != nil {
		return call.Result{}, err
	}
	return call.Result{Status: 200, Data: c.Serialize(obj), PK: c.PK, Version: c.version, Write: true}, nil
}

func (c *Call[T]) delete() (call.Result, error) {
	if c.PK == "" || c.view.none {
		return call.Result{}, apierr.NotFound()
	}
	if len(c.b.def.ObjectPermissions) == 0 && !c.view.part.All && !c.hasIfVersion {
		// The caller's own partition holds the object or nothing: delete
		// it outright.
		it, err := c.store.Delete(c.Context, c.view.part, c.PK, store.AnyVersion)
		return c.deleted(it, err)
	}
	for range writeAttempts {
		_, it, err := c.get(c.PK, true)
		if err != nil {
			return call.Result{}, err
		}
		old, err := c.store.Delete(c.Context, c.b.part(it.Scope), c.PK, it.Version)
		if !errors.Is(err, store.ErrConflict) {
			return c.deleted(old, err)
		}
	}
	return call.Result{}, apierr.Conflict("The object was changed by another request; try again.")
}

// deleted is the reply to a delete that removed old, or failed with err.
// A delete is a write: the object's version is the one after old's.
func (c *Call[T]) deleted(old store.Item, err error) (call.Result, error) {
	if errors.Is(err, store.ErrNotFound) {
		return call.Result{}, apierr.NotFound()
	}
	if err != nil {
		return call.Result{}, apierr.Internal(err)
	}
	c.wrote = true
	res := call.Result{Status: 200, Data: []byte("{}"), PK: c.PK, Write: true}
	if old.Version > 0 {
		res.Version = old.Version + 1
	}
	return res, nil
}

func (c *Call[T]) list() (call.Result, error) {
	page, after, err := listPosition(c.Data)
	if err != nil {
		return call.Result{}, err
	}
	size := c.b.pageSize(c.settings)
	var items []store.Item
	if !c.view.none {
		if items, err = c.store.List(c.Context, c.view.part, after, (page-1)*size, size); err != nil {
			return call.Result{}, apierr.Internal(err)
		}
	}
	// A page of every scope may run on past size, to the end of a run of
	// one id in several scopes. Clients read a page shorter than the first
	// as the end, so the wire page is cut back to size; a client knows one
	// object per pk, and has that pk by then (RATIONALE: "Why keyset pages
	// by pk, with after a parameter of Store.List?").
	items = items[:min(len(items), size)]
	if len(items) == 0 && page > 1 {
		return call.Result{}, apierr.InvalidPage()
	}
	entries := make([]call.Entry, len(items))
	for i, it := range items {
		obj, err := c.b.decode(it.Data)
		if err != nil {
			return call.Result{}, apierr.Internal(err)
		}
		entries[i] = call.Entry{ID: it.ID, Data: c.b.encode(nil, obj, false)}
	}
	return call.Result{Status: 200, Page: entries}, nil
}

// maxPage keeps offsets far from overflow.
const maxPage = 1 << 31

// listPosition reads where a list starts: data.page as Django's paginator
// reads it (absent means 1; an integer from 1, or a string or number that
// denotes one), or data.after, the pk the page starts after (a keyset
// page: the objects whose pk sorts after it). after must be a string of
// 1 to store.MaxPK bytes, alone or with page 1; anything else is 404
// "Invalid cursor.", as DRF's CursorPagination says of a cursor it cannot
// read.
func listPosition(data json.RawMessage) (page int, after string, err error) {
	if len(data) == 0 {
		return 1, "", nil
	}
	if k := jsonv.KindOf(data); k != jsonv.Object {
		return 0, "", notADictionary(k)
	}
	m, ok := jsonv.ParseObject(data)
	if !ok {
		return 0, "", notADictionary(jsonv.Invalid)
	}
	rawPage, hasPage := jsonv.Lookup(m, "page")
	rawAfter, hasAfter := jsonv.Lookup(m, "after")
	if !hasAfter {
		if !hasPage {
			return 1, "", nil
		}
		page, err := pageNumber(rawPage)
		return page, "", err
	}
	if jsonv.KindOf(rawAfter) != jsonv.String {
		return 0, "", apierr.InvalidCursor()
	}
	after, ok = jsonv.Unquote(rawAfter)
	if !ok || after == "" || len(after) > store.MaxPK {
		return 0, "", apierr.InvalidCursor()
	}
	if hasPage {
		if page, err := pageNumber(rawPage); err != nil || page != 1 {
			return 0, "", apierr.InvalidCursor()
		}
	}
	return 1, after, nil
}

// pageNumber reads the value of data.page: an integer from 1, or a string
// or number that denotes one.
func pageNumber(raw json.RawMessage) (int, error) {
	text := string(raw)
	var ok bool
	switch jsonv.KindOf(raw) {
	case jsonv.Number:
	case jsonv.String:
		if text, ok = jsonv.Unquote(raw); !ok {
			return 0, apierr.InvalidPage()
		}
	default:
		return 0, apierr.InvalidPage()
	}
	n, ok := parseInteger(text)
	if jsonv.KindOf(raw) == jsonv.String {
		// Django's int(str) takes no fraction or exponent.
		v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		n, ok = v, err == nil
	}
	if !ok || n < 1 || n > maxPage {
		return 0, apierr.InvalidPage()
	}
	return int(n), nil
}
