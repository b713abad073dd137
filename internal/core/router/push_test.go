package router_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/core/store/memory"
)

// A change that can never become a push is ErrBadChange, which fan-out
// skips instead of retrying; anything else is not.
func TestFanout_BadChange(t *testing.T) {
	r := bnRouter(memory.New())
	image := []byte(`{"id":"q1","question_text":"Hi","pub_date":"2026-01-02T03:04:05Z","published":false}`)
	for _, tc := range []struct {
		name string
		ch   router.Change
		bad  bool
	}{
		{"delete without old image", router.Change{Stream: "questions", PK: "q1", Kind: router.KindDelete, New: image}, true},
		{"create without new image", router.Change{Stream: "questions", PK: "q1", Kind: router.KindCreate, Old: image}, true},
		{"unknown kind", router.Change{Stream: "questions", PK: "q1", Kind: "rename", New: image}, true},
		{"good create", router.Change{Stream: "questions", PK: "q1", Kind: router.KindCreate, New: image}, false},
		{"unknown stream", router.Change{Stream: "elsewhere", PK: "q1", Kind: router.KindCreate, New: image}, false},
	} {
		_, err := r.Fanout(context.Background(), memory.New(), tc.ch)
		if got := errors.Is(err, router.ErrBadChange); got != tc.bad {
			t.Errorf("%s: Push error %v; ErrBadChange %v, want %v", tc.name, err, got, tc.bad)
		}
	}
}
