package memory

import (
	"context"
	"sort"

	"github.com/wsbind/wsbind/internal/core/store"
)

var _ store.History = (*Store)(nil)

// Record keeps the changes in the history of the part each was made in,
// in position order.
func (s *Store) Record(_ context.Context, changes []store.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.history == nil {
		s.history = map[string][]store.Change{}
	}
	for _, ch := range changes {
		ch.Old, ch.New = clip(ch.Old), clip(ch.New)
		key := ch.Stream + "\x00" + ch.Scope
		h := s.history[key]
		i := sort.Search(len(h), func(i int) bool { return before(ch, h[i]) })
		h = append(h, store.Change{})
		copy(h[i+1:], h[i:])
		h[i] = ch
		s.history[key] = h
	}
	return nil
}

// Since returns p's changes from the position from on, oldest first;
// with p.All, every scope's, merged by position.
func (s *Store) Since(_ context.Context, p store.Part, from int64, limit int) ([]store.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Change
	for key, h := range s.history {
		stream, scope, _ := cut(key)
		if stream != p.Stream || (!p.All && scope != p.Scope) || (p.All && scope == "") {
			continue
		}
		i := sort.Search(len(h), func(i int) bool { return h[i].At >= from })
		out = append(out, h[i:]...)
	}
	sort.SliceStable(out, func(i, j int) bool { return before(out[i], out[j]) })
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// before orders changes by position, as the DynamoDB history's sort key
// does: time, then version (so that an object's changes taken in one
// batch keep their order), then pk.
func before(a, b store.Change) bool {
	if a.At != b.At {
		return a.At < b.At
	}
	if a.Version != b.Version {
		return a.Version < b.Version
	}
	return a.PK < b.PK
}

func cut(key string) (stream, scope string, ok bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}

func clip(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
