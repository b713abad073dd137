package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/protocol"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/resource"
)

// CallRoute runs the route function for one frame and returns the reply
// frame. A guest trap answers 500 Internal Server Error, echoing what the
// frame lets the host read, and logs the trap; the pool has already
// replaced the instance.
func CallRoute(ctx context.Context, p *Pool, s *Services, m abi.Message) []byte {
	reply, _ := CallRouteTrap(ctx, p, s, m)
	return reply
}

// CallRouteTrap is CallRoute that also returns the guest's trap (a
// *TrapError), nil when the guest answered: the host's metrics count
// traps apart from the 500 replies a binding gives.
func CallRouteTrap(ctx context.Context, p *Pool, s *Services, m abi.Message) ([]byte, error) {
	var w abi.Writer
	m.Encode(&w)
	out, err := p.Call(WithServices(ctx, s), abi.ExportRoute, w.B)
	if err == nil {
		return out, nil
	}
	req, _ := protocol.Decode(m.Frame)
	s.log().Error("wsbind: route guest failed", "correlation_id", resource.NewID(time.Now()),
		"conn", m.ConnID, "stream", req.Stream, "action", req.Action, "err", err)
	return protocol.Reply(nil, &req, 0, nil, apierr.Internal(err)), err
}

// ErrRetry marks a change that was not fully delivered and must be
// retried (its record reported as a batch item failure).
var ErrRetry = errors.New("change not delivered")

// CallFanout runs the streamfanout function for one change. A nil error means
// the change is done with (delivered, or skipped as unpushable); an error
// wraps ErrRetry.
func CallFanout(ctx context.Context, p *Pool, s *Services, ch abi.Change) error {
	var w abi.Writer
	ch.Encode(&w)
	out, err := p.Call(WithServices(ctx, s), abi.ExportFanout, w.B)
	if err != nil {
		return fmt.Errorf("%w: %s/%s: %w", ErrRetry, ch.Stream, ch.PK, err)
	}
	var o abi.Outcome
	if err := o.Decode(abi.NewReader(out)); err != nil {
		return fmt.Errorf("%w: %s/%s: bad outcome: %w", ErrRetry, ch.Stream, ch.PK, err)
	}
	if o.Status != abi.OK {
		return fmt.Errorf("%w: %s/%s: %s", ErrRetry, ch.Stream, ch.PK, o.Message)
	}
	return nil
}

// CallConnect runs the connect function for a $connect or $disconnect. It
// reports whether the connection is accepted; a trap or a failed record
// refuses it (a disconnect's outcome only matters for the log).
func CallConnect(ctx context.Context, p *Pool, s *Services, e abi.ConnEvent) (bool, error) {
	var w abi.Writer
	e.Encode(&w)
	out, err := p.Call(WithServices(ctx, s), abi.ExportConnect, w.B)
	if err != nil {
		return false, err
	}
	var o abi.Outcome
	if err := o.Decode(abi.NewReader(out)); err != nil {
		return false, err
	}
	if o.Status != abi.OK {
		msg := "wsbind: connection refused"
		if e.Kind == abi.EventDisconnect {
			msg = "wsbind: disconnect not recorded"
		}
		s.log().LogAttrs(ctx, slog.LevelWarn, msg, slog.String("conn", e.ConnID), slog.String("reason", o.Message))
		return false, nil
	}
	return true, nil
}
