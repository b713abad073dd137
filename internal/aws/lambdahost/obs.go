package lambdahost

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/sandbox/host"
)

// Every invocation logs one line: what it served and how it ended, and,
// when Config.Metrics names a namespace, the CloudWatch embedded metric
// format (EMF) document of its metrics, in the same JSON object. One
// line carries both, so a message costs one write, and a query over the
// logs and the metrics read the same figures. Log fields are snake_case;
// the root members EMF turns into metrics and dimensions are PascalCase,
// as CloudWatch names its own, so the two never collide (an action is
// logged as it came, "action", and counted under a bounded name,
// "Action"). docs/operations.md lists them all.

// invocation is what an invocation reports in its line, filled in by the
// function that served it.
type invocation struct {
	event    string // API Gateway's eventType: CONNECT, MESSAGE, DISCONNECT
	conn     string
	apiReqID string // requestContext.requestId
	status   int    // the response's: HTTP status, or the reply's response_status; 0 none

	// route: what the reply says of the request.
	stream, action       string
	hasStream, hasAction bool
	requestID            []byte // the client's request_id, as JSON; nil when none

	trap bool // the guest trapped

	// streamfanout
	records, failures int
	lags              []int64 // ms from each delivered record's creation to its pushes being out
}

// rawJSON is JSON logged as it is: verbatim in a JSON handler, as text in
// a text handler.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }
func (r rawJSON) String() string               { return string(r) }

// The variants of a function's EMF directive: whether the line reports a
// cold start, fan-out lags and push counts (a member a directive names
// must be in the line).
const (
	emfCold = 1 << iota
	emfLag
	emfPushes
	emfVariants = 1 << iota
)

// metricsFor returns the directives (the value of _aws.CloudWatchMetrics)
// of function's lines in namespace, by variant; nil when namespace is "".
func metricsFor(function, namespace string) []rawJSON {
	if namespace == "" {
		return nil
	}
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	type directive struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []metric   `json:"Metrics"`
	}
	count := func(name string) metric { return metric{name, "Count"} }
	ms := func(name string) metric { return metric{name, "Milliseconds"} }
	us := func(name string) metric { return metric{name, "Microseconds"} }
	byFunction := [][]string{{dimFunction}}
	out := make([]rawJSON, emfVariants)
	for v := range emfVariants {
		var ds []directive
		switch function {
		case NameRoute:
			ds = append(ds, directive{namespace, [][]string{{dimFunction}, {dimFunction, dimAction, dimStatusClass}},
				[]metric{count(metricMessages), us(metricLatency)}})
		case NameConnect:
			ds = append(ds, directive{namespace, [][]string{{dimFunction}, {dimFunction, dimEvent, dimStatusClass}},
				[]metric{count(metricEvents), us(metricLatency)}})
		case NameAuthorizer:
			ds = append(ds, directive{namespace, [][]string{{dimFunction}, {dimFunction, dimStatusClass}},
				[]metric{count(metricAuthorizations), us(metricLatency)}})
		case NameStreamFanout:
			list := []metric{count(metricRecords), count(metricFailedRecords), us(metricLatency)}
			if v&emfPushes != 0 {
				list = append(list, count(metricPushesPosted), count(metricPushesGone), count(metricPushesThrottled), count(metricPushesFailed))
			}
			if v&emfLag != 0 {
				list = append(list, ms(metricFanoutLag))
			}
			ds = append(ds, directive{namespace, byFunction, list})
		case NamePush:
			list := []metric{us(metricLatency)}
			if v&emfPushes != 0 {
				list = append(list, count(metricPushesPosted), count(metricPushesGone), count(metricPushesThrottled), count(metricPushesFailed))
			}
			ds = append(ds, directive{namespace, byFunction, list})
		}
		var proc []metric
		if function != NameAuthorizer && function != NamePush { // host code only: no guest
			proc = append(proc, count(metricGuestTraps))
		}
		if v&emfCold != 0 {
			proc = append(proc, count(metricColdStart), us(metricInitDuration))
		}
		if len(proc) > 0 {
			ds = append(ds, directive{namespace, byFunction, proc})
		}
		b, err := json.Marshal(ds)
		if err != nil {
			panic(err) // strings and slices of them only
		}
		out[v] = b
	}
	return out
}

// The EMF root members: dimensions and metrics.
const (
	dimFunction    = "Function"
	dimAction      = "Action"
	dimEvent       = "Event"
	dimStatusClass = "StatusClass"

	metricMessages        = "Messages"
	metricEvents          = "Events"
	metricAuthorizations  = "Authorizations"
	metricLatency         = "Latency"
	metricRecords         = "Records"
	metricFailedRecords   = "FailedRecords"
	metricPushesPosted    = "PushesPosted"
	metricPushesGone      = "PushesGone"
	metricPushesThrottled = "PushesThrottled"
	metricPushesFailed    = "PushesFailed"
	metricFanoutLag       = "FanoutLag"
	metricGuestTraps      = "GuestTraps"
	metricColdStart       = "ColdStart"
	metricInitDuration    = "InitDuration"
)

// maxEMFValues is the most values one EMF metric member may hold.
const maxEMFValues = 100

// builtinActions are the actions every binding may offer: counted under
// their own name whatever the outcome. Any other action is counted under
// its name only when served (a status below 400: the binding offers it,
// so the names are bounded by the code), else as "other": a client can
// send any text as an action, and every distinct dimension value is a
// metric of its own, and billed.
var builtinActions = []string{"create", "retrieve", "update", "patch", "delete", "list", "subscribe", "unsubscribe"}

// metricAction is the Action dimension of a reply.
func metricAction(in *invocation) string {
	switch {
	case !in.hasAction || in.action == "":
		return "none"
	case in.status < 400 || slices.Contains(builtinActions, in.action):
		return in.action
	}
	return "other"
}

// statusClass is the StatusClass dimension: 2xx, 4xx or 5xx. The exact
// status is in the log line; classes keep the metrics few.
func statusClass(status int) string {
	switch {
	case status >= 500 || status == 0:
		return "5xx"
	case status >= 400:
		return "4xx"
	case status >= 300:
		return "3xx"
	}
	return "2xx"
}

// readReply reads what the reply frame of route says of its request:
// stream, action, response_status and request_id (see
// internal/core/protocol's ReplyWith). It only scans the frame (no
// decoding into values): this runs for every message.
func readReply(in *invocation, reply []byte) {
	top, ok := jsonv.ParseObject(reply)
	if !ok {
		return
	}
	if raw, ok := jsonv.Lookup(top, "stream"); ok && jsonv.KindOf(raw) == jsonv.String {
		in.stream, in.hasStream = jsonv.Unquote(raw)
	}
	raw, ok := jsonv.Lookup(top, "payload")
	if !ok {
		return
	}
	payload, ok := jsonv.ParseObject(raw)
	if !ok {
		return
	}
	if raw, ok := jsonv.Lookup(payload, "action"); ok && jsonv.KindOf(raw) == jsonv.String {
		in.action, in.hasAction = jsonv.Unquote(raw)
	}
	if raw, ok := jsonv.Lookup(payload, "response_status"); ok {
		in.status, _ = strconv.Atoi(string(raw))
	}
	if raw, ok := jsonv.Lookup(payload, "request_id"); ok && jsonv.KindOf(raw) != jsonv.Null {
		in.requestID = raw
	}
}

// isTrap reports a guest trap among err's causes.
func isTrap(err error) bool {
	var trap *host.TrapError
	return errors.As(err, &trap)
}

// lagsOf returns lags as at most maxEMFValues values: each the largest
// of a run of consecutive records, so the worst lag is always among them.
func lagsOf(lags []int64) []int64 {
	if len(lags) <= maxEMFValues {
		return lags
	}
	per := (len(lags) + maxEMFValues - 1) / maxEMFValues
	out := make([]int64, 0, maxEMFValues)
	for i := 0; i < len(lags); i += per {
		out = append(out, slices.Max(lags[i:min(i+per, len(lags))]))
	}
	return out
}

// report logs the invocation's line. err is the invocation's error (an
// event not served); pushes, when not nil, the pushes' outcomes during it.
func (h *Handler) report(ctx context.Context, start time.Time, cold bool, in *invocation, err error, pushes *host.PushCounts) {
	now := time.Now()
	// Durations are whole microseconds: slog writes an integer with
	// strconv, a float through encoding/json, several times the cost.
	us := now.Sub(start).Microseconds()
	initUS := h.cfg.InitDuration.Microseconds()
	level := slog.LevelInfo
	attrs := make([]slog.Attr, 0, 32)
	attrs = append(attrs, slog.String("function", h.cfg.Function))
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("aws_request_id", lc.AwsRequestID))
	}
	fn := h.cfg.Function
	// An invocation that failed before reading its event (one the
	// function does not serve) has none of the event's fields.
	if in.apiReqID != "" {
		attrs = append(attrs, slog.String("api_request_id", in.apiReqID))
	}
	if in.conn != "" {
		attrs = append(attrs, slog.String("conn", in.conn))
	}
	if in.event != "" {
		attrs = append(attrs, slog.String("event", in.event))
	}
	if fn == NameRoute && in.status != 0 {
		var stream, action, reqID slog.Value // null when the reply had none
		if in.hasStream {
			stream = slog.StringValue(in.stream)
		}
		if in.hasAction {
			action = slog.StringValue(in.action)
		}
		if in.requestID != nil {
			reqID = slog.AnyValue(rawJSON(in.requestID))
		}
		attrs = append(attrs, slog.Attr{Key: "stream", Value: stream}, slog.Attr{Key: "action", Value: action},
			slog.Attr{Key: "request_id", Value: reqID})
	}
	if in.status != 0 {
		attrs = append(attrs, slog.Int("status", in.status))
		if in.status >= 500 {
			level = slog.LevelError
		}
	}
	var maxLag int64
	if fn == NameStreamFanout {
		attrs = append(attrs, slog.Int("records", in.records), slog.Int("failed_records", in.failures))
		if len(in.lags) > 0 {
			maxLag = slices.Max(in.lags)
			attrs = append(attrs, slog.Int64("lag_ms", maxLag))
		}
		if in.failures > 0 {
			level = slog.LevelWarn
		}
	}
	if pushes != nil {
		attrs = append(attrs, slog.Int64("pushes_posted", pushes.Posted), slog.Int64("pushes_gone", pushes.Gone),
			slog.Int64("pushes_throttled", pushes.Throttled), slog.Int64("pushes_failed", pushes.Failed))
	}
	attrs = append(attrs, slog.Int64("duration_us", us))
	if in.trap {
		attrs = append(attrs, slog.Bool("trap", true))
		level = slog.LevelError
	}
	if cold {
		attrs = append(attrs, slog.Bool("cold_start", true), slog.Int64("init_us", initUS))
	}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
		level = slog.LevelError
	}
	// A failed invocation is no message, connection or batch served:
	// Lambda's Errors metric counts it.
	if h.emf != nil && err == nil {
		v := 0
		if cold {
			v |= emfCold
		}
		if len(in.lags) > 0 {
			v |= emfLag
		}
		if pushes != nil {
			v |= emfPushes
		}
		attrs = append(attrs, slog.Group("_aws", slog.Int64("Timestamp", now.UnixMilli()), slog.Any("CloudWatchMetrics", h.emf[v])),
			slog.String(dimFunction, fn))
		switch fn {
		case NameRoute:
			attrs = append(attrs, slog.String(dimAction, metricAction(in)), slog.String(dimStatusClass, statusClass(in.status)),
				slog.Int(metricMessages, 1))
		case NameConnect:
			attrs = append(attrs, slog.String(dimEvent, in.event), slog.String(dimStatusClass, statusClass(in.status)),
				slog.Int(metricEvents, 1))
		case NameAuthorizer:
			attrs = append(attrs, slog.String(dimStatusClass, statusClass(in.status)), slog.Int(metricAuthorizations, 1))
		case NameStreamFanout:
			attrs = append(attrs, slog.Int(metricRecords, in.records), slog.Int(metricFailedRecords, in.failures))
			if pushes != nil {
				attrs = append(attrs, slog.Int64(metricPushesPosted, pushes.Posted), slog.Int64(metricPushesGone, pushes.Gone),
					slog.Int64(metricPushesThrottled, pushes.Throttled), slog.Int64(metricPushesFailed, pushes.Failed))
			}
			if len(in.lags) > 0 {
				attrs = append(attrs, slog.Any(metricFanoutLag, lagsOf(in.lags)))
			}
		case NamePush:
			if pushes != nil {
				attrs = append(attrs, slog.Int64(metricPushesPosted, pushes.Posted), slog.Int64(metricPushesGone, pushes.Gone),
					slog.Int64(metricPushesThrottled, pushes.Throttled), slog.Int64(metricPushesFailed, pushes.Failed))
			}
		}
		attrs = append(attrs, slog.Int64(metricLatency, us))
		if fn != NameAuthorizer && fn != NamePush {
			traps := 0
			if in.trap {
				traps = 1
			}
			attrs = append(attrs, slog.Int(metricGuestTraps, traps))
		}
		if cold {
			attrs = append(attrs, slog.Int(metricColdStart, 1), slog.Int64(metricInitDuration, initUS))
		}
	}
	h.log.LogAttrs(ctx, level, h.msg, attrs...)
}
