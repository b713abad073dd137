package lambdahost_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wsbind/wsbind/internal/aws/apigw"
	"github.com/wsbind/wsbind/internal/aws/auth"
	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/sandbox/abi"
	"github.com/wsbind/wsbind/internal/sandbox/guest"
	"github.com/wsbind/wsbind/internal/sandbox/host"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
	"github.com/wsbind/wsbind/internal/testkit/logcheck"
)

// jsonLogs makes f log JSON lines, as the bootstrap does.
func (f *fixture) jsonLogs() {
	f.svc.Log = slog.New(slog.NewJSONHandler(f.logs, nil))
}

// metered serves fn with metrics in namespace "wsbind-test".
func (f *fixture) metered(t testing.TB, fn string, mod host.Module) *lambdahost.Handler {
	t.Helper()
	if mod == nil {
		mod = host.NativeModule(nativeProgram)
	}
	pool := host.NewPool(mod, 1)
	t.Cleanup(func() { pool.Close(context.Background()) })
	h, err := lambdahost.New(lambdahost.Config{Function: fn, Pool: pool, Services: f.svc, Metrics: "wsbind-test", InitDuration: 1500 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// lambdaInvoke invokes h as Lambda does: with the request id in ctx.
func lambdaInvoke(t testing.TB, h *lambdahost.Handler, reqID string, payload []byte) []byte {
	t.Helper()
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: reqID})
	out, err := h.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return out
}

// invocationLines checks every line f logged, and returns the
// invocations' lines, decoded, in order.
func invocationLines(t *testing.T, f *fixture, o logcheck.Options) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		l, err := logcheck.Check([]byte(line), o)
		if err != nil {
			t.Fatalf("%v\n%s", err, line)
		}
		if l.Function == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// wsEvent is an API Gateway WebSocket event.
func wsEvent(eventType, conn, reqID, body string) []byte {
	b, _ := json.Marshal(map[string]any{
		"requestContext": map[string]any{"eventType": eventType, "routeKey": "$default", "connectionId": conn, "requestId": reqID, "connectedAt": 7},
		"body":           body,
	})
	return b
}

// check compares the members of line named in want.
func check(t *testing.T, what string, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := line[k]
		if v == nil {
			if !ok || got != nil {
				t.Errorf("%s: %s = %v (present %t), want null", what, k, got, ok)
			}
			continue
		}
		if !ok || got != v {
			t.Errorf("%s: %s = %#v, want %#v", what, k, got, v)
		}
	}
}

// TestHandler_LogLines: each invocation logs one JSON line with its
// fields, and its metrics as an EMF document that keeps the
// specification; the action dimension stays bounded whatever a client
// sends; the first invocation alone reports a cold start.
func TestHandler_LogLines(t *testing.T) {
	f := newFixture()
	f.jsonLogs()
	connect := f.metered(t, lambdahost.NameConnect, nil)
	route := f.metered(t, lambdahost.NameRoute, nil)

	lambdaInvoke(t, connect, "lr-1", wsEvent("CONNECT", "c1", "ar-1", ""))
	frames := []string{
		`{"stream":"questions","payload":{"action":"create","data":{"question_text":"Q?"},"request_id":{"n":[1,2]}}}`,
		`{"stream":"questions","payload":{"action":"list","request_id":"r-2"}}`,
		`{"stream":"questions","payload":{"action":"no-such-action-9f3a"}}`, // a client's text
		`not json`,
	}
	for i, fr := range frames {
		lambdaInvoke(t, route, "lr-r"+string(rune('0'+i)), wsEvent("MESSAGE", "c1", "ar-r"+string(rune('0'+i)), fr))
	}
	lambdaInvoke(t, connect, "lr-2", wsEvent("DISCONNECT", "c1", "ar-2", ""))

	lines := invocationLines(t, f, logcheck.Options{EMF: true})
	if len(lines) != 2+len(frames) {
		t.Fatalf("%d invocation lines, want %d:\n%s", len(lines), 2+len(frames), f.logs)
	}
	check(t, "connect", lines[0], map[string]any{"msg": "wsbind: connect", "function": "connect", "aws_request_id": "lr-1",
		"api_request_id": "ar-1", "conn": "c1", "event": "CONNECT", "status": 200.0, "cold_start": true, "init_us": 1500.0,
		"Function": "connect", "Event": "CONNECT", "StatusClass": "2xx", "Events": 1.0, "ColdStart": 1.0, "GuestTraps": 0.0})
	check(t, "disconnect", lines[5], map[string]any{"event": "DISCONNECT", "aws_request_id": "lr-2", "status": 200.0})
	if _, ok := lines[5]["cold_start"]; ok {
		t.Errorf("a second invocation reports a cold start: %v", lines[5])
	}
	if _, ok := lines[5]["ColdStart"]; ok {
		t.Errorf("a second invocation counts a cold start: %v", lines[5])
	}
	create, list, unknown, garbage := lines[1], lines[2], lines[3], lines[4]
	check(t, "create", create, map[string]any{"msg": "wsbind: route", "aws_request_id": "lr-r0", "api_request_id": "ar-r0",
		"conn": "c1", "event": "MESSAGE", "stream": "questions", "action": "create", "status": 201.0, "cold_start": true,
		"Function": "route", "Action": "create", "StatusClass": "2xx", "Messages": 1.0})
	if id, _ := json.Marshal(create["request_id"]); string(id) != `{"n":[1,2]}` {
		t.Errorf("create: request_id %s, want the client's {\"n\":[1,2]}", id)
	}
	check(t, "list", list, map[string]any{"action": "list", "status": 200.0, "request_id": "r-2", "Action": "list"})
	check(t, "unknown action", unknown, map[string]any{"action": "no-such-action-9f3a", "status": 400.0,
		"Action": "other", "StatusClass": "4xx", "level": "INFO"})
	check(t, "not json", garbage, map[string]any{"stream": nil, "action": nil, "request_id": nil, "status": 400.0, "Action": "none"})
	for _, l := range lines {
		if d, ok := l["duration_us"].(float64); !ok || d <= 0 || d != l["Latency"] {
			t.Errorf("duration_us %v, Latency %v: want the same positive figure", l["duration_us"], l["Latency"])
		}
	}
	// The metrics go to the namespace configured.
	cwm := create["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)
	if ns := cwm[0].(map[string]any)["Namespace"]; ns != "wsbind-test" {
		t.Errorf("namespace %v", ns)
	}
}

// TestHandler_LogLines_NoMetrics: without a namespace the lines carry the
// log fields alone.
func TestHandler_LogLines_NoMetrics(t *testing.T) {
	f := newFixture()
	f.jsonLogs()
	lambdaInvoke(t, f.handler(t, lambdahost.NameRoute, nil), "l1", wsEvent("MESSAGE", "c1", "a1", `{"stream":"questions","payload":{"action":"list"}}`))
	lines := invocationLines(t, f, logcheck.Options{})
	if len(lines) != 1 {
		t.Fatalf("%d lines:\n%s", len(lines), f.logs)
	}
	for k := range lines[0] {
		if k == "_aws" || k == "Messages" || k == "Function" {
			t.Errorf("metrics member %s without metrics: %v", k, lines[0])
		}
	}
	check(t, "list", lines[0], map[string]any{"aws_request_id": "l1", "api_request_id": "a1", "status": 200.0})
}

// TestHandler_LogLines_Trap: a guest trap answers 500 and is counted.
func TestHandler_LogLines_Trap(t *testing.T) {
	f := newFixture()
	f.jsonLogs()
	trapping := host.NativeModule(func(c guest.Caller) map[string]guest.Entry {
		entries := nativeProgram(c)
		route := entries[abi.ExportRoute]
		entries[abi.ExportRoute] = func(in []byte) []byte {
			if strings.Contains(string(in), "boom") {
				panic("asked to trap")
			}
			return route(in)
		}
		return entries
	})
	h := f.metered(t, lambdahost.NameRoute, trapping)
	lambdaInvoke(t, h, "l1", wsEvent("MESSAGE", "c1", "a1", `{"stream":"questions","payload":{"action":"list","request_id":"boom"}}`))
	lambdaInvoke(t, h, "l2", wsEvent("MESSAGE", "c1", "a2", `{"stream":"questions","payload":{"action":"list"}}`))
	lines := invocationLines(t, f, logcheck.Options{EMF: true})
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), f.logs)
	}
	check(t, "trap", lines[0], map[string]any{"status": 500.0, "trap": true, "level": "ERROR", "GuestTraps": 1.0,
		"StatusClass": "5xx", "Action": "list", "request_id": "boom"})
	check(t, "after", lines[1], map[string]any{"status": 200.0, "GuestTraps": 0.0, "level": "INFO"})
}

// TestStreamFanout_LogLine: a fan-out batch's line counts its records and
// its pushes' outcomes (from the Poster's counts: 2 delivered, 1 gone),
// and the lag of each record from its creation time.
func TestStreamFanout_LogLine(t *testing.T) {
	f, srv := newGatewayFixture(t, apigwtest.Options{}, apigw.Config{})
	f.jsonLogs()
	for _, c := range []string{"c-a", "c-b", "c-gone"} {
		connectAndSubscribe(t, f, c, subscribeUpdates)
	}
	srv.Connect("c-a", "c-b") // c-gone is unknown to the gateway: 410
	f.logs.mu.Lock()
	f.logs.b.Reset()
	f.logs.mu.Unlock()
	h := f.metered(t, lambdahost.NameStreamFanout, nil)
	// The record was created 3 s ago (DynamoDB gives whole seconds).
	created := time.Now().Add(-3 * time.Second).Unix()
	rec := strings.Replace(modify("100", "q1", "Changed"), `"ApproximateCreationDateTime":1767323045`,
		`"ApproximateCreationDateTime":`+jsonInt(created), 1)
	if !strings.Contains(rec, jsonInt(created)) {
		t.Fatalf("record has no creation time: %s", rec)
	}
	out := lambdaInvoke(t, h, "lf-1", batch(rec))
	if resp := batchResponse(t, out); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %s", out)
	}
	lines := invocationLines(t, f, logcheck.Options{EMF: true, Pushes: true})
	if len(lines) != 1 {
		t.Fatalf("%d lines:\n%s", len(lines), f.logs)
	}
	l := lines[0]
	check(t, "fan-out", l, map[string]any{"function": "streamfanout", "aws_request_id": "lf-1", "records": 1.0, "failed_records": 0.0,
		"pushes_posted": 2.0, "pushes_gone": 1.0, "pushes_throttled": 0.0, "pushes_failed": 0.0,
		"Records": 1.0, "PushesPosted": 2.0, "PushesGone": 1.0})
	lag, _ := l["lag_ms"].(float64)
	if lag < 2000 || lag > 60000 {
		t.Errorf("lag_ms %v, want about 3000 (the record is 3 s old, to the second)", l["lag_ms"])
	}
	if vals, _ := l["FanoutLag"].([]any); len(vals) != 1 || vals[0] != lag {
		t.Errorf("FanoutLag %v, want [%v]", l["FanoutLag"], lag)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestAuthorizer_LogLine: the authorizer's line says whom it refused.
func TestAuthorizer_LogLine(t *testing.T) {
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	v, err := auth.NewVerifier(auth.Config{HS256Secret: []byte("a-test-secret-of-at-least-32-bytes!!")})
	if err != nil {
		t.Fatal(err)
	}
	h := lambdahost.NewAuthorizer(auth.NewAuthorizer(v, log), log, "wsbind-test", 0)
	ev := func(token string) []byte {
		b, _ := json.Marshal(map[string]any{"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/$connect",
			"queryStringParameters": map[string]string{"token": token},
			"requestContext":        map[string]any{"connectionId": "c9", "requestId": "ar-9", "eventType": "CONNECT"}})
		return b
	}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "la-1"})
	if _, err := h.Invoke(ctx, ev("not-a-token")); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("got %v, want Unauthorized", err)
	}
	f := &fixture{logs: logs}
	lines := invocationLines(t, f, logcheck.Options{EMF: true})
	if len(lines) != 1 {
		t.Fatalf("%d lines:\n%s", len(lines), logs)
	}
	check(t, "refused", lines[0], map[string]any{"function": "authorizer", "aws_request_id": "la-1", "api_request_id": "ar-9",
		"conn": "c9", "status": 401.0, "level": "INFO", "StatusClass": "4xx", "Authorizations": 1.0})
	if _, ok := lines[0]["err"]; ok {
		t.Errorf("a refusal logged as an error: %v", lines[0])
	}
}
