package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestFilterMatches: the client routes a push to a subscription by the
// server's filter rule (docs/protocol.md §4).
func TestFilterMatches(t *testing.T) {
	obj := json.RawMessage(`{"id":"a","count":1,"ratio":0.5,"name":"1","on":true,"none":null,"big":1e3}`)
	for _, tc := range []struct {
		filter map[string]any
		want   bool
	}{
		{nil, true},
		{map[string]any{}, true},
		{map[string]any{"id": "a"}, true},
		{map[string]any{"count": 1}, true},
		{map[string]any{"count": 1.0}, true},
		{map[string]any{"count": json.Number("1.000")}, true},
		{map[string]any{"big": 1000}, true},
		{map[string]any{"ratio": 0.5, "on": true}, true},
		{map[string]any{"none": nil}, true},
		{map[string]any{"count": "1"}, false}, // a string never equals a number
		{map[string]any{"name": 1}, false},
		{map[string]any{"count": 2}, false},
		{map[string]any{"on": false}, false},
		{map[string]any{"on": 1}, false},
		{map[string]any{"none": false}, false},
		{map[string]any{"missing": nil}, false},
		{map[string]any{"id": "a", "count": 2}, false},
	} {
		f, _, err := newFilter(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.matches(obj); got != tc.want {
			t.Errorf("filter %v: matches %v, want %v", tc.filter, got, tc.want)
		}
	}
	// A truncated push (data null) is never withheld.
	f, _, _ := newFilter(map[string]any{"id": "b"})
	if !f.matches(json.RawMessage(`null`)) {
		t.Errorf("null data withheld by a filter")
	}
}

// TestNewError: both DRF shapes of errors become Messages and Fields.
func TestNewError(t *testing.T) {
	e := newError("questions", "create", 400, json.RawMessage(`[{"question_text":["This field is required."],"count":["A.","B."]}]`))
	if len(e.Messages) != 0 || len(e.Fields) != 2 || e.Fields["count"][1] != "B." {
		t.Errorf("field errors: %+v", e)
	}
	if got, want := e.Error(), "wsbind: questions create: 400: count: A. B.; question_text: This field is required."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = newError("questions", "retrieve", 404, json.RawMessage(`["Not found."]`))
	if !e.Has("Not found.") || e.Fields != nil || e.Error() != "wsbind: questions retrieve: 404: Not found." {
		t.Errorf("messages: %+v %q", e, e.Error())
	}
	var err error = fmt.Errorf("wrapped: %w", e)
	var got *Error
	if !errors.As(err, &got) || got.Status != 404 {
		t.Errorf("errors.As through a wrap: %v", err)
	}
	e = newError("s", "a", 500, json.RawMessage(`"odd"`))
	if e.Status != 500 || string(e.Raw) != `"odd"` {
		t.Errorf("unreadable errors: %+v", e)
	}
}

// TestBackoff: full jitter between 0 and min(max, base·2^n).
func TestBackoff(t *testing.T) {
	c := &Client{opts: Options{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second}}
	for n, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceil *= time.Millisecond
		var top time.Duration
		for range 2000 {
			d := c.backoff(n)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", n, d, ceil)
			}
			top = max(top, d)
		}
		if top < ceil*9/10 {
			t.Errorf("backoff(%d) never above %v of %v", n, top, ceil)
		}
	}
	if d := c.backoff(1000); d > time.Second {
		t.Errorf("backoff(1000) = %v", d)
	}
}

// TestPK: a pk is text, from a string or an integer.
func TestPK(t *testing.T) {
	for raw, want := range map[string]string{`"id1"`: "id1", `7`: "7", `-3`: "-3", `1.5`: "", `true`: "", ``: "", `null`: ""} {
		if got := pkString(json.RawMessage(raw)); got != want {
			t.Errorf("pkString(%s) = %q, want %q", raw, got, want)
		}
	}
	if got := objectID(json.RawMessage(`{"id":"x","n":1}`)); got != "x" {
		t.Errorf("objectID = %q", got)
	}
	if got := objectID(json.RawMessage(`[{"id":"x"}]`)); got != "" {
		t.Errorf("objectID of an array = %q", got)
	}
}
