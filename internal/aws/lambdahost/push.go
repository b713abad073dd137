package lambdahost

import (
	"context"
	"log/slog"

	"github.com/wsbind/wsbind/internal/aws/fanout"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// NamePush is the push worker: host code only, no guest. The fan-out
// invokes it with a chunk of a push to many connections
// (internal/aws/fanout).
const NamePush = "push"

// NewPush returns the Handler of the push worker w. Its invocation lines
// carry the metrics of namespace metrics ("" none): latency, and the
// pushes posted, gone, throttled and failed when w's Poster counts them.
func NewPush(w *fanout.Worker, log *slog.Logger, metrics string) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{cfg: Config{Function: NamePush, Metrics: metrics}, log: log,
		msg: "wsbind: " + NamePush, emf: metricsFor(NamePush, metrics)}
	h.pushes, _ = w.Poster.(host.PushCounter)
	h.invoke = func(ctx context.Context, payload []byte, _ *invocation) (any, error) { return w.Serve(ctx, payload) }
	return h
}
