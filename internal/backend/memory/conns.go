package memory

import (
	"context"

	"github.com/wsbind/wsbind/internal/abi"
)

// PutConn records a connection.
func (s *Store) PutConn(_ context.Context, e abi.ConnEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[string]abi.ConnEvent{}
	}
	s.conns[e.ConnID] = e
	return nil
}

// DropConn forgets a connection and its subscriptions.
func (s *Store) DropConn(_ context.Context, connID string) error {
	s.Disconnect(connID)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, connID)
	return nil
}

// Conn returns a recorded connection.
func (s *Store) Conn(connID string) (abi.ConnEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.conns[connID]
	return e, ok
}
