package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/protocol"
	"github.com/wsbind/wsbind/internal/core/router"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/core/store/memory"
	"github.com/wsbind/wsbind/resource"
)

// The fuzz targets check the reply contract of docs/protocol.md for any frame:
// one well-formed reply, never a panic, never a frame over the message
// limit. Set WSBIND_FUZZ_STRICT=1 to also fail on any 500 reply (the
// in-memory store never fails, so a 500 means a bug or a corrupt object).

// fzSeedQuestions is how many questions every fuzz run starts with: more than
// one page (25), so page 2 exists and page 3 is past the end.
const fzSeedQuestions = 27

// fzQuestionID is the id of the i-th pre-stored question: "q00" ... "q26".
func fzQuestionID(i int) string { return fmt.Sprintf("q%02d", i) }

// fzNewStore returns a store holding fzSeedQuestions questions and two notes
// ("n1" of alice, "n2" of bob), written as another writer of the table would.
// Fuzz inputs can name these ids to reach the detail actions.
func fzNewStore() *memory.Store {
	st := memory.New()
	for i := range fzSeedQuestions {
		id := fzQuestionID(i)
		st.Put("questions", store.Item{ID: id, Data: []byte(`{"id":"` + id +
			`","question_text":"Question ` + strconv.Itoa(i) + `?","pub_date":"2024-01-02T03:04:05Z","published":` +
			strconv.FormatBool(i%2 == 0) + `}`)})
	}
	st.Put("notes", store.Item{ID: "n1", Data: []byte(`{"id":"n1","owner":"alice","text":"alice's note"}`)})
	st.Put("notes", store.Item{ID: "n2", Data: []byte(`{"id":"n2","owner":"bob","text":"bob's note"}`)})
	st.Changes() // the fixture is not a change anyone sees
	return st
}

// fzLogger records that an internal error was logged.
type fzLogger struct {
	internal int
	last     string
}

func (l *fzLogger) Error(msg string, args ...any) {
	l.internal++
	l.last = fmt.Sprint(append([]any{msg}, args...)...)
}

// fzClock is a fixed clock, so a failing input replays identically.
func fzClock() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }

// fzSeedFrames are the seeds of both targets: every action, the notes and an
// unknown stream, and malformed frames of every kind.
func fzSeedFrames() []string {
	frames := []string{
		// Every built-in action on questions.
		`{"stream":"questions","payload":{"action":"create","data":{"question_text":"Why?"},"request_id":"c1"}}`,
		`{"stream":"questions","payload":{"action":"create","pk":null,"data":{},"request_id":1}}`,
		`{"stream":"questions","payload":{"action":"create","data":{"question_text":12.5,"id":"forced","published":true}}}`,
		`{"stream":"questions","payload":{"action":"create","data":{"question_text":"` + strings.Repeat("x", 201) + `"}}}`,
		`{"stream":"questions","payload":{"action":"create","data":"not an object"}}`,
		`{"stream":"questions","payload":{"action":"create","data":[1,2]}}`,
		`{"stream":"questions","payload":{"action":"create","data":{"question_text":null}}}`,
		`{"stream":"questions","payload":{"action":"create","data":{"question_text":true}}}`,
		`{"stream":"questions","payload":{"action":"create","data":{"question_text":"   "}}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":"q00","request_id":{"a":[1,2]}}}`,
		`{"stream":"questions","payload":{"action":"retrieve","data":{"pk":"q01"}}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":"invalid-pk-value"}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":-1}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":""}}`,
		`{"stream":"questions","payload":{"action":"retrieve"}}`,
		`{"stream":"questions","payload":{"action":"update","pk":"q02","data":{"question_text":"Why not?"}}}`,
		`{"stream":"questions","payload":{"action":"update","pk":"q02","data":{}}}`,
		`{"stream":"questions","payload":{"action":"patch","pk":"q03","data":{"question_text":"Patched"}}}`,
		`{"stream":"questions","payload":{"action":"patch","pk":"q03","data":{}}}`,
		`{"stream":"questions","payload":{"action":"patch","pk":"q03","data":5}}`,
		`{"stream":"questions","payload":{"action":"delete","pk":"q04","request_id":null}}`,
		`{"stream":"questions","payload":{"action":"delete","pk":"missing"}}`,
		`{"stream":"questions","payload":{"action":"list"}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":1}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":2}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":"2"}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":2.0}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":3}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":0}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":-1}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":"x"}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":1e300}}}`,
		`{"stream":"questions","payload":{"action":"list","data":{"page":99999999999999999999}}}`,
		`{"stream":"questions","payload":{"action":"list","data":"page"}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":"create"}}}`,
		`{"stream":"questions","payload":{"action":"subscribe","pk":"q05","data":{"action":"update"}}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":"delete"}}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{}}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":"list"}}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":7}}}`,
		// The custom actions.
		`{"stream":"questions","payload":{"action":"publish","pk":"q01","request_id":"p"}}`,
		`{"stream":"questions","payload":{"action":"publish","pk":"nope"}}`,
		`{"stream":"questions","payload":{"action":"publish"}}`,
		`{"stream":"questions","payload":{"action":"report","pk":"q01"}}`,
		`{"stream":"questions","payload":{"action":"explode"}}`,
		// The notes stream: authenticated only.
		`{"stream":"notes","payload":{"action":"create","data":{"text":"mine","owner":"mallory"}}}`,
		`{"stream":"notes","payload":{"action":"retrieve","pk":"n1"}}`,
		`{"stream":"notes","payload":{"action":"update","pk":"n2","data":{"text":"t"}}}`,
		`{"stream":"notes","payload":{"action":"list","data":{"page":1}}}`,
		`{"stream":"notes","payload":{"action":"delete","pk":"n1"}}`,
		`{"stream":"notes","payload":{"action":"subscribe","data":{"action":"update"},"pk":"n1"}}`,
		`{"stream":"notes","payload":{"action":"unknown-action"}}`,
		// Unknown stream.
		`{"stream":"widgets","payload":{"action":"list","request_id":"w"}}`,
		`{"stream":"","payload":{"action":"list"}}`,
		`{"stream":"questions#create","payload":{"action":"list"}}`,
		// Malformed frames.
		``,
		`not json`,
		`{`,
		`{"stream":"questions","payload":{"action":"list"}`,
		`[]`,
		`[{"stream":"questions","payload":{"action":"list"}}]`,
		`"questions"`,
		`null`,
		`42`,
		`{}`,
		`{"payload":{"action":"list","request_id":"r"}}`,
		`{"stream":7,"payload":{"action":"list","request_id":"r"}}`,
		`{"stream":null,"payload":{"action":"list"}}`,
		`{"stream":"questions"}`,
		`{"stream":"questions","payload":"list"}`,
		`{"stream":"questions","payload":null}`,
		`{"stream":"questions","payload":[]}`,
		`{"stream":"questions","payload":{}}`,
		`{"stream":"questions","payload":{"request_id":"r"}}`,
		`{"stream":"questions","payload":{"action":5,"request_id":"r"}}`,
		`{"stream":"questions","payload":{"action":null}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":true}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":1.5}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":1e3}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":{"id":"q00"}}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":["q00"]}}`,
		`{"stream":"questions","payload":{"action":"retrieve","pk":99999999999999999999}}`,
		`{"stream":"questions","payload":{"action":"retrieve","data":{"pk":false}}}`,
		`{"stream":"questions","payload":{"action":"list","request_id":"r"},"stream":"notes"}`,
		`{"stream":"questions","payload":{"action":"list","request_id":1,"request_id":2}}`,
		`{"stream":"que\u0073tions","payload":{"action":"li\u0073t","request_id":"\u00e9\ud83d\ude00"}}`,
		"{\"stream\":\"questions\",\"payload\":{\"action\":\"list\",\"request_id\":\"\xff\"}}",
		"{\"stream\":\"\\ud800\",\"payload\":{\"action\":\"list\"}}",
		" \t\n{ \"stream\" : \"questions\" , \"payload\" : { \"action\" : \"list\" , \"request_id\" : [ 1 , { \"a\" : \"b c\" } ] } } \n",
		`{"stream":"questions","payload":{"action":"list","request_id":"` + strings.Repeat("r", 4096) + `"}}`,
		`{"stream":"questions","payload":{"action":"list","request_id":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`,
	}
	// A huge request_id that keeps the frame (and the reply) under the
	// message limit, and a frame over the limit.
	return append(frames,
		`{"stream":"widgets","payload":{"action":"list","request_id":"`+strings.Repeat("h", 100_000)+`"}}`,
		`{"stream":"questions","payload":{"action":"list","request_id":"`+strings.Repeat("h", protocol.MaxMessage)+`"}}`,
	)
}

func FuzzHandle(f *testing.F) {
	for _, fr := range fzSeedFrames() {
		f.Add([]byte(fr), false)
		f.Add([]byte(fr), true)
	}
	reg := bindings.Registry(resource.Settings{})
	strict := os.Getenv("WSBIND_FUZZ_STRICT") == "1"
	f.Fuzz(func(t *testing.T, frame []byte, authenticated bool) {
		log := &fzLogger{}
		r := router.New(router.Config{Registry: reg, Store: fzNewStore(), Now: fzClock, Log: log})
		conn := router.Conn{ID: "conn-1"}
		if authenticated {
			conn.User = identity.User{ID: "alice"}
		}
		in := bytes.Clone(frame)
		reply := r.Handle(context.Background(), conn, frame)
		if !bytes.Equal(in, frame) {
			t.Errorf("Handle modified its input frame")
		}
		status := fzCheckReply(t, frame, reply)
		if strict && status == 500 {
			t.Errorf("500 reply (internal error logged: %s)\nframe: %.600q\nreply: %.600s", log.last, frame, reply)
		}
		if status == 500 && log.internal == 0 {
			t.Errorf("500 reply without a logged internal error\nreply: %s", reply)
		}
	})
}

// fzCheckReply checks one reply against the contract and returns its status.
func fzCheckReply(t *testing.T, frame, reply []byte) int {
	t.Helper()
	fail := func(format string, args ...any) int {
		t.Helper()
		t.Fatalf("%s\nframe (%d bytes): %.600q\nreply (%d bytes): %.600s", fmt.Sprintf(format, args...), len(frame), frame, len(reply), reply)
		return 0
	}
	if len(reply) > protocol.MaxMessage {
		fail("reply is %d bytes, over the %d-byte message limit", len(reply), protocol.MaxMessage)
	}
	if !json.Valid(reply) {
		fail("reply is not valid JSON")
	}
	if !utf8.Valid(reply) {
		fail("reply is not valid UTF-8 (a WebSocket text frame must be)")
	}
	top, err := fzMembers(reply)
	if err != nil {
		fail("reply is not a JSON object: %v", err)
	}
	if err := fzExactKeys(top, "stream", "payload"); err != nil {
		fail("reply: %v", err)
	}
	payload, err := fzMembers(top["payload"])
	if err != nil {
		fail("reply payload is not a JSON object: %v", err)
	}
	status, err := strconv.Atoi(string(payload["response_status"]))
	if err != nil {
		fail("response_status %s is not an integer", payload["response_status"])
	}
	// A success may carry the object's version, and a truncated one its
	// pk; nothing else, and an error neither.
	keys := []string{"action", "data", "errors", "response_status", "request_id"}
	if v, ok := payload["version"]; ok {
		if n, err := strconv.ParseInt(string(v), 10, 64); err != nil || n < 1 || status/100 != 2 {
			fail("version %s in a %d reply: want a positive integer, in a success only", v, status)
		}
		keys = append(keys, "version")
	}
	if _, ok := payload["truncated"]; ok {
		if string(payload["truncated"]) != "true" || string(payload["data"]) != "null" || status/100 != 2 {
			fail("truncated %s with data %.100s in a %d reply: want true, data null, in a success only", payload["truncated"], payload["data"], status)
		}
		keys = append(keys, "truncated", "pk")
	}
	if c, ok := payload["cursor"]; ok {
		var text string
		if json.Unmarshal(c, &text) != nil || status != 200 || (string(payload["action"]) != `"list"` && string(payload["action"]) != `"subscribe"`) {
			fail("cursor %s in a %d %s reply: want a string, in a list's or subscribe's success only", c, status, payload["action"])
		} else if _, ok := store.ParseCursor(text); !ok {
			fail("cursor %s does not read back", c)
		}
		keys = append(keys, "cursor")
	}
	if err := fzExactKeys(payload, keys...); err != nil {
		fail("reply payload: %v", err)
	}
	switch status {
	case 200, 201, 400, 401, 404, 409, 413, 500:
	default:
		fail("response_status %d is not one of the protocol's", status)
	}
	var errs []json.RawMessage
	if err := json.Unmarshal(payload["errors"], &errs); err != nil || errs == nil {
		fail("errors %s is not an array", payload["errors"])
	}
	ok := status/100 == 2
	if ok != (len(errs) == 0) {
		fail("status %d with %d errors: errors must be empty exactly when the status is 2xx", status, len(errs))
	}
	if len(errs) > 0 && string(payload["data"]) != "null" {
		fail("an error reply carries data %.200s, want null", payload["data"])
	}
	if want, ok := fzRequestID(frame); ok {
		var got, exp bytes.Buffer
		if err := json.Compact(&got, payload["request_id"]); err != nil {
			fail("request_id: %v", err)
		}
		if err := json.Compact(&exp, want); err != nil {
			fail("frame request_id: %v", err)
		}
		if !bytes.Equal(got.Bytes(), exp.Bytes()) {
			fail("request_id %.200s, want the frame's %.200s", got.Bytes(), exp.Bytes())
		}
	}
	return status
}

// fzRequestID returns payload.request_id of a frame that protocol.Decode can
// read it from: at most the message limit, valid UTF-8 and JSON, an object
// whose payload is an object holding request_id.
func fzRequestID(frame []byte) (json.RawMessage, bool) {
	if len(frame) > protocol.MaxMessage || !utf8.Valid(frame) || !json.Valid(frame) {
		return nil, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(frame, &top) != nil || top == nil {
		return nil, false
	}
	var payload map[string]json.RawMessage
	if json.Unmarshal(top["payload"], &payload) != nil || payload == nil {
		return nil, false
	}
	id, ok := payload["request_id"]
	if ok {
		// Longer request_ids are refused, not echoed (protocol.MaxEcho).
		var b bytes.Buffer
		if json.Compact(&b, id) != nil || b.Len() > protocol.MaxEcho {
			return nil, false
		}
	}
	return id, ok
}

// fzMembers reads a JSON object's members, failing on a repeated key (which a
// map would hide) or on anything but an object.
func fzMembers(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("starts with %v", tok)
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("key %v is not a string", tok)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %q repeated", key)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trailing data after the object")
	}
	return out, nil
}

func fzExactKeys(m map[string]json.RawMessage, keys ...string) error {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("key %q missing (have %d keys)", k, len(m))
		}
	}
	if len(m) != len(keys) {
		var extra []string
		for k := range m {
			extra = append(extra, strconv.Quote(k))
		}
		return fmt.Errorf("keys %s, want exactly %q", strings.Join(extra, ","), keys)
	}
	return nil
}

func FuzzDecode(f *testing.F) {
	for _, fr := range fzSeedFrames() {
		f.Add([]byte(fr))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := protocol.Decode(frame)
		if err != nil {
			if err.Code() != apierr.CodeInvalidMessage {
				t.Fatalf("Decode error code %d, want CodeInvalidMessage\nframe: %q", err.Code(), frame)
			}
			if req.RequestID != nil && !json.Valid(req.RequestID) {
				t.Fatalf("RequestID %q is not valid JSON\nframe: %q", req.RequestID, frame)
			}
			return
		}
		if !req.HasStream || !req.HasAction {
			t.Fatalf("Decode succeeded with HasStream=%v HasAction=%v\nframe: %q", req.HasStream, req.HasAction, frame)
		}
		if !json.Valid(frame) {
			t.Fatalf("Decode accepted a frame that is not valid JSON: %q", frame)
		}
		for name, raw := range map[string]json.RawMessage{"RequestID": req.RequestID, "Data": req.Data} {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("%s %q is not valid JSON\nframe: %q", name, raw, frame)
			}
		}
		if !utf8.ValidString(req.Stream) || !utf8.ValidString(req.Action) || !utf8.ValidString(req.PK) {
			t.Fatalf("Decode returned invalid UTF-8: stream %q action %q pk %q", req.Stream, req.Action, req.PK)
		}
	})
}
