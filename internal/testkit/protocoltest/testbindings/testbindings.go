// Package testbindings declares bindings that exercise what the
// application's own bindings do not: every field kind and option, renamed
// and failing custom actions, a read-only binding, a custom permission and
// a per-binding page size. The golden protocol suite serves them beside
// the application's bindings. It is guest code: a test guest links it.
package testbindings

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/resource"
)

// Widget has one field of every kind.
type Widget struct {
	ID     string
	Name   string
	Code   string
	Count  int
	Ratio  float64
	Active bool
	When   time.Time
	Secret string
	Meta   json.RawMessage
	Note   string
}

// Widgets serves stream "widgets".
var Widgets = resource.MustNew(resource.Binding[Widget]{
	Stream: "widgets",
	Model:  "test.widget",
	ID:     func(w *Widget) *string { return &w.ID },
	Fields: []resource.Field[Widget]{
		resource.String("name", func(w *Widget) *string { return &w.Name }, resource.Required(), resource.MinLength(2), resource.MaxLength(10)),
		resource.String("code", func(w *Widget) *string { return &w.Code }, resource.Choices("a", "b")),
		resource.Int("count", func(w *Widget) *int { return &w.Count }, resource.MinValue(0), resource.MaxValue(100)),
		resource.Float("ratio", func(w *Widget) *float64 { return &w.Ratio }, resource.MaxValue(1.5)),
		resource.Bool("active", func(w *Widget) *bool { return &w.Active }),
		resource.Time("when", func(w *Widget) *time.Time { return &w.When }),
		resource.String("secret", func(w *Widget) *string { return &w.Secret }, resource.WriteOnly()),
		resource.JSON("meta", func(w *Widget) *json.RawMessage { return &w.Meta }, resource.AllowNull()),
		resource.String("note", func(w *Widget) *string { return &w.Note }, resource.AllowBlank(), resource.NoTrim()),
	},
	PageSize: 2,
	Actions: []resource.Action[Widget]{
		// The wire names differ from the Go names, as channels-api's name= allowed.
		resource.DetailAction("shout", shoutName),
		resource.ListAction("names", listNames),
		resource.DetailAction("echo", func(c *resource.Call[Widget]) (any, int, error) {
			return map[string]any{"pk": c.PK, "data": c.Data}, 202, nil
		}),
		resource.ListAction("fail_invalid", func(*resource.Call[Widget]) (any, int, error) {
			return nil, 0, resource.Invalid("Widgets are closed.")
		}),
		resource.ListAction("fail_field", func(*resource.Call[Widget]) (any, int, error) {
			return nil, 0, resource.InvalidFields(resource.FieldError{Field: "name", Messages: []string{"Taken."}})
		}),
		resource.DetailAction("fail_notfound", func(c *resource.Call[Widget]) (any, int, error) {
			_, err := c.Get("no-such-" + c.PK)
			return nil, 0, err
		}),
		resource.ListAction("fail_denied", func(*resource.Call[Widget]) (any, int, error) {
			return nil, 0, resource.PermissionDenied()
		}),
		resource.ListAction("fail_internal", func(*resource.Call[Widget]) (any, int, error) {
			return nil, 0, errors.New("database password is hunter2")
		}),
		resource.ListAction("fail_panic", func(*resource.Call[Widget]) (any, int, error) {
			panic("widget exploded")
		}),
		resource.ListAction("huge", func(*resource.Call[Widget]) (any, int, error) {
			return strings.Repeat("x", 140_000), 200, nil
		}),
		resource.ListAction("raw", func(*resource.Call[Widget]) (any, int, error) {
			return json.RawMessage(`{"raw":[1,2.50,"three"]}`), 0, nil
		}),
	},
})

// shoutName is served as "shout": it upper-cases the widget's name.
func shoutName(c *resource.Call[Widget]) (any, int, error) {
	w, err := c.Update(c.PK, func(w *Widget) error {
		w.Name = strings.ToUpper(w.Name)
		return nil
	})
	return w, 200, err
}

// listNames is served as "names": the names of all widgets, in id order.
func listNames(c *resource.Call[Widget]) (any, int, error) {
	names := []string{}
	err := c.Each(func(w *Widget) bool {
		names = append(names, w.Name)
		return true
	})
	return names, 200, err
}

// Label is the one field of the read-only binding.
type Label struct {
	ID   string
	Text string
}

// Labels serves stream "labels", read-only.
var Labels = resource.MustNew(resource.Binding[Label]{
	Stream:   "labels",
	Model:    "test.label",
	ID:       func(l *Label) *string { return &l.ID },
	Fields:   []resource.Field[Label]{resource.String("text", func(l *Label) *string { return &l.Text })},
	ReadOnly: true,
})

// Vault serves stream "vault" under a custom permission: everyone may
// create, list and retrieve; only "admin" may do anything else; nobody may
// touch the object "locked".
var Vault = resource.MustNew(resource.Binding[Label]{
	Stream: "vault",
	Model:  "test.vault",
	ID:     func(l *Label) *string { return &l.ID },
	Fields: []resource.Field[Label]{resource.String("text", func(l *Label) *string { return &l.Text })},
	Permissions: []resource.Permission{resource.PermissionFunc(func(u identity.User, action, pk string) bool {
		if pk == "locked" {
			return false
		}
		switch action {
		case "create", "list", "retrieve":
			return true
		}
		return u.ID == "admin"
	})},
})

// All lists the test bindings.
func All() []*resource.Handler { return []*resource.Handler{Widgets, Labels, Vault} }

// Registry is the golden suite's application: the application's bindings
// and the test bindings, with ids "id0001", "id0002", ... counted from the
// call, so that every target of one case makes the same ids.
func Registry() *resource.Registry {
	var n int
	s := resource.Settings{NewID: func(time.Time) string {
		n++
		return "id" + pad4(n)
	}}
	return bindings.Registry(s).MustRegister(All()...)
}

func pad4(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}
