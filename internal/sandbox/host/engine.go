package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Module is a guest ready to instantiate: compiled wasm (wazero) or linked
// Go code (native). It is the engine seam: an engine provides Modules, and
// nothing above this file knows which engine made one.
type Module interface {
	// NewInstance makes a fresh instance, initialized (its _initialize
	// has run).
	NewInstance(ctx context.Context) (Instance, error)
	// Close releases the module; its instances must be closed first.
	Close(ctx context.Context) error
}

// Instance is one guest instance. It is not safe for concurrent use.
type Instance interface {
	// Call runs an export on in and returns a copy of its output. Host
	// calls made meanwhile go to the Services in ctx (WithServices). An
	// error means the instance trapped or exited and must not be used again.
	Call(ctx context.Context, export string, in []byte) ([]byte, error)
	Close(ctx context.Context) error
}

type servicesKey struct{}

// WithServices returns a ctx whose guest calls reach s.
func WithServices(ctx context.Context, s *Services) context.Context {
	return context.WithValue(ctx, servicesKey{}, s)
}

// servicesOf returns the Services of a call; a call without any gets an
// empty set, whose functions fail cleanly.
func servicesOf(ctx context.Context) *Services {
	if s, ok := ctx.Value(servicesKey{}).(*Services); ok {
		return s
	}
	return &Services{}
}

// TrapError is a guest failure: a panic that escaped, running out of
// memory, a deadline, an engine fault. The instance it came from is gone.
type TrapError struct{ Err error }

func (e *TrapError) Error() string { return "guest trapped: " + e.Err.Error() }
func (e *TrapError) Unwrap() error { return e.Err }

// Pool reuses instances of one module: each call takes an idle instance or
// makes one, and gives it back unless it trapped. On Lambda, where calls
// come one at a time, it holds a single instance for the environment's
// life; in the emulator it grows to the calls in flight.
type Pool struct {
	mod     Module
	maxIdle int

	mu   sync.Mutex
	idle []Instance
	made int // instances made, for tests and logs
}

// NewPool returns a pool over mod keeping at most maxIdle idle instances
// (0 means 16).
func NewPool(mod Module, maxIdle int) *Pool {
	if maxIdle <= 0 {
		maxIdle = 16
	}
	return &Pool{mod: mod, maxIdle: maxIdle}
}

// Warm makes one instance ahead of the first call, so its start-up is paid
// during initialization.
func (p *Pool) Warm(ctx context.Context) error {
	inst, err := p.newInstance(ctx)
	if err != nil {
		return err
	}
	p.put(ctx, inst)
	return nil
}

func (p *Pool) newInstance(ctx context.Context) (Instance, error) {
	inst, err := p.mod.NewInstance(ctx)
	if err != nil {
		return nil, fmt.Errorf("instantiate guest: %w", err)
	}
	p.mu.Lock()
	p.made++
	p.mu.Unlock()
	return inst, nil
}

func (p *Pool) get(ctx context.Context) (Instance, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.mu.Unlock()
	return p.newInstance(ctx)
}

func (p *Pool) put(ctx context.Context, inst Instance) {
	p.mu.Lock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, inst)
		inst = nil
	}
	p.mu.Unlock()
	if inst != nil {
		_ = inst.Close(ctx)
	}
}

// Call runs export on an instance. A trap closes that instance and comes
// back as *TrapError; the next call gets a fresh one.
func (p *Pool) Call(ctx context.Context, export string, in []byte) ([]byte, error) {
	inst, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	out, err := inst.Call(ctx, export, in)
	if err != nil {
		_ = inst.Close(ctx)
		var trap *TrapError
		if !errors.As(err, &trap) {
			err = &TrapError{Err: err}
		}
		return nil, err
	}
	p.put(ctx, inst)
	return out, nil
}

// Made reports how many instances the pool has made.
func (p *Pool) Made() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.made
}

// Close closes the idle instances. The module stays open: it belongs to
// whoever compiled it, and other pools may share it.
func (p *Pool) Close(ctx context.Context) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, inst := range idle {
		_ = inst.Close(ctx)
	}
}
