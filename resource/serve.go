package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/jsonw"
)

// binding is a compiled Binding[T].
type binding[T any] struct {
	def     Binding[T]
	actions map[string]Action[T]
}

// writeAttempts bounds the read-modify-write loop of update, patch and
// custom updates when concurrent writers keep winning, and the id retries
// of create.
const writeAttempts = 4

func (b *binding[T]) permissions(s *Settings) []Permission {
	if b.def.Permissions != nil {
		return b.def.Permissions
	}
	return s.Permissions
}

func (b *binding[T]) pageSize(s *Settings) int {
	if b.def.PageSize > 0 {
		return b.def.PageSize
	}
	return s.PageSize
}

func (b *binding[T]) serve(ctx context.Context, env Env, req Request) (Result, error) {
	if env.Settings.PageSize <= 0 || env.Settings.Permissions == nil || env.Settings.NewID == nil {
		env.Settings = env.Settings.withDefaults()
	}
	if req.PK == "" && b.detail(req.Action) {
		req.PK = dataPK(req.Data)
	}
	if !allowed(b.permissions(&env.Settings), req.User, req.Action, req.PK) {
		return Result{}, PermissionDenied()
	}
	c := &Call[T]{Context: ctx, User: req.User, ConnID: req.ConnID, Action: req.Action, PK: req.PK, Data: req.Data, Now: req.Now, b: b, env: env}
	if a, ok := b.actions[req.Action]; ok {
		return c.runCustom(a)
	}
	readOnly := b.def.ReadOnly
	switch {
	case req.Action == ActionRetrieve:
		return c.retrieve()
	case req.Action == ActionList:
		return c.list()
	case req.Action == ActionCreate && !readOnly:
		return c.create()
	case (req.Action == ActionUpdate || req.Action == ActionPatch) && !readOnly:
		return c.update(req.Action == ActionPatch)
	case req.Action == ActionDelete && !readOnly:
		return c.delete()
	case req.Action == ActionSubscribe && !readOnly:
		return c.subscribe()
	}
	return Result{}, InvalidAction()
}

// detail reports whether an action works on one object, and so takes
// data.pk when payload.pk is absent.
func (b *binding[T]) detail(action string) bool {
	switch action {
	case ActionRetrieve, ActionUpdate, ActionPatch, ActionDelete, ActionSubscribe:
		return true
	}
	a, ok := b.actions[action]
	return ok && a.detail
}

// dataPK reads data.pk: a string, or an integer as its decimal text. Any
// other value names no object.
func dataPK(data json.RawMessage) string {
	if jsonw.KindOf(data) != jsonw.Object {
		return ""
	}
	m, _ := jsonw.ParseObject(data)
	raw, _ := jsonw.Lookup(m, "pk")
	pk, _ := jsonw.Key(raw)
	return pk
}

// Call is one action in progress: who asked, for what, and typed access to
// the binding's objects. Custom actions and hooks receive it.
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

	b   *binding[T]
	env Env
}

func (c *Call[T]) store() Store { return c.env.Store }

// Get loads the object with the pk; a missing one is NotFound().
func (c *Call[T]) Get(pk string) (*T, error) {
	obj, _, err := c.get(pk)
	return obj, err
}

func (c *Call[T]) get(pk string) (*T, int64, error) {
	if pk == "" {
		return nil, 0, NotFound()
	}
	it, err := c.store().Get(c.Context, c.b.def.Stream, pk)
	if errors.Is(err, ErrNotFound) {
		return nil, 0, NotFound()
	}
	if err != nil {
		return nil, 0, Internal(err)
	}
	obj, err := c.b.decode(it.Data)
	if err != nil {
		return nil, 0, Internal(err)
	}
	return obj, it.Version, nil
}

// Update loads the object, lets change modify it, and stores it only if no
// one else wrote it meanwhile; when someone did, it starts over with the
// fresh object (a few times, then Conflict). It returns the stored object.
func (c *Call[T]) Update(pk string, change func(obj *T) error) (*T, error) {
	for range writeAttempts {
		obj, version, err := c.get(pk)
		if err != nil {
			return nil, err
		}
		if err := change(obj); err != nil {
			return nil, err
		}
		*c.b.def.ID(obj) = pk
		_, err = c.store().Replace(c.Context, c.b.def.Stream, Item{ID: pk, Version: version, Data: c.b.encode(nil, obj, true)})
		switch {
		case err == nil:
			return obj, nil
		case errors.Is(err, ErrNotFound):
			return nil, NotFound()
		case !errors.Is(err, ErrConflict):
			return nil, Internal(err)
		}
	}
	return nil, Conflict("The object was changed by another request; try again.")
}

// Count reports how many objects the binding's stream holds.
func (c *Call[T]) Count() (int, error) {
	n, err := c.store().Count(c.Context, c.b.def.Stream)
	if err != nil {
		return 0, Internal(err)
	}
	return n, nil
}

// Each calls fn for every object in id order, a page at a time, until fn
// returns false.
func (c *Call[T]) Each(fn func(obj *T) bool) error {
	const batch = 100
	for offset := 0; ; offset += batch {
		items, err := c.store().List(c.Context, c.b.def.Stream, offset, batch)
		if err != nil {
			return Internal(err)
		}
		for _, it := range items {
			obj, err := c.b.decode(it.Data)
			if err != nil {
				return Internal(err)
			}
			if !fn(obj) {
				return nil
			}
		}
		if len(items) < batch {
			return nil
		}
	}
}

// Serialize writes obj as the client sees it.
func (c *Call[T]) Serialize(obj *T) json.RawMessage { return c.b.encode(nil, obj, false) }

func (c *Call[T]) runCustom(a Action[T]) (Result, error) {
	if !a.detail {
		c.PK = ""
	}
	v, status, err := a.run(c)
	if err != nil {
		return Result{}, err
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
		if data, ok = jsonw.AppendValue(nil, v); !ok {
			return Result{}, Internal(fmt.Errorf("action %s returned a %T, which has no JSON form here (see resource.Appender)", a.name, v))
		}
	}
	return Result{Status: status, Data: data}, nil
}

func (c *Call[T]) retrieve() (Result, error) {
	obj, err := c.Get(c.PK)
	if err != nil {
		return Result{}, err
	}
	return Result{Status: 200, Data: c.Serialize(obj)}, nil
}

func (c *Call[T]) create() (Result, error) {
	obj := new(T)
	if err := c.b.validate(c.Data, obj, false); err != nil {
		return Result{}, err
	}
	if c.b.def.OnCreate != nil {
		if err := c.b.def.OnCreate(c, obj); err != nil {
			return Result{}, err
		}
	}
	newID := c.b.def.NewID
	if newID == nil {
		newID = c.env.Settings.NewID
	}
	for range writeAttempts {
		id := newID(c.Now)
		*c.b.def.ID(obj) = id
		err := c.store().Create(c.Context, c.b.def.Stream, Item{ID: id, Version: 1, Data: c.b.encode(nil, obj, true)})
		switch {
		case err == nil:
			return Result{Status: 201, Data: c.Serialize(obj)}, nil
		case !errors.Is(err, ErrExists):
			return Result{}, Internal(err)
		}
	}
	return Result{}, InvalidFields(FieldError{Field: "id", Messages: []string{c.b.modelName() + " with this id already exists."}})
}

func (b *binding[T]) modelName() string {
	_, name, _ := strings.Cut(b.def.Model, ".")
	return name
}

func (c *Call[T]) update(partial bool) (Result, error) {
	for range writeAttempts {
		obj, version, err := c.get(c.PK)
		if err != nil {
			return Result{}, err
		}
		if err := c.b.validate(c.Data, obj, partial); err != nil {
			return Result{}, err
		}
		if c.b.def.OnUpdate != nil {
			if err := c.b.def.OnUpdate(c, obj); err != nil {
				return Result{}, err
			}
		}
		*c.b.def.ID(obj) = c.PK
		_, err = c.store().Replace(c.Context, c.b.def.Stream, Item{ID: c.PK, Version: version, Data: c.b.encode(nil, obj, true)})
		switch {
		case err == nil:
			return Result{Status: 200, Data: c.Serialize(obj)}, nil
		case errors.Is(err, ErrNotFound):
			return Result{}, NotFound()
		case !errors.Is(err, ErrConflict):
			return Result{}, Internal(err)
		}
	}
	return Result{}, Conflict("The object was changed by another request; try again.")
}

func (c *Call[T]) delete() (Result, error) {
	if c.PK == "" {
		return Result{}, NotFound()
	}
	_, err := c.store().Delete(c.Context, c.b.def.Stream, c.PK)
	if errors.Is(err, ErrNotFound) {
		return Result{}, NotFound()
	}
	if err != nil {
		return Result{}, Internal(err)
	}
	return Result{Status: 200, Data: []byte("{}")}, nil
}

func (c *Call[T]) list() (Result, error) {
	page, err := pageNumber(c.Data)
	if err != nil {
		return Result{}, err
	}
	size := c.b.pageSize(&c.env.Settings)
	items, err := c.store().List(c.Context, c.b.def.Stream, (page-1)*size, size)
	if err != nil {
		return Result{}, Internal(err)
	}
	if len(items) == 0 && page > 1 {
		return Result{}, InvalidPage()
	}
	capacity := 2
	for _, it := range items {
		capacity += len(it.Data) + 1
	}
	out := append(make([]byte, 0, capacity), '[')
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		obj, err := c.b.decode(it.Data)
		if err != nil {
			return Result{}, Internal(err)
		}
		out = c.b.encode(out, obj, false)
	}
	return Result{Status: 200, Data: append(out, ']')}, nil
}

// maxPage keeps offsets far from overflow.
const maxPage = 1 << 31

// pageNumber reads data.page as Django's paginator does: absent means 1; an
// integer from 1, or a string or number that denotes one.
func pageNumber(data json.RawMessage) (int, error) {
	if len(data) == 0 {
		return 1, nil
	}
	if k := jsonw.KindOf(data); k != jsonw.Object {
		return 0, notADictionary(k)
	}
	m, ok := jsonw.ParseObject(data)
	if !ok {
		return 0, notADictionary(jsonw.Invalid)
	}
	raw, ok := jsonw.Lookup(m, "page")
	if !ok {
		return 1, nil
	}
	text := string(raw)
	switch jsonw.KindOf(raw) {
	case jsonw.Number:
	case jsonw.String:
		if text, ok = jsonw.Unquote(raw); !ok {
			return 0, InvalidPage()
		}
	default:
		return 0, InvalidPage()
	}
	n, ok := parseInteger(text)
	if jsonw.KindOf(raw) == jsonw.String {
		// Django's int(str) takes no fraction or exponent.
		v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		n, ok = v, err == nil
	}
	if !ok || n < 1 || n > maxPage {
		return 0, InvalidPage()
	}
	return int(n), nil
}

var subscribable = map[string]bool{ActionCreate: true, ActionUpdate: true, ActionDelete: true}

func (c *Call[T]) subscribe() (Result, error) {
	var m []jsonw.Member
	if jsonw.KindOf(c.Data) == jsonw.Object {
		m, _ = jsonw.ParseObject(c.Data)
	}
	raw, ok := jsonw.Lookup(m, "action")
	if !ok || jsonw.KindOf(raw) == jsonw.Null {
		return Result{}, Invalid("action required")
	}
	action, ok := jsonw.Unquote(raw)
	if !ok || !subscribable[action] {
		return Result{}, Invalid("Invalid subscription action")
	}
	sub := Subscription{Topic: Topic(c.b.def.Stream, action, c.PK), ConnID: c.ConnID, User: c.User}
	if err := c.store().Subscribe(c.Context, sub); err != nil {
		return Result{}, Internal(err)
	}
	return Result{Status: 200, Data: append(jsonw.AppendString([]byte(`{"action":`), action), '}')}, nil
}
