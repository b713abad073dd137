package memory_test

import (
	"context"
	"testing"

	"github.com/wsbind/wsbind/internal/abi"
	"github.com/wsbind/wsbind/internal/backend/backendtest"
	"github.com/wsbind/wsbind/internal/backend/memory"
)

// reader gives the memory store the suite's ConnReader, so the suite
// checks what PutConn kept.
type reader struct{ *memory.Store }

func (r reader) Conn(_ context.Context, connID string) (abi.ConnEvent, bool, error) {
	e, ok := r.Store.Conn(connID)
	return e, ok, nil
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(*testing.T) backendtest.Backend { return reader{memory.New()} })
}
