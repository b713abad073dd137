package lambdahost

import (
	"context"
	"log/slog"

	"github.com/wsbind/wsbind/internal/aws/fanout"
)

// NamePush is the push worker: host code only, no guest. The fan-out
// invokes it with a chunk of a push to many connections
// (internal/aws/fanout).
const NamePush = "push"

// NewPush returns the Handler of the push worker w.
func NewPush(w *fanout.Worker, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{cfg: Config{Function: NamePush}, log: log}
	h.invoke = func(ctx context.Context, payload []byte) (any, error) { return w.Serve(ctx, payload) }
	return h
}
