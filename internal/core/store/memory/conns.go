package memory

import (
	"context"

	"github.com/wsbind/wsbind/internal/core/store"
)

// PutConn records a connection. A connection DropConn forgot may
// subscribe again once recorded again.
func (s *Store) PutConn(_ context.Context, e store.Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[e.ConnID] = e
	delete(s.dropped, e.ConnID)
	return nil
}

// DropConn forgets a connection and its subscriptions, at once: a
// Subscribe of the connection that comes after records nothing.
func (s *Store) DropConn(_ context.Context, connID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropSubs(connID)
	delete(s.conns, connID)
	s.dropped[connID] = true
	return nil
}

// Conn returns a recorded connection.
func (s *Store) Conn(connID string) (store.Conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.conns[connID]
	return e, ok
}
