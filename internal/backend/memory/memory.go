// Package memory is an in-memory resource.Store with subscriptions and a
// change feed: the store of unit tests and of the golden protocol suite.
// It is safe for concurrent use.
package memory

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/wsbind/wsbind/internal/abi"
	"github.com/wsbind/wsbind/resource"
)

// Change is one committed write: Kind is "create", "update" or "delete";
// Old is nil on create and New nil on delete.
type Change struct {
	Stream, PK, Kind string
	Old, New         []byte
}

// Store keeps items, subscriptions and the changes not yet drained. The
// zero value is not ready; use New.
type Store struct {
	mu      sync.Mutex
	streams map[string]*stream
	topics  map[string]map[string]resource.Subscription // topic → conn → sub
	byConn  map[string]map[string]bool                  // conn → topics
	changes []Change
	conns   map[string]abi.ConnEvent
}

type stream struct {
	items map[string]resource.Item
	ids   []string // sorted
}

var _ resource.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: map[string]*stream{},
		topics:  map[string]map[string]resource.Subscription{},
		byConn:  map[string]map[string]bool{},
	}
}

func (s *Store) stream(name string) *stream {
	st := s.streams[name]
	if st == nil {
		st = &stream{items: map[string]resource.Item{}}
		s.streams[name] = st
	}
	return st
}

func clone(it resource.Item) resource.Item {
	it.Data = slices.Clone(it.Data)
	return it
}

// Get implements resource.Store.
func (s *Store) Get(_ context.Context, name, id string) (resource.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.stream(name).items[id]
	if !ok {
		return resource.Item{}, resource.ErrNotFound
	}
	return clone(it), nil
}

// Create implements resource.Store.
func (s *Store) Create(_ context.Context, name string, it resource.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(name)
	if _, ok := st.items[it.ID]; ok {
		return resource.ErrExists
	}
	it = clone(it)
	it.Version = 1
	s.put(name, st, it)
	return nil
}

// Replace implements resource.Store.
func (s *Store) Replace(_ context.Context, name string, it resource.Item) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(name)
	cur, ok := st.items[it.ID]
	if !ok {
		return 0, resource.ErrNotFound
	}
	if cur.Version != it.Version {
		return 0, resource.ErrConflict
	}
	it = clone(it)
	it.Version++
	s.put(name, st, it)
	return it.Version, nil
}

// Put writes an item whatever is stored, as another writer of the table
// would (a script, the console). It returns the new version.
func (s *Store) Put(name string, it resource.Item) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(name)
	it = clone(it)
	it.Version = st.items[it.ID].Version + 1
	s.put(name, st, it)
	return it.Version
}

func (s *Store) put(name string, st *stream, it resource.Item) {
	old, existed := st.items[it.ID]
	st.items[it.ID] = it
	ch := Change{Stream: name, PK: it.ID, Kind: resource.ActionUpdate, New: it.Data}
	if existed {
		ch.Old = old.Data
	} else {
		ch.Kind = resource.ActionCreate
		i := sort.SearchStrings(st.ids, it.ID)
		st.ids = slices.Insert(st.ids, i, it.ID)
	}
	s.changes = append(s.changes, ch)
}

// Delete implements resource.Store.
func (s *Store) Delete(_ context.Context, name, id string) (resource.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(name)
	it, ok := st.items[id]
	if !ok {
		return resource.Item{}, resource.ErrNotFound
	}
	delete(st.items, id)
	i := sort.SearchStrings(st.ids, id)
	st.ids = slices.Delete(st.ids, i, i+1)
	s.changes = append(s.changes, Change{Stream: name, PK: id, Kind: resource.ActionDelete, Old: it.Data})
	return clone(it), nil
}

// List implements resource.Store.
func (s *Store) List(_ context.Context, name string, offset, limit int) ([]resource.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(name)
	if offset >= len(st.ids) || limit <= 0 {
		return nil, nil
	}
	ids := st.ids[offset:min(offset+limit, len(st.ids))]
	out := make([]resource.Item, len(ids))
	for i, id := range ids {
		out[i] = clone(st.items[id])
	}
	return out, nil
}

// Count implements resource.Store.
func (s *Store) Count(_ context.Context, name string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stream(name).ids), nil
}

// Subscribe implements resource.Store.
func (s *Store) Subscribe(_ context.Context, sub resource.Subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics[sub.Topic] == nil {
		s.topics[sub.Topic] = map[string]resource.Subscription{}
	}
	s.topics[sub.Topic][sub.ConnID] = sub
	if s.byConn[sub.ConnID] == nil {
		s.byConn[sub.ConnID] = map[string]bool{}
	}
	s.byConn[sub.ConnID][sub.Topic] = true
	return nil
}

// Subscribers returns a topic's subscriptions in connection id order.
func (s *Store) Subscribers(_ context.Context, topic string) ([]resource.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]resource.Subscription, 0, len(s.topics[topic]))
	for _, sub := range s.topics[topic] {
		out = append(out, sub)
	}
	slices.SortFunc(out, func(a, b resource.Subscription) int { return strings.Compare(a.ConnID, b.ConnID) })
	return out, nil
}

// Topics returns the topics a connection subscribed to, sorted.
func (s *Store) Topics(conn string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byConn[conn]))
	for t := range s.byConn[conn] {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Disconnect drops every subscription of the connection.
func (s *Store) Disconnect(conn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.byConn[conn] {
		delete(s.topics[t], conn)
		if len(s.topics[t]) == 0 {
			delete(s.topics, t)
		}
	}
	delete(s.byConn, conn)
}

// Changes drains the changes committed since the last call, in commit
// order.
func (s *Store) Changes() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.changes
	s.changes = nil
	return out
}
