package infra

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsbind/wsbind/internal/aws/lambdahost"
	"github.com/wsbind/wsbind/internal/aws/lambdainit"
)

// sampleSecret signs the sample events' token (events/README.md).
const sampleSecret = "wsbind-sample-secret-0123456789abcdef"

// decode reads an event file into v. strict refuses members v has no
// field for, so a misspelt field fails rather than reads as empty.
func decode(t *testing.T, name string, v any, strict bool) {
	t.Helper()
	data, err := os.ReadFile("../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// tokenSub verifies an HS256 token with the sample secret and returns its
// subject.
func tokenSub(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", token)
	}
	mac := hmac.New(sha256.New, []byte(sampleSecret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if got := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != parts[2] {
		t.Fatalf("token signature %s, want %s (secret %q)", parts[2], got, sampleSecret)
	}
	var header struct{ Alg string }
	var claims struct {
		Sub string
		Exp int64
	}
	for i, v := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatal(err)
		}
	}
	if header.Alg != "HS256" || claims.Sub == "" || claims.Exp < 4102444800 {
		t.Fatalf("token header %+v claims %+v: want HS256, a subject, an expiry from 2100", header, claims)
	}
	return claims.Sub
}

func authorizerSub(t *testing.T, name string, a any) string {
	t.Helper()
	m, _ := a.(map[string]any)
	sub, _ := m["sub"].(string)
	if sub == "" {
		t.Fatalf("%s: requestContext.authorizer %v has no sub", name, a)
	}
	return sub
}

func TestEvents_WebSocket(t *testing.T) {
	var conn, msg, disc events.APIGatewayWebsocketProxyRequest
	decode(t, "connect.json", &conn, true)
	decode(t, "message.json", &msg, true)
	decode(t, "disconnect.json", &disc, true)

	for _, tt := range []struct {
		name      string
		ev        *events.APIGatewayWebsocketProxyRequest
		eventType string
		routeKey  string
	}{
		{"connect.json", &conn, "CONNECT", "$connect"},
		{"message.json", &msg, "MESSAGE", "$default"},
		{"disconnect.json", &disc, "DISCONNECT", "$disconnect"},
	} {
		rc := tt.ev.RequestContext
		if rc.EventType != tt.eventType || rc.RouteKey != tt.routeKey {
			t.Errorf("%s: eventType %q routeKey %q, want %q %q", tt.name, rc.EventType, rc.RouteKey, tt.eventType, tt.routeKey)
		}
		if rc.ConnectionID != conn.RequestContext.ConnectionID || rc.ConnectionID == "" {
			t.Errorf("%s: connectionId %q, want connect.json's %q", tt.name, rc.ConnectionID, conn.RequestContext.ConnectionID)
		}
		if rc.ConnectedAt == 0 || rc.ConnectedAt != conn.RequestContext.ConnectedAt {
			t.Errorf("%s: connectedAt %d, want connect.json's %d", tt.name, rc.ConnectedAt, conn.RequestContext.ConnectedAt)
		}
		if rc.APIID == "" || rc.Stage == "" || rc.DomainName != rc.APIID+".execute-api.us-east-1.amazonaws.com" {
			t.Errorf("%s: apiId %q stage %q domainName %q do not agree", tt.name, rc.APIID, rc.Stage, rc.DomainName)
		}
	}

	// The connection's user: the token's subject, which the authorizer
	// put in its context and API Gateway delivers with every event.
	sub := tokenSub(t, conn.QueryStringParameters["token"])
	for _, tt := range []struct {
		name string
		ev   *events.APIGatewayWebsocketProxyRequest
	}{{"connect.json", &conn}, {"message.json", &msg}, {"disconnect.json", &disc}} {
		if got := authorizerSub(t, tt.name, tt.ev.RequestContext.Authorizer); got != sub {
			t.Errorf("%s: authorizer sub %q, want the token's %q", tt.name, got, sub)
		}
	}
	if got := conn.MultiValueQueryStringParameters["token"]; !slices.Equal(got, []string{conn.QueryStringParameters["token"]}) {
		t.Errorf("connect.json: multiValueQueryStringParameters token %v, want the token", got)
	}

	var frame, want any
	if err := json.Unmarshal([]byte(msg.Body), &frame); err != nil {
		t.Fatalf("message.json: body: %v", err)
	}
	json.Unmarshal([]byte(`{"stream":"questions","payload":{"action":"create","data":{"question_text":"Hello?"},"request_id":"1"}}`), &want)
	if !reflect.DeepEqual(frame, want) {
		t.Errorf("message.json: frame %v, want %v", frame, want)
	}
	if msg.RequestContext.MessageID == nil {
		t.Error("message.json: no messageId")
	}
	if disc.RequestContext.DisconnectStatusCode == 0 || disc.RequestContext.DisconnectReason == nil {
		t.Error("disconnect.json: no disconnectStatusCode or disconnectReason")
	}
}

func TestEvents_Authorizer(t *testing.T) {
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	decode(t, "authorizer.json", &ev, false)
	// The WebSocket request context has members the REST type lacks.
	var raw struct {
		RequestContext struct {
			RouteKey, EventType, ConnectionID string
		} `json:"requestContext"`
	}
	decode(t, "authorizer.json", &raw, false)
	var conn events.APIGatewayWebsocketProxyRequest
	decode(t, "connect.json", &conn, true)

	if ev.Type != "REQUEST" {
		t.Errorf("type %q, want REQUEST", ev.Type)
	}
	rc := ev.RequestContext
	if want := "arn:aws:execute-api:us-east-1:123456789012:" + rc.APIID + "/" + rc.Stage + "/$connect"; ev.MethodArn != want || rc.APIID == "" {
		t.Errorf("methodArn %q, want %q", ev.MethodArn, want)
	}
	if raw.RequestContext.RouteKey != "$connect" || raw.RequestContext.EventType != "CONNECT" {
		t.Errorf("routeKey %q eventType %q, want $connect CONNECT", raw.RequestContext.RouteKey, raw.RequestContext.EventType)
	}
	if raw.RequestContext.ConnectionID != conn.RequestContext.ConnectionID {
		t.Errorf("connectionId %q, want connect.json's %q", raw.RequestContext.ConnectionID, conn.RequestContext.ConnectionID)
	}
	token := ev.QueryStringParameters["token"]
	if token != conn.QueryStringParameters["token"] {
		t.Error("token differs from connect.json's")
	}
	if sub := tokenSub(t, token); sub != authorizerSub(t, "connect.json", conn.RequestContext.Authorizer) {
		t.Errorf("token subject %q is not the user connect.json's authorizer context names", sub)
	}
	if _, ok := ev.Headers["Authorization"]; ok {
		t.Error("the sample sends the token in the query string; an Authorization header as well hides which one is read")
	}
}

func TestEvents_Stream(t *testing.T) {
	var ev events.DynamoDBEvent
	decode(t, "stream.json", &ev, true)
	tpl, cfg := load(t)
	if ps := Check(tpl, cfg); len(ps) > 0 {
		t.Fatalf("template problems: %v", ps)
	}
	// The items table, as the functions find it, and its layout.
	items := props(t, tpl, refOf(env(t, tpl, "StreamFanout")["WSBIND_TABLE_ITEMS"]))
	var keys []string
	for _, k := range listOf(items["KeySchema"]) {
		keys = append(keys, strOf(mapOf(k)["AttributeName"]))
	}
	slices.Sort(keys)
	view := strOf(mapOf(items["StreamSpecification"])["StreamViewType"])

	var names []string
	prevSeq := ""
	for i, r := range ev.Records {
		names = append(names, r.EventName)
		if r.EventSource != "aws:dynamodb" || !strings.Contains(r.EventSourceArn, ":table/") || !strings.Contains(r.EventSourceArn, "/stream/") {
			t.Errorf("record %d: source %q %q", i, r.EventSource, r.EventSourceArn)
		}
		ch := r.Change
		got := slices.Sorted(maps.Keys(ch.Keys))
		if !slices.Equal(got, keys) {
			t.Errorf("record %d: keys %v, want the items table's %v", i, got, keys)
		}
		for k, v := range ch.Keys {
			if v.DataType() != events.DataTypeString {
				t.Errorf("record %d: key %s is not a string", i, k)
			}
		}
		if ch.StreamViewType != view {
			t.Errorf("record %d: StreamViewType %q, want the table's %q", i, ch.StreamViewType, view)
		}
		wantOld, wantNew := r.EventName != "INSERT", r.EventName != "REMOVE"
		if (ch.OldImage != nil) != wantOld || (ch.NewImage != nil) != wantNew {
			t.Errorf("record %d (%s): old image %v, new image %v", i, r.EventName, ch.OldImage != nil, ch.NewImage != nil)
		}
		for _, img := range []map[string]events.DynamoDBAttributeValue{ch.OldImage, ch.NewImage} {
			for _, k := range keys {
				if img != nil && img[k].String() != ch.Keys[k].String() {
					t.Errorf("record %d: image %s %q, key %q", i, k, img[k].String(), ch.Keys[k].String())
				}
			}
		}
		seq := ch.SequenceNumber
		if seq == "" || (prevSeq != "" && (len(seq) < len(prevSeq) || len(seq) == len(prevSeq) && seq <= prevSeq)) {
			t.Errorf("record %d: SequenceNumber %q does not follow %q", i, seq, prevSeq)
		}
		prevSeq = seq
	}
	if want := []string{"INSERT", "MODIFY", "REMOVE"}; !slices.Equal(names, want) {
		t.Errorf("events %v, want %v", names, want)
	}
}

// TestEvents_AuthorizerAllowsConnect runs authorizer.json through the
// bootstrap's authorizer with the sample secret: it must allow the
// connection as the token's subject, with the context connect.json shows.
func TestEvents_AuthorizerAllowsConnect(t *testing.T) {
	h, err := lambdainit.FromEnv(context.Background(), lambdainit.Process{Vars: []string{
		"_HANDLER=" + lambdahost.NameAuthorizer, "WSBIND_AUTH_HS256_SECRET=" + sampleSecret,
	}})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile("../events/authorizer.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("authorizer refused the sample: %v", err)
	}
	var resp events.APIGatewayCustomAuthorizerResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayCustomAuthorizerRequestTypeRequest
	decode(t, "authorizer.json", &req, false)
	st := resp.PolicyDocument.Statement
	if len(st) != 1 || st[0].Effect != "Allow" || !slices.Contains(st[0].Resource, req.MethodArn) {
		t.Errorf("policy %+v, want Allow on %s", resp.PolicyDocument, req.MethodArn)
	}

	// What API Gateway delivers in requestContext.authorizer: the context,
	// principalId, integrationLatency.
	var conn events.APIGatewayWebsocketProxyRequest
	decode(t, "connect.json", &conn, true)
	delivered, _ := conn.RequestContext.Authorizer.(map[string]any)
	want := map[string]any{"principalId": resp.PrincipalID}
	for k, v := range resp.Context {
		want[k] = v
	}
	for k, v := range delivered {
		if k == "integrationLatency" {
			continue
		}
		if !reflect.DeepEqual(want[k], v) {
			t.Errorf("connect.json: authorizer %s = %v, the authorizer gives %v", k, v, want[k])
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("connect.json: authorizer context lacks %v", want)
	}
}
