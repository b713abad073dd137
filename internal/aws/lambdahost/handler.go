// Package lambdahost is the Lambda side of the host: it turns the events
// Lambda delivers (API Gateway WebSocket requests, DynamoDB stream
// batches) into calls of the guest functions, and their outcomes into the
// responses Lambda expects.
//
//	h, err := lambdahost.New(lambdahost.Config{Function: lambdahost.NameRoute, Pool: pool, Services: svc})
//	lambda.Start(h) // or internal/aws/lambdainit, which builds it from the environment
//
// Errors are translated here, once: a guest's refusal becomes a status
// code, a failed record a batch item failure, and an event the function
// does not serve an error of the invocation.
package lambdahost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsbind/wsbind/internal/aws/auth"
	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// The functions a Handler serves, by the name the Lambda Handler setting
// (_HANDLER) gives them.
const (
	NameConnect      = "connect"      // $connect and $disconnect
	NameRoute        = "route"        // $default: one frame in, its reply out
	NameStreamFanout = "streamfanout" // the items table's stream: pushes
	NameAuthorizer   = "authorizer"   // $connect's REQUEST authorizer (host code, no guest)
)

// DefaultMetricsNamespace is the CloudWatch namespace of the metrics
// unless the deployment names another (WSBIND_METRICS_NAMESPACE).
const DefaultMetricsNamespace = "wsbind"

// Config configures a Handler. Function and Pool are required.
type Config struct {
	// Function is the function served: NameConnect, NameRoute or
	// NameStreamFanout.
	// There is no default: New refuses any other value.
	Function string
	// Pool runs the function's guest, which must export that function's
	// entry point. There is no default: New refuses nil.
	Pool *host.Pool
	// Services are what the guest's host calls reach, and where the
	// Handler logs. nil means an empty set: every host call fails, and
	// logs go to slog.Default().
	Services *host.Services
	// Refresh is how often the fan-out records again, at the position of
	// that moment, the changes of a batch whose pushes are not all out,
	// so that no push trails its change's latest position in the history
	// by more than Refresh: a replay overlap longer than that (plus a
	// history write) loses nothing however slow the posts. 0 means three
	// quarters of the default replay overlap; set it to three quarters of
	// WSBIND_REPLAY_OVERLAP.
	Refresh time.Duration
	// Metrics is the CloudWatch namespace of the metrics each
	// invocation's log line embeds (EMF). "" means none: the lines
	// carry the log fields alone.
	Metrics string
	// InitDuration is how long the process took to get ready, reported
	// with the first invocation (its cold start).
	InitDuration time.Duration
}

// Handler is one function's lambda.Handler. It is safe for concurrent
// use as far as its Pool and Services are (Lambda calls it one event at
// a time).
type Handler struct {
	cfg    Config
	log    *slog.Logger
	invoke func(ctx context.Context, payload []byte, in *invocation) (any, error)

	msg string // the message of its invocation lines
	// pushes counts the posts of the fan-out and the push worker, for
	// their lines; nil for the others, or a Poster that does not count.
	pushes host.PushCounter
	emf    []rawJSON // the EMF directives, by variant; nil: no metrics
	warm   atomic.Bool
}

var _ lambda.Handler = (*Handler)(nil)

// New returns the Handler of cfg.Function.
func New(cfg Config) (*Handler, error) {
	if cfg.Pool == nil {
		return nil, errors.New("lambdahost: no guest pool")
	}
	if cfg.Services == nil {
		cfg.Services = &host.Services{}
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = router.HistoryDefaults.Overlap * 3 / 4
	}
	h := &Handler{cfg: cfg, log: cfg.Services.Log, msg: "wsbind: " + cfg.Function, emf: metricsFor(cfg.Function, cfg.Metrics)}
	if h.log == nil {
		h.log = slog.Default()
	}
	if cfg.Function == NameStreamFanout {
		h.pushes, _ = cfg.Services.Poster.(host.PushCounter)
	}
	switch cfg.Function {
	case NameConnect:
		h.invoke = h.connect
	case NameRoute:
		h.invoke = h.route
	case NameStreamFanout:
		h.invoke = h.fanout
	default:
		return nil, fmt.Errorf("lambdahost: unknown function %q (want %s, %s or %s)", cfg.Function, NameConnect, NameRoute, NameStreamFanout)
	}
	return h, nil
}

// NewAuthorizer returns the Handler of the $connect authorizer: host code
// only, no guest and no database. metrics is Config.Metrics, and init
// Config.InitDuration.
func NewAuthorizer(a *auth.Authorizer, log *slog.Logger, metrics string, init time.Duration) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{cfg: Config{Function: NameAuthorizer, Metrics: metrics, InitDuration: init}, log: log,
		msg: "wsbind: " + NameAuthorizer, emf: metricsFor(NameAuthorizer, metrics)}
	h.invoke = func(ctx context.Context, payload []byte, in *invocation) (any, error) {
		var req events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, fmt.Errorf("not an authorizer request: %w", err)
		}
		// A WebSocket API's authorizer event also names the connection,
		// which aws-lambda-go's type leaves out.
		var ws struct {
			RequestContext struct {
				ConnectionID string `json:"connectionId"`
			} `json:"requestContext"`
		}
		_ = json.Unmarshal(payload, &ws) // read above: cannot fail
		in.conn, in.apiReqID = ws.RequestContext.ConnectionID, req.RequestContext.RequestID
		resp, err := a.Authorize(ctx, req)
		switch {
		case errors.Is(err, auth.ErrUnauthorized):
			in.status = 401
		case err != nil:
			in.status = 500
		default:
			in.status = 200
		}
		return resp, err
	}
	return h
}

// Invoke implements lambda.Handler: payload is the event as Lambda
// delivers it, the result the JSON response. An error fails the
// invocation; it is returned for events the function does not serve.
func (h *Handler) Invoke(ctx context.Context, payload []byte) (_ []byte, err error) {
	start := time.Now()
	cold := !h.warm.Swap(true)
	var in invocation
	var counter host.PushCounter
	var before host.PushCounts
	if counter = h.pushes; counter != nil {
		before = counter.PushCounts()
	}
	defer func() {
		var pushes *host.PushCounts
		if counter != nil {
			d := counter.PushCounts().Sub(before)
			pushes = &d
		}
		logged := err
		if errors.Is(err, auth.ErrUnauthorized) {
			logged = nil // a refusal, in status; not a failed invocation
		}
		h.report(ctx, start, cold, &in, logged, pushes)
	}()
	resp, err := h.invoke(ctx, payload, &in)
	if errors.Is(err, auth.ErrUnauthorized) {
		// API Gateway answers 401 only to this exact message.
		return nil, auth.ErrUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.cfg.Function, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // replies go out as the guest wrote them
	if err := enc.Encode(resp); err != nil {
		return nil, fmt.Errorf("%s: %w", h.cfg.Function, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// API Gateway's requestContext.eventType values.
const (
	eventConnect    = "CONNECT"
	eventMessage    = "MESSAGE"
	eventDisconnect = "DISCONNECT"
)

// decodeWebSocket reads an API Gateway WebSocket event of one of the
// given types. Numbers in the authorizer context keep their text.
func decodeWebSocket(payload []byte, types ...string) (*events.APIGatewayWebsocketProxyRequest, error) {
	var req events.APIGatewayWebsocketProxyRequest
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("not an API Gateway WebSocket event: %w", err)
	}
	for _, t := range types {
		if req.RequestContext.EventType == t {
			return &req, nil
		}
	}
	return nil, fmt.Errorf("event type %q not served (want %v)", req.RequestContext.EventType, types)
}

// connect serves $connect and $disconnect: 200 when the guest accepts,
// 403 when it refuses, 500 when it fails. (API Gateway refuses the
// connection on anything but 2xx, and ignores the answer to a disconnect.)
func (h *Handler) connect(ctx context.Context, payload []byte, in *invocation) (any, error) {
	req, err := decodeWebSocket(payload, eventConnect, eventDisconnect)
	if err != nil {
		return nil, err
	}
	rc := &req.RequestContext
	in.event, in.conn, in.apiReqID = rc.EventType, rc.ConnectionID, rc.RequestID
	e := abi.ConnEvent{Kind: abi.EventConnect, ConnID: rc.ConnectionID, User: userOf(rc.Authorizer), At: rc.ConnectedAt}
	if rc.EventType == eventDisconnect {
		e.Kind, e.At = abi.EventDisconnect, rc.RequestTimeEpoch
	}
	ok, err := host.CallConnect(ctx, h.cfg.Pool, h.cfg.Services, e)
	switch {
	case err != nil:
		in.status, in.trap = 500, isTrap(err)
		h.log.LogAttrs(ctx, slog.LevelError, "wsbind: connect guest failed",
			slog.String("event", e.Kind), slog.String("conn", e.ConnID), slog.Any("err", err))
		return events.APIGatewayProxyResponse{StatusCode: 500}, nil
	case !ok:
		in.status = 403
		return events.APIGatewayProxyResponse{StatusCode: 403}, nil
	}
	in.status = 200
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

// route serves $default, a two-way route: the response's body is the
// reply sent back to the client.
func (h *Handler) route(ctx context.Context, payload []byte, in *invocation) (any, error) {
	req, err := decodeWebSocket(payload, eventMessage)
	if err != nil {
		return nil, err
	}
	rc := &req.RequestContext
	in.event, in.conn, in.apiReqID = rc.EventType, rc.ConnectionID, rc.RequestID
	frame := []byte(req.Body)
	if req.IsBase64Encoded {
		if frame, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	reply, trap := host.CallRouteTrap(ctx, h.cfg.Pool, h.cfg.Services, abi.Message{ConnID: rc.ConnectionID, User: userOf(rc.Authorizer), Frame: frame})
	in.trap = isTrap(trap)
	readReply(in, reply)
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: string(reply)}, nil
}
