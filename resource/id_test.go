package resource

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIDs_New(t *testing.T) {
	var g idGen
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5000 {
		// Many ids share a millisecond; the clock also steps back once.
		at := now.Add(time.Duration(i/1000) * time.Millisecond)
		if i == 2500 {
			at = now
		}
		ids = append(ids, g.New(at))
	}
	for i, id := range ids {
		if len(id) != 26 || strings.Trim(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("id %d = %q, want 26 Crockford base-32 characters", i, id)
		}
		if i > 0 && id <= ids[i-1] {
			t.Fatalf("id %d = %s, not after %s", i, id, ids[i-1])
		}
	}
	// The first 10 characters are the milliseconds.
	if got, want := ids[0][:10], NewID(now)[:10]; got != want {
		t.Errorf("time prefix = %s, want %s", got, want)
	}
}

func TestIDs_Concurrent(t *testing.T) {
	var g idGen
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				id := g.New(time.Now())
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
