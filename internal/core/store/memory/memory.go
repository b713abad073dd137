// Package memory is an in-memory store.Store with subscriptions and a
// change feed: the store of unit tests and of the golden protocol suite.
// It keeps the DynamoDB store's layout in spirit (each scope of a stream
// is a place of its own; a read of every scope reaches only scoped items)
// and its orders, so the conformance suite holds both to one contract. It
// is safe for concurrent use.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wsbind/wsbind/internal/core/store"
)

// Change is one committed write, as the fan-out function receives it:
// Stream is the binding's stream (never the scope), Kind is "create",
// "update" or "delete"; Old is nil on create and New nil on delete.
type Change = store.Change

// Store keeps items, subscriptions and the changes not yet drained. The
// zero value is not ready; use New.
type Store struct {
	mu      sync.Mutex
	streams map[string]*stream
	topics  map[string]map[string]store.Subscription // topic → sub key → sub
	byConn  map[string]map[subRef]bool               // conn → its subscriptions
	changes []Change
	conns   map[string]store.Conn
	// dropped holds the connections DropConn forgot (until PutConn records
	// them again): a subscribe of theirs that comes late records nothing.
	// It only grows, by one id per connection dropped.
	dropped map[string]bool
	// claims are the idempotency keys' records.
	claims map[string]store.Claim
	// history is each part's changes (stream NUL scope), by position.
	history map[string][]store.Change
}

// stream holds one binding stream's items, each scope apart ("" is the
// unscoped part).
type stream struct {
	scopes map[string]*part
}

// part is the items of one scope of a stream.
type part struct {
	items map[string]store.Item
	ids   []string // sorted
}

// subRef names one subscription record: its topic and its key within the
// topic (subKey).
type subRef struct{ topic, key string }

var (
	_ store.Store       = (*Store)(nil)
	_ store.Subscribers = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: map[string]*stream{},
		topics:  map[string]map[string]store.Subscription{},
		byConn:  map[string]map[subRef]bool{},
		conns:   map[string]store.Conn{},
		dropped: map[string]bool{},
		claims:  map[string]store.Claim{},
	}
}

// part returns the part of stream name and scope, made on demand.
func (s *Store) part(name, scope string) *part {
	st := s.streams[name]
	if st == nil {
		st = &stream{scopes: map[string]*part{}}
		s.streams[name] = st
	}
	pt := st.scopes[scope]
	if pt == nil {
		pt = &part{items: map[string]store.Item{}}
		st.scopes[scope] = pt
	}
	return pt
}

// scoped returns the scoped parts of stream name ("" left out), in scope
// order: what Part.All reaches.
func (s *Store) scoped(name string) []*part {
	st := s.streams[name]
	if st == nil {
		return nil
	}
	scopes := make([]string, 0, len(st.scopes))
	for sc := range st.scopes {
		if sc != "" {
			scopes = append(scopes, sc)
		}
	}
	slices.Sort(scopes)
	out := make([]*part, len(scopes))
	for i, sc := range scopes {
		out[i] = st.scopes[sc]
	}
	return out
}

func clone(it store.Item) store.Item {
	it.Data = slices.Clone(it.Data)
	return it
}

// Get implements store.Store. With p.All it finds the item in any
// scope; should several scopes hold the id, the first scope in byte
// order wins.
func (s *Store) Get(_ context.Context, p store.Part, id string) (store.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.All {
		for _, pt := range s.scoped(p.Stream) {
			if it, ok := pt.items[id]; ok {
				return clone(it), nil
			}
		}
		return store.Item{}, store.ErrNotFound
	}
	it, ok := s.part(p.Stream, p.Scope).items[id]
	if !ok {
		return store.Item{}, store.ErrNotFound
	}
	return clone(it), nil
}

// ErrWriteAll refuses a write whose Part is every scope: a write names
// the one scope it goes to.
var ErrWriteAll = errors.New("memory: a write must name its scope, not every scope")

func errAll(op string) error { return fmt.Errorf("%s: %w", op, ErrWriteAll) }

// Create implements store.Store.
func (s *Store) Create(_ context.Context, p store.Part, it store.Item) error {
	if p.All {
		return errAll("create")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pt := s.part(p.Stream, p.Scope)
	if _, ok := pt.items[it.ID]; ok {
		return store.ErrExists
	}
	it = clone(it)
	it.Scope, it.Version = p.Scope, 1
	s.put(p.Stream, pt, it)
	return nil
}

// Replace implements store.Store.
func (s *Store) Replace(_ context.Context, p store.Part, it store.Item) (int64, error) {
	if p.All {
		return 0, errAll("replace")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pt := s.part(p.Stream, p.Scope)
	cur, ok := pt.items[it.ID]
	if !ok {
		return 0, store.ErrNotFound
	}
	if cur.Version != it.Version {
		return 0, store.ErrConflict
	}
	it = clone(it)
	it.Scope = p.Scope
	it.Version++
	s.put(p.Stream, pt, it)
	return it.Version, nil
}

// Put writes an item whatever is stored, as another writer of the table
// would (a script, the console): in stream name, in the scope it.Scope
// names. It returns the new version.
func (s *Store) Put(name string, it store.Item) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	pt := s.part(name, it.Scope)
	it = clone(it)
	it.Version = pt.items[it.ID].Version + 1
	s.put(name, pt, it)
	return it.Version
}

// put stores it in pt, a part of stream name, and records the change.
func (s *Store) put(name string, pt *part, it store.Item) {
	old, existed := pt.items[it.ID]
	pt.items[it.ID] = it
	ch := Change{Stream: name, PK: it.ID, Kind: store.KindUpdate, New: it.Data, Version: it.Version, Scope: it.Scope}
	if existed {
		ch.Old = old.Data
	} else {
		ch.Kind = store.KindCreate
		i := sort.SearchStrings(pt.ids, it.ID)
		pt.ids = slices.Insert(pt.ids, i, it.ID)
	}
	s.changes = append(s.changes, ch)
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, p store.Part, id string, version int64) (store.Item, error) {
	if p.All {
		return store.Item{}, errAll("delete")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pt := s.part(p.Stream, p.Scope)
	it, ok := pt.items[id]
	if !ok {
		return store.Item{}, store.ErrNotFound
	}
	if version != store.AnyVersion && it.Version != version {
		return store.Item{}, store.ErrConflict
	}
	delete(pt.items, id)
	i := sort.SearchStrings(pt.ids, id)
	pt.ids = slices.Delete(pt.ids, i, i+1)
	s.changes = append(s.changes, Change{Stream: p.Stream, PK: id, Kind: store.KindDelete, Old: it.Data, Version: it.Version + 1, Scope: it.Scope})
	return clone(it), nil
}

// List implements store.Store. With p.All the page is of every scoped
// item in id order (scope order among equal ids).
func (s *Store) List(_ context.Context, p store.Part, after string, offset, limit int) ([]store.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset < 0 || limit <= 0 {
		return nil, nil
	}
	if !p.All {
		pt := s.part(p.Stream, p.Scope)
		ids := pt.ids[idsAfter(pt.ids, after):]
		if offset >= len(ids) {
			return nil, nil
		}
		ids = ids[offset:min(offset+limit, len(ids))]
		out := make([]store.Item, len(ids))
		for i, id := range ids {
			out[i] = clone(pt.items[id])
		}
		return out, nil
	}
	// Every scope: the ids past after of each, in id then scope order
	// (scoped gives the scopes in order, and the sort is stable).
	var all []store.Item
	for _, pt := range s.scoped(p.Stream) {
		for _, id := range pt.ids[idsAfter(pt.ids, after):] {
			all = append(all, pt.items[id])
		}
	}
	if offset >= len(all) {
		return nil, nil
	}
	slices.SortStableFunc(all, func(a, b store.Item) int { return strings.Compare(a.ID, b.ID) })
	all = all[offset:]
	n := min(limit, len(all))
	for n < len(all) && all[n].ID == all[n-1].ID { // the rest of the last id's run
		n++
	}
	out := make([]store.Item, n)
	for i, it := range all[:n] {
		out[i] = clone(it)
	}
	return out, nil
}

// idsAfter is the index of the first of the sorted ids that sorts after
// after: 0 for "".
func idsAfter(ids []string, after string) int {
	if after == "" {
		return 0
	}
	i, found := slices.BinarySearch(ids, after)
	if found {
		i++
	}
	return i
}

// Count implements store.Store.
func (s *Store) Count(_ context.Context, p store.Part) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.All {
		n := 0
		for _, pt := range s.scoped(p.Stream) {
			n += len(pt.ids)
		}
		return n, nil
	}
	return len(s.part(p.Stream, p.Scope).ids), nil
}

// subKey is a subscription's key within its topic, as the DynamoDB store
// keys it: the connection id, then "#" and the filter when there is one.
// Subscribers returns a topic's subscriptions in this key's byte order.
func subKey(sub store.Subscription) string {
	if sub.Filter == "" {
		return sub.ConnID
	}
	return sub.ConnID + "#" + sub.Filter
}

// Subscribe implements store.Store. A subscription of a connection that
// DropConn forgot records nothing and is not an error, as the DynamoDB
// store's: the connection's messages are served concurrently with its
// disconnect, and one that comes late must not outlive it. Unlike that
// store's, it does not need the connection recorded by PutConn first.
func (s *Store) Subscribe(_ context.Context, sub store.Subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped[sub.ConnID] {
		return nil
	}
	key := subKey(sub)
	if s.topics[sub.Topic] == nil {
		s.topics[sub.Topic] = map[string]store.Subscription{}
	}
	s.topics[sub.Topic][key] = sub
	if s.byConn[sub.ConnID] == nil {
		s.byConn[sub.ConnID] = map[subRef]bool{}
	}
	s.byConn[sub.ConnID][subRef{sub.Topic, key}] = true
	return nil
}

// Unsubscribe implements store.Store.
func (s *Store) Unsubscribe(_ context.Context, sub store.Subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(subRef{sub.Topic, subKey(sub)}, sub.ConnID)
	return nil
}

// Claim implements store.Store.
func (s *Store) Claim(_ context.Context, key string, c store.Claim, now time.Time) (store.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.claims[key]; ok && now.Before(old.Expires) && (old.Reply != nil || now.Before(old.Lease)) {
		old.Reply = bytes.Clone(old.Reply)
		return old, nil
	}
	c.Fresh, c.Reply = false, nil
	s.claims[key] = c
	c.Fresh = true
	return c, nil
}

// Settle implements store.Store.
func (s *Store) Settle(_ context.Context, key string, reply []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[key]
	switch {
	case reply == nil:
		delete(s.claims, key)
	case ok:
		c.Reply = bytes.Clone(reply)
		s.claims[key] = c
	}
	return nil
}

// drop removes one subscription record of conn. The caller holds s.mu.
func (s *Store) drop(ref subRef, conn string) {
	delete(s.topics[ref.topic], ref.key)
	if len(s.topics[ref.topic]) == 0 {
		delete(s.topics, ref.topic)
	}
	delete(s.byConn[conn], ref)
	if len(s.byConn[conn]) == 0 {
		delete(s.byConn, conn)
	}
}

// Subscribers implements store.Subscribers: the subscriptions of each
// topic in the order given (a repeated topic counts once), each topic's
// in key order (subKey).
func (s *Store) Subscribers(_ context.Context, topics []string) ([]store.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, topic := range topics {
		n += len(s.topics[topic])
	}
	out := make([]store.Subscription, 0, n)
	seen := make(map[string]bool, len(topics))
	for _, topic := range topics {
		if seen[topic] {
			continue
		}
		seen[topic] = true
		subs := s.topics[topic]
		for _, key := range slices.Sorted(maps.Keys(subs)) {
			out = append(out, subs[key])
		}
	}
	return out, nil
}

// Topics returns the topics a connection subscribed to, sorted, each
// once however many filters it holds there.
func (s *Store) Topics(conn string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byConn[conn]))
	for ref := range s.byConn[conn] {
		out = append(out, ref.topic)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Disconnect drops every subscription of the connection. Unlike
// DropConn, it leaves the connection able to subscribe again.
func (s *Store) Disconnect(conn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropSubs(conn)
}

// dropSubs drops every subscription of conn. The caller holds s.mu.
func (s *Store) dropSubs(conn string) {
	for ref := range s.byConn[conn] {
		s.drop(ref, conn)
	}
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
