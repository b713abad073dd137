package resource

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/store"
)

// Binding declares a resource: channels-api's ResourceBinding. Fill it in as
// a struct literal and pass it to New.
type Binding[T any] struct {
	// Stream is the name clients put in a frame's "stream". Required;
	// letters, digits, '_', '-' and '.'.
	Stream string
	// Model is the label pushes carry, "app.model" style. Required.
	Model string
	// ID points at the object's id. Required.
	ID func(*T) *string
	// Fields is the serializer, in output order (after "id").
	Fields []Field[T]
	// Permissions must all allow an action (DRF's has_permission, before
	// the object is read). nil means the application's default
	// (Settings.Permissions).
	Permissions []Permission
	// ObjectPermissions must all allow an action on an object (DRF's
	// has_object_permission): checked after Permissions, on the object as
	// stored before a detail action, as it would be stored for a create,
	// and on every pushed image for every subscriber, with action
	// "retrieve".
	ObjectPermissions []ObjectPermission[T]
	// Scope confines each caller to its own objects (OwnedBy: a user's
	// own). The zero Scope leaves the binding unscoped.
	Scope Scope[T]
	// Actions are the custom actions, found by their wire name.
	Actions []Action[T]
	// ReadOnly offers only retrieve and list (and the custom actions), as
	// channels-api's ReadOnlyResourceBinding.
	ReadOnly bool
	// NewID makes ids of new objects. nil means Settings.NewID.
	NewID func(now time.Time) string
	// PageSize overrides Settings.PageSize for this binding when positive.
	PageSize int
	// OnCreate runs after a create is validated and before it is stored: set
	// server-side fields here (owner, timestamps). An error aborts the create.
	OnCreate func(c *Call[T], obj *T) error
	// OnUpdate runs after an update or patch is validated and before it is
	// stored.
	OnUpdate func(c *Call[T], obj *T) error
}

// Action is a custom action: channels-api's @detail_action and @list_action.
type Action[T any] struct {
	name   string
	detail bool
	run    func(c *Call[T]) (any, int, error)
}

// DetailAction declares an action on one object: Call.PK carries its pk. The
// name is the wire name, free of the Go function's. run returns the reply's
// data and status (0 means 200), or an error (NotFound, Invalid,
// PermissionDenied, or any other for a 500).
//
// The data is written as follows: json.RawMessage as it is, *T or T through
// the serializer; nil, bools, strings, numbers, and slices and string-keyed
// maps of those as encoding/json would write them; an Appender by its own
// AppendJSON. Other types answer 500: guests carry no reflection-based
// encoder (see RATIONALE.md), so give such a type an AppendJSON method, or
// marshal it yourself and return json.RawMessage.
func DetailAction[T any](name string, run func(c *Call[T]) (any, int, error)) Action[T] {
	return Action[T]{name: name, detail: true, run: run}
}

// ListAction declares an action on the collection. See DetailAction.
func ListAction[T any](name string, run func(c *Call[T]) (any, int, error)) Action[T] {
	return Action[T]{name: name, run: run}
}

// The built-in actions.
const (
	actionCreate      = "create"
	actionRetrieve    = "retrieve"
	actionUpdate      = "update"
	actionPatch       = "patch"
	actionDelete      = "delete"
	actionList        = "list"
	actionSubscribe   = "subscribe"
	actionUnsubscribe = "unsubscribe"
)

var builtins = []string{actionCreate, actionRetrieve, actionUpdate, actionPatch, actionDelete, actionList, actionSubscribe, actionUnsubscribe}

// Handler is a compiled binding, ready to serve. It is not generic, so a
// registry holds bindings of any type. Its methods other than Stream and
// Model are for wsbind's router.
type Handler struct {
	stream, model string
	b             served
}

// served is what a Binding[T] compiles to.
type served interface {
	serve(ctx context.Context, s *Settings, st store.Store, req call.Request) (call.Result, error)
	images(old, new []byte) (call.Images, error)
	list() []call.Action
	describe() []call.Field
	pageSize(s *Settings) int
	permissions(s *Settings) []Permission
}

// New compiles a binding. It checks the declaration, so a typo fails at
// start rather than on the first message.
func New[T any](def Binding[T]) (*Handler, error) {
	if err := checkName("stream", def.Stream); err != nil {
		return nil, err
	}
	if i := strings.IndexByte(def.Model, '.'); i <= 0 || i == len(def.Model)-1 {
		return nil, fmt.Errorf("binding %s: model %q is not \"app.model\"", def.Stream, def.Model)
	}
	if def.ID == nil {
		return nil, fmt.Errorf("binding %s: no ID accessor", def.Stream)
	}
	b := &binding[T]{def: def, actions: map[string]Action[T]{}}
	seen := map[string]bool{"id": true}
	for _, f := range def.Fields {
		if f.parse == nil {
			return nil, fmt.Errorf("binding %s: field %q was not built with a field constructor", def.Stream, f.name)
		}
		if f.name == "" || seen[f.name] {
			return nil, fmt.Errorf("binding %s: field %q is empty or declared twice", def.Stream, f.name)
		}
		if f.name[0] == '_' {
			return nil, fmt.Errorf("binding %s: field %q: names starting with '_' are reserved for the store's own attributes", def.Stream, f.name)
		}
		if f.opts.readOnly && f.opts.writeOnly {
			return nil, fmt.Errorf("binding %s: field %q is read-only and write-only", def.Stream, f.name)
		}
		seen[f.name] = true
	}
	if err := b.compileFields(); err != nil {
		return nil, err
	}
	if (def.Scope.Key == nil) != (def.Scope.Of == nil) {
		return nil, fmt.Errorf("binding %s: a Scope needs both Key and Of", def.Stream)
	}
	for _, p := range def.ObjectPermissions {
		if p == nil {
			return nil, fmt.Errorf("binding %s: nil object permission", def.Stream)
		}
	}
	for _, a := range def.Actions {
		if a.run == nil || a.name == "" {
			return nil, fmt.Errorf("binding %s: action %q has no name or no function", def.Stream, a.name)
		}
		if slices.Contains(builtins, a.name) || b.actions[a.name].run != nil {
			return nil, fmt.Errorf("binding %s: action %q declared twice or shadows a built-in", def.Stream, a.name)
		}
		b.actions[a.name] = a
	}
	return &Handler{stream: def.Stream, model: def.Model, b: b}, nil
}

// MustNew is New for package-level declarations: it panics on error.
func MustNew[T any](def Binding[T]) *Handler {
	h, err := New(def)
	if err != nil {
		panic("wsbind: " + err.Error())
	}
	return h
}

func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("binding: empty %s", what)
	}
	if len(s) > 128 {
		return fmt.Errorf("binding: %s %q is longer than 128 bytes", what, s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("binding: %s %q: only letters, digits, '_', '-' and '.' are allowed", what, s)
		}
	}
	return nil
}

// Stream is the binding's stream name.
func (h *Handler) Stream() string { return h.stream }

// Model is the binding's model label.
func (h *Handler) Model() string { return h.model }

// Serve runs one request: permission, then the action, then the object,
// then validation, as channels-api orders them. Failures come back as
// *apierr.Error (or plain errors, which mean 500).
func (h *Handler) Serve(ctx context.Context, s *Settings, st store.Store, req call.Request) (call.Result, error) {
	return h.b.serve(ctx, s, st, req)
}

// Images prepares a change's stored images (nil where absent) for
// fan-out: their wire form, and who may see them.
func (h *Handler) Images(old, new []byte) (call.Images, error) { return h.b.images(old, new) }

// Actions lists the actions the binding offers: built-ins first, then the
// custom ones in declaration order.
func (h *Handler) Actions() []call.Action { return h.b.list() }

// Fields describes the objects' fields for tools: "id" first, then the
// declared fields in output order, each with its kind and options.
func (h *Handler) Fields() []call.Field { return h.b.describe() }

// PageSize is the most objects a list page holds under the settings.
func (h *Handler) PageSize(s *Settings) int { return h.b.pageSize(s) }

// Allowed reports whether the binding's permissions (or the settings'
// default) let user run action on pk.
func (h *Handler) Allowed(s *Settings, user User, action, pk string) bool {
	return allowed(h.b.permissions(s), user, action, pk)
}

// Appender is a value that writes its own JSON, appending to dst. Return
// one from a custom action to send a Go type without reflection.
type Appender interface {
	AppendJSON(dst []byte) []byte
}

// compileFields indexes the fields by name and checks each one's options
// against its kind, and its Default as input.
func (b *binding[T]) compileFields() error {
	b.fields = make(map[string]*Field[T], len(b.def.Fields))
	for i := range b.def.Fields {
		f := &b.def.Fields[i]
		b.fields[f.name] = f
		for _, opt := range f.opts.set {
			if kinds := fits[opt]; !slices.Contains(kinds, f.kind) {
				return fmt.Errorf("binding %s: field %q: %s does not apply to a field of kind %s", b.def.Stream, f.name, opt, f.kind)
			}
		}
		if f.opts.def == nil {
			continue
		}
		if f.opts.required {
			return fmt.Errorf("binding %s: field %q is Required and has a Default", b.def.Stream, f.name)
		}
		if len(f.opts.def) == 0 {
			return fmt.Errorf("binding %s: field %q: the Default has no JSON form", b.def.Stream, f.name)
		}
		if msgs := f.parse(f.opts.def, new(T)); len(msgs) > 0 {
			return fmt.Errorf("binding %s: field %q: Default %s: %s", b.def.Stream, f.name, f.opts.def, strings.Join(msgs, " "))
		}
	}
	return nil
}

// kindTypes names each kind as call.Field.Type does.
var kindTypes = [...]string{kindString: "string", kindInt: "integer", kindFloat: "number", kindBool: "boolean", kindTime: "date-time", kindJSON: "json"}

func (b *binding[T]) describe() []call.Field {
	out := []call.Field{{Name: "id", Type: "string", PK: true, ReadOnly: true, MaxLength: -1, MinLength: -1}}
	for _, f := range b.def.Fields {
		var def []byte
		if f.opts.def != nil {
			// The default as it is stored: New checked that it parses.
			obj := new(T)
			f.parse(f.opts.def, obj)
			def = f.appendTo(nil, obj)
		}
		out = append(out, describeField(f.name, f.kind, &f.opts, def))
	}
	return out
}

// describeField is the non-generic part of describe, compiled once.
func describeField(name string, k kind, o *fieldOptions, def []byte) call.Field {
	return call.Field{
		Name: name, Type: kindTypes[k],
		Required: o.required, ReadOnly: o.readOnly, WriteOnly: o.writeOnly,
		MaxLength: o.maxLength, MinLength: o.minLength,
		Minimum: clonePtr(o.minValue), Maximum: clonePtr(o.maxValue),
		Choices:   slices.Clone(o.choices),
		Default:   def,
		AllowNull: o.allowNull, AllowBlank: o.allowBlank, NoTrim: o.noTrim,
	}
}

func clonePtr(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func (b *binding[T]) list() []call.Action {
	var out []call.Action
	for _, name := range builtins {
		if b.offers(name) {
			detail := name == actionRetrieve || name == actionUpdate || name == actionPatch || name == actionDelete
			out = append(out, call.Action{Name: name, Detail: detail})
		}
	}
	for _, a := range b.def.Actions {
		out = append(out, call.Action{Name: a.name, Detail: a.detail, Custom: true})
	}
	return out
}
