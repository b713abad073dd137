package guest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/storetest"
)

// caller makes host calls straight into Services.Dispatch, as the native
// engine does: every value crosses the ABI encoded, both ways.
type caller struct{ svc *host.Services }

func (c caller) Call(fn abi.Func, req []byte) (abi.Status, []byte) {
	return c.svc.Dispatch(context.Background(), fn, req)
}

func (caller) Now() int64 { return time.Now().UnixNano() }

// overABI is the guest's Store over the host's services of a memory
// store, with the connection calls the connect function makes.
type overABI struct {
	*guest.Store
	c   caller
	mem *memory.Store
}

// Record is the host's alone (the fan-out records the history before it
// calls the guest): straight to the store, whose Since the guest reads.
func (b overABI) Record(ctx context.Context, changes []store.Change) error {
	return b.mem.Record(ctx, changes)
}

func (b overABI) PutConn(_ context.Context, c store.Conn) error {
	var w abi.Writer
	e := abi.ConnEvent{Kind: abi.EventConnect, ConnID: c.ConnID, User: c.User, At: c.At}
	e.Encode(&w)
	return b.status(b.c.Call(abi.FuncConnPut, w.B))
}

func (b overABI) DropConn(_ context.Context, connID string) error {
	var w abi.Writer
	w.String(connID)
	return b.status(b.c.Call(abi.FuncConnDrop, w.B))
}

func (overABI) status(st abi.Status, res []byte) error {
	if st != abi.OK {
		return errors.New(string(res))
	}
	return nil
}

// Conn reads what PutConn stored, past the ABI.
func (b overABI) Conn(_ context.Context, connID string) (store.Conn, bool, error) {
	e, ok := b.mem.Conn(connID)
	return e, ok, nil
}

// TestStore_Conformance runs the backend suite through the ABI: the
// guest's Store encodes each call, the host's Dispatch decodes it and
// calls the memory store, and the result comes back the same way. Parts,
// scopes, versions, filters, roles and several topics all cross.
func TestStore_Conformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Backend {
		mem := memory.New()
		c := caller{&host.Services{Store: mem, Subscribers: mem, Conns: mem}}
		return overABI{Store: guest.NewStore(c), c: c, mem: mem}
	})
}
