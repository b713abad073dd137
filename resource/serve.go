package resource

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/core/store"
)

// binding is a compiled Binding[T].
type binding[T any] struct {
	def     Binding[T]
	actions map[string]Action[T]
	// fields finds a field by wire name, for filters.
	fields map[string]*Field[T]
}

// writeAttempts bounds the read-modify-write loop of update, patch, delete
// and custom updates when concurrent writers keep winning, and the id
// retries of create.
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

func (b *binding[T]) scoped() bool { return b.def.Scope.Key != nil }

// view is where a caller's reads go: the stream, the caller's scope, or
// every scope; none when the caller has no scope and sees nothing.
type view struct {
	part store.Part
	none bool
}

func (b *binding[T]) viewOf(u User) view {
	p := store.Part{Stream: b.def.Stream}
	if !b.scoped() {
		return view{part: p}
	}
	key, all := b.def.Scope.Of(u)
	switch {
	case all:
		p.All = true
	case key == "":
		return view{part: p, none: true}
	default:
		p.Scope = key
	}
	return view{part: p}
}

// objectAllowed reports whether every object permission lets user run
// action on obj.
func (b *binding[T]) objectAllowed(u User, action string, obj *T) bool {
	for _, p := range b.def.ObjectPermissions {
		if !p(u, action, obj) {
			return false
		}
	}
	return true
}

// offers reports whether the binding has the built-in action.
func (b *binding[T]) offers(action string) bool {
	switch action {
	case actionRetrieve, actionList:
		return true
	case actionCreate, actionUpdate, actionPatch, actionDelete, actionSubscribe, actionUnsubscribe:
		return !b.def.ReadOnly
	}
	return false
}

func (b *binding[T]) serve(ctx context.Context, s *Settings, st store.Store, req call.Request) (call.Result, error) {
	if s == nil || s.PageSize <= 0 || s.Permissions == nil || s.NewID == nil {
		d := Settings{}
		if s != nil {
			d = *s
		}
		d = d.withDefaults()
		s = &d
	}
	if req.PK == "" && b.detail(req.Action) {
		req.PK = dataPK(req.Data)
	}
	if !allowed(b.permissions(s), req.User, req.Action, req.PK) {
		return call.Result{}, apierr.PermissionDenied()
	}
	a, custom := b.actions[req.Action]
	if !custom && !b.offers(req.Action) {
		return call.Result{}, apierr.InvalidAction()
	}
	if len(req.PK) > store.MaxPK && b.detail(req.Action) {
		return call.Result{}, apierr.Invalid("Invalid pk: longer than " + strconv.Itoa(store.MaxPK) + " bytes.")
	}
	c := &Call[T]{Context: ctx, User: req.User, ConnID: req.ConnID, Action: req.Action, PK: req.PK, Data: req.Data, Now: req.Now,
		b: b, settings: s, store: st, view: b.viewOf(req.User),
		ifVersion: req.IfVersion, hasIfVersion: req.HasIfVersion}
	if custom {
		return c.runCustom(a)
	}
	switch req.Action {
	case actionRetrieve:
		return c.retrieve()
	case actionList:
		return c.list()
	case actionCreate:
		return c.create()
	case actionUpdate, actionPatch:
		return c.update(req.Action == actionPatch)
	case actionDelete:
		return c.delete()
	case actionSubscribe:
		return c.subscribe(false)
	default: // actionUnsubscribe
		return c.subscribe(true)
	}
}

// detail reports whether an action works on one object, and so takes
// data.pk when payload.pk is absent.
func (b *binding[T]) detail(action string) bool {
	switch action {
	case actionRetrieve, actionUpdate, actionPatch, actionDelete, actionSubscribe, actionUnsubscribe:
		return true
	}
	a, ok := b.actions[action]
	return ok && a.detail
}

// dataPK reads data.pk: a string, or an integer as its decimal text. Any
// other value names no object.
func dataPK(data json.RawMessage) string {
	if jsonv.KindOf(data) != jsonv.Object {
		return ""
	}
	m, _ := jsonv.ParseObject(data)
	raw, _ := jsonv.Lookup(m, "pk")
	pk, _ := jsonv.Key(raw)
	return pk
}
