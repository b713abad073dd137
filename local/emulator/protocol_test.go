package emulator_test

// End-to-end tests of the protocol (docs/protocol.md) over real WebSocket
// connections to the emulator running the application's bindings
// (questions: polls.question, AllowAny, "publish", "unpublish" and
// "report"; notes: notes.note, IsAuthenticated, private to its owner, an
// admin reads all). One subtest per row of the contract. Ids and timestamps come from the system: the tests
// take them from the replies and never write them down.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
)

// ptAny in an expected reply's data stands for "whatever came back": the
// caller checks it separately (it holds generated ids and times).
const ptAny = "<any>"

// ptSettle is how long a test waits for pushes that must not come.
const ptSettle = 300 * time.Millisecond

// ptEnv is one emulator and the time it started: every generated
// timestamp must fall between then and now.
type ptEnv struct {
	em *emulator.Emulator
	t0 time.Time
}

func ptStart(t *testing.T, tune func(*emulator.Config)) *ptEnv {
	t.Helper()
	t0 := time.Now()
	return &ptEnv{em: start(t, tune), t0: t0}
}

func ptToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := emulator.Token(secret, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ptDecode parses one JSON value, keeping numbers as written (so 1.50
// stays "1.50"), and refuses trailing data.
func ptDecode(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

func ptMustDecode(t *testing.T, what, s string) any {
	t.Helper()
	v, err := ptDecode(s)
	if err != nil {
		t.Fatalf("%s is not JSON (%v): %.300s", what, err, s)
	}
	return v
}

// ptWrite sends msg as one text message (one frame).
func ptWrite(t *testing.T, c *client, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("write %.200q: %v", msg, err)
	}
}

// ptCall sends msg as is and returns the next reply. The tests keep one
// request in flight per connection, so the next reply is its reply.
func ptCall(t *testing.T, c *client, msg string) frame {
	t.Helper()
	ptWrite(t, c, []byte(msg))
	f, err := c.await(10*time.Second, func(f frame) bool { return f.isReply() })
	if err != nil {
		t.Fatalf("reply to %.300s: %v", msg, err)
	}
	return f
}

// ptExpect compares a reply with want, a whole reply as JSON, by value:
// the same keys (so all five payload keys, no others), the same values,
// numbers as written. A want payload data of ptAny accepts any data. It
// returns the reply's data.
func ptExpect(t *testing.T, f frame, want string) any {
	t.Helper()
	got, ok := ptMustDecode(t, "the reply", f.raw).(map[string]any)
	if !ok {
		t.Errorf("reply is not an object: %.300s", f.raw)
		return nil
	}
	w := ptMustDecode(t, "the expected reply", want).(map[string]any)
	var data any
	if gp, ok := got["payload"].(map[string]any); ok {
		if wp, ok := w["payload"].(map[string]any); ok {
			ptVersion(t, f, gp, wp)
			ptCursor(t, f, gp, wp)
		}
		data = gp["data"]
		if wp, ok := w["payload"].(map[string]any); ok && wp["data"] == ptAny {
			if _, present := gp["data"]; present {
				wp["data"] = gp["data"]
			}
		}
	}
	if !reflect.DeepEqual(got, w) {
		t.Errorf("reply:\n got  %.1500s\n want %.1500s", f.raw, want)
	}
	return data
}

// ptVersioned are the actions whose successful replies carry the
// object's version (docs/protocol.md section 8): create and the detail
// actions of the bundled bindings.
var ptVersioned = map[string]bool{"create": true, "retrieve": true, "update": true, "patch": true, "delete": true,
	"publish": true, "unpublish": true, "pin": true}

// ptVersion checks a reply's payload.version when want names none: a
// positive integer exactly on the successes of ptVersioned actions. It
// then drops it from got, so that the rest compares as written.
func ptVersion(t *testing.T, f frame, got, want map[string]any) {
	t.Helper()
	if _, ok := want["version"]; ok {
		return
	}
	status, _ := strconv.Atoi(fmt.Sprint(got["response_status"]))
	action, _ := got["action"].(string)
	v, has := got["version"]
	n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	switch should := status >= 200 && status < 300 && ptVersioned[action]; {
	case should && (!has || err != nil || n < 1):
		t.Errorf("reply: version %v, want a positive integer: %.300s", v, f.raw)
	case !should && has:
		t.Errorf("reply: version %v on a %v %s reply, want none: %.300s", v, status, action, f.raw)
	}
	delete(got, "version")
}

// ptCursor checks a reply's payload.cursor when want names none: a
// cursor exactly on a successful list or subscribe reply
// (docs/protocol.md section 10). It then drops it from got.
func ptCursor(t *testing.T, f frame, got, want map[string]any) {
	t.Helper()
	if _, ok := want["cursor"]; ok {
		return
	}
	status, _ := strconv.Atoi(fmt.Sprint(got["response_status"]))
	c, has := got["cursor"].(string)
	switch should := status == 200 && (got["action"] == "list" || got["action"] == "subscribe"); {
	case should && (!has || !strings.HasPrefix(c, "1.")):
		t.Errorf("reply: cursor %v, want one: %.300s", got["cursor"], f.raw)
	case !should && got["cursor"] != nil:
		t.Errorf("reply: cursor %v on a %v %v reply, want none: %.300s", got["cursor"], status, got["action"], f.raw)
	}
	delete(got, "cursor")
}

// ptReq writes a request frame.
func ptReq(stream, payload string) string {
	return fmt.Sprintf(`{"stream":%q,"payload":%s}`, stream, payload)
}

// ptReply writes an expected reply frame.
func ptReply(stream, action string, status int, data, errs, requestID string) string {
	return fmt.Sprintf(`{"stream":%q,"payload":{"action":%q,"data":%s,"errors":%s,"response_status":%d,"request_id":%s}}`,
		stream, action, data, errs, status, requestID)
}

// ptFail writes an expected failure reply: data null.
func ptFail(stream, action string, status int, errs, requestID string) string {
	return ptReply(stream, action, status, "null", errs, requestID)
}

// ptObject checks an object's exact keys and returns it.
func ptObject(t *testing.T, what string, v any, keys ...string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: want an object, got %#v", what, v)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	if len(got) != len(keys) {
		t.Errorf("%s: keys %v, want exactly %v", what, got, keys)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no key %q in %v", what, k, m)
		}
	}
	return m
}

// question checks a serialized question: exactly id, question_text,
// pub_date, published; a generated id; pub_date an RFC 3339 UTC time set
// by the server since the emulator started. It returns the id.
func (e *ptEnv) question(t *testing.T, v any, text string, published bool) string {
	t.Helper()
	m := ptObject(t, "question", v, "id", "question_text", "pub_date", "published")
	id, _ := m["id"].(string)
	if id == "" {
		t.Errorf("question: id %#v, want a generated string id", m["id"])
	}
	if m["question_text"] != text {
		t.Errorf("question %s: question_text %#v, want %q", id, m["question_text"], text)
	}
	if m["published"] != published {
		t.Errorf("question %s: published %#v, want %v", id, m["published"], published)
	}
	s, _ := m["pub_date"].(string)
	when, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil || !strings.HasSuffix(s, "Z"):
		t.Errorf("question %s: pub_date %#v, want an RFC 3339 UTC time", id, m["pub_date"])
	case when.Before(e.t0.Truncate(time.Second).Add(-time.Second)) || when.After(time.Now().Add(time.Second)):
		t.Errorf("question %s: pub_date %s, want the creation time (between %s and now)", id, s, e.t0.Format(time.RFC3339))
	}
	return id
}

// create creates a question through the API and returns its id and data.
func (e *ptEnv) create(t *testing.T, c *client, text string) (string, any) {
	t.Helper()
	f := ptCall(t, c, ptReq("questions", fmt.Sprintf(`{"action":"create","data":{"question_text":%q},"request_id":"mk"}`, text)))
	data := ptExpect(t, f, ptReply("questions", "create", 201, `"<any>"`, `[]`, `"mk"`))
	return e.question(t, data, text, false), data
}

// ptJSON marshals v (decoded with ptDecode) back to JSON text.
func ptJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ptGot waits for the push of action on pk and checks all of it: exactly
// stream and payload, the payload exactly action, data, model, pk and a
// positive version (no request_id, no response_status).
func ptGot(t *testing.T, who string, c *client, stream, action, model, pk string, data any) {
	t.Helper()
	f, err := c.push(action, pk)
	if err != nil {
		t.Errorf("%s: no %s push for %s: %v", who, action, pk, err)
		return
	}
	got := ptMustDecode(t, "the push", f.raw)
	if p, ok := got.(map[string]any)["payload"].(map[string]any); ok {
		if n, err := strconv.ParseInt(fmt.Sprint(p["version"]), 10, 64); err != nil || n < 1 {
			t.Errorf("%s: push version %v, want a positive integer: %.300s", who, p["version"], f.raw)
		}
		delete(p, "version")
		// Every push carries its history position (docs/protocol.md §10).
		if c, _ := p["cursor"].(string); !strings.HasPrefix(c, "1.") {
			t.Errorf("%s: push cursor %v, want one: %.300s", who, p["cursor"], f.raw)
		}
		delete(p, "cursor")
	}
	want := map[string]any{"stream": stream, "payload": map[string]any{
		"action": action, "data": data, "model": model, "pk": pk,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: push\n got  %.1000s\n want %.1000s", who, f.raw, ptJSON(t, want))
	}
}

// ptTake removes and returns the pushes a connection holds.
func ptTake(c *client) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pushes, rest []frame
	for _, f := range c.frames {
		if f.isReply() {
			rest = append(rest, f)
		} else {
			pushes = append(pushes, f)
		}
	}
	c.frames = rest
	return pushes
}

// ptQuiet waits ptSettle, then checks that none of the connections holds
// a push it was not expected to get (a second copy included).
func ptQuiet(t *testing.T, conns map[string]*client) {
	t.Helper()
	time.Sleep(ptSettle)
	for who, c := range conns {
		for _, f := range ptTake(c) {
			t.Errorf("%s: unexpected push %.500s", who, f.raw)
		}
	}
}

// ptDialWith opens a connection with extra handshake headers.
func ptDialWith(t *testing.T, url string, h http.Header) (*client, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, status, err
	}
	c.SetReadLimit(1 << 20)
	cl := &client{t: t, c: c, more: make(chan struct{}, 1)}
	go cl.read()
	t.Cleanup(func() { c.CloseNow() })
	return cl, 101, nil
}

// ptDynamo is the emulator's DynamoDB endpoint, for writes that do not
// go through the WebSocket API.
func ptDynamo(e *ptEnv) *dynamodb.Client { return emulator.DynamoDBClient(e.em.DynamoDBEndpoint()) }

// ptPut stores a question straight into the items table.
func ptPut(t *testing.T, e *ptEnv, id string, version int, attrs map[string]types.AttributeValue) {
	t.Helper()
	item := map[string]types.AttributeValue{
		"_stream":  &types.AttributeValueMemberS{Value: "questions"},
		"id":       &types.AttributeValueMemberS{Value: id},
		"_version": &types.AttributeValueMemberN{Value: strconv.Itoa(version)},
	}
	for k, v := range attrs {
		item[k] = v
	}
	_, err := ptDynamo(e).PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(emulator.Tables.Items),
		Item:      item,
	})
	if err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
}

func ptS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// TestProtocol_Requests: every request row of section 2 on questions and
// notes, and section 3's frame, stream and echo rules.
func TestProtocol_Requests(t *testing.T) {
	e := ptStart(t, nil)
	anon := mustDial(t, e.em, "")
	alice := mustDial(t, e.em, ptToken(t, "alice"))
	bob := mustDial(t, e.em, ptToken(t, "bob"))

	t.Run("create with valid data: 201, the serialized new object", func(t *testing.T) {
		f := ptCall(t, anon, ptReq("questions", `{"action":"create","pk":null,"data":{"question_text":"Why?"},"request_id":"abc-1"}`))
		data := ptExpect(t, f, ptReply("questions", "create", 201, `"<any>"`, `[]`, `"abc-1"`))
		id := e.question(t, data, "Why?", false)
		// The object is stored as it was answered.
		got := ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":"retrieve","pk":%q,"request_id":"g"}`, id)))
		ptExpect(t, got, ptReply("questions", "retrieve", 200, ptJSON(t, data), `[]`, `"g"`))
		// A second create gets another id.
		if id2, _ := e.create(t, anon, "Why?"); id2 == id {
			t.Errorf("two creates got the same id %s", id)
		}
	})

	t.Run("create ignores read-only fields the client sends (id among them)", func(t *testing.T) {
		f := ptCall(t, anon, ptReq("questions", `{"action":"create","data":{"id":"mine","question_text":"Ro?","pub_date":"1999-01-01T00:00:00Z","published":true,"extra":1}}`))
		data := ptExpect(t, f, ptReply("questions", "create", 201, `"<any>"`, `[]`, `null`))
		if id := e.question(t, data, "Ro?", false); id == "mine" {
			t.Errorf("the client chose the id: %s", f.raw)
		}
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"retrieve","pk":"mine"}`)),
			ptFail("questions", "retrieve", 404, `["Not found."]`, `null`))
	})

	t.Run("create with invalid data: 400, null, one object mapping each bad field to its messages", func(t *testing.T) {
		required := `[{"question_text":["This field is required."]}]`
		notString := `[{"question_text":["Not a valid string."]}]`
		for _, c := range []struct{ payload, errs string }{
			{`{"action":"create","data":{},"request_id":"i1"}`, required},
			{`{"action":"create","request_id":"i1"}`, required},             // absent data counts as {}
			{`{"action":"create","data":null,"request_id":"i1"}`, required}, // and so does null
			{`{"action":"create","data":{"question_text":""},"request_id":"i1"}`, `[{"question_text":["This field may not be blank."]}]`},
			{`{"action":"create","data":{"question_text":"   "},"request_id":"i1"}`, `[{"question_text":["This field may not be blank."]}]`},
			{`{"action":"create","data":{"question_text":"` + strings.Repeat("x", 201) + `"},"request_id":"i1"}`, `[{"question_text":["Ensure this field has no more than 200 characters."]}]`},
			{`{"action":"create","data":{"question_text":true},"request_id":"i1"}`, notString},
			{`{"action":"create","data":{"question_text":{"a":1}},"request_id":"i1"}`, notString},
			{`{"action":"create","data":{"question_text":["a"]},"request_id":"i1"}`, notString},
			{`{"action":"create","data":{"question_text":null},"request_id":"i1"}`, `[{"question_text":["This field may not be null."]}]`},
			{`{"action":"create","data":"text","request_id":"i1"}`, `[{"non_field_errors":["Invalid data. Expected a dictionary, but got string."]}]`},
			{`{"action":"create","data":12,"request_id":"i1"}`, `[{"non_field_errors":["Invalid data. Expected a dictionary, but got number."]}]`},
			{`{"action":"create","data":false,"request_id":"i1"}`, `[{"non_field_errors":["Invalid data. Expected a dictionary, but got boolean."]}]`},
			{`{"action":"create","data":[{"question_text":"x"}],"request_id":"i1"}`, `[{"non_field_errors":["Invalid data. Expected a dictionary, but got array."]}]`},
		} {
			ptExpect(t, ptCall(t, anon, ptReq("questions", c.payload)), ptFail("questions", "create", 400, c.errs, `"i1"`))
		}
		// 200 characters are allowed, and a number is taken as its decimal text.
		for _, c := range []struct{ in, text string }{
			{`"` + strings.Repeat("y", 200) + `"`, strings.Repeat("y", 200)},
			{`42`, "42"},
			{`1.50`, "1.5"},
			{`-1.50e3`, "-1500.0"},
			{`"  trimmed  "`, "trimmed"},
		} {
			f := ptCall(t, anon, ptReq("questions", `{"action":"create","data":{"question_text":`+c.in+`}}`))
			e.question(t, ptExpect(t, f, ptReply("questions", "create", 201, `"<any>"`, `[]`, `null`)), c.text, false)
		}
	})

	t.Run("retrieve of an existing pk: 200, the object", func(t *testing.T) {
		id, data := e.create(t, anon, "Retrieved?")
		for _, c := range []*client{anon, alice} {
			f := ptCall(t, c, ptReq("questions", fmt.Sprintf(`{"action":"retrieve","pk":%q,"request_id":["r",1]}`, id)))
			ptExpect(t, f, ptReply("questions", "retrieve", 200, ptJSON(t, data), `[]`, `["r",1]`))
		}
		// Without payload.pk, a detail action takes data.pk.
		f := ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":"retrieve","data":{"pk":%q}}`, id)))
		ptExpect(t, f, ptReply("questions", "retrieve", 200, ptJSON(t, data), `[]`, `null`))
	})

	t.Run("retrieve/update/patch/delete of a pk that does not exist or is not valid: 404 Not found.", func(t *testing.T) {
		id, data := e.create(t, anon, "Still here")
		for _, action := range []string{"retrieve", "update", "patch", "delete"} {
			for _, pk := range []string{`"01ZZZZZZZZZZZZZZZZZZZZZZZZ"`, `"invalid-pk-value"`, `-1`, `""`, `null`, `"` + id + `x"`} {
				f := ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":%q,"pk":%s,"data":{"question_text":"x"},"request_id":"nf"}`, action, pk)))
				ptExpect(t, f, ptFail("questions", action, 404, `["Not found."]`, `"nf"`))
			}
			// No pk at all.
			f := ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":%q,"data":{"question_text":"x"}}`, action)))
			ptExpect(t, f, ptFail("questions", action, 404, `["Not found."]`, `null`))
		}
		// None of that touched the existing object.
		ptExpect(t, ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":"retrieve","pk":%q}`, id))),
			ptReply("questions", "retrieve", 200, ptJSON(t, data), `[]`, `null`))
	})

	t.Run("update (full, every required field): 200, the updated object", func(t *testing.T) {
		id, before := e.create(t, anon, "Before update")
		pk := strconv.Quote(id)
		required := `[{"question_text":["This field is required."]}]`
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"update","pk":`+pk+`,"data":{"published":true}}`)),
			ptFail("questions", "update", 400, required, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"update","pk":`+pk+`}`)),
			ptFail("questions", "update", 400, required, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"update","pk":`+pk+`,"data":{"question_text":""}}`)),
			ptFail("questions", "update", 400, `[{"question_text":["This field may not be blank."]}]`, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"update","pk":`+pk+`,"data":"text"}`)),
			ptFail("questions", "update", 400, `[{"non_field_errors":["Invalid data. Expected a dictionary, but got string."]}]`, `null`))

		f := ptCall(t, anon, ptReq("questions", `{"action":"update","pk":`+pk+`,"data":{"question_text":"Full","published":true,"pub_date":"1999-01-01T00:00:00Z","id":"other"},"request_id":"u"}`))
		want := before.(map[string]any)
		want["question_text"] = "Full" // read-only fields keep their values
		ptExpect(t, f, ptReply("questions", "update", 200, ptJSON(t, want), `[]`, `"u"`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"retrieve","pk":`+pk+`}`)),
			ptReply("questions", "retrieve", 200, ptJSON(t, want), `[]`, `null`))
	})

	t.Run("patch (partial, only the fields sent): 200, the updated object", func(t *testing.T) {
		id, before := e.create(t, anon, "Before patch")
		pk := strconv.Quote(id)
		// Nothing sent: nothing validated, nothing changed.
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"patch","pk":`+pk+`}`)),
			ptReply("questions", "patch", 200, ptJSON(t, before), `[]`, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"patch","pk":`+pk+`,"data":{"published":true}}`)),
			ptReply("questions", "patch", 200, ptJSON(t, before), `[]`, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"patch","pk":`+pk+`,"data":{"question_text":null}}`)),
			ptFail("questions", "patch", 400, `[{"question_text":["This field may not be null."]}]`, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"patch","pk":`+pk+`,"data":[]}`)),
			ptFail("questions", "patch", 400, `[{"non_field_errors":["Invalid data. Expected a dictionary, but got array."]}]`, `null`))
		want := before.(map[string]any)
		want["question_text"] = "Patched"
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"patch","pk":`+pk+`,"data":{"question_text":"Patched"},"request_id":"p"}`)),
			ptReply("questions", "patch", 200, ptJSON(t, want), `[]`, `"p"`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"retrieve","pk":`+pk+`}`)),
			ptReply("questions", "retrieve", 200, ptJSON(t, want), `[]`, `null`))
	})

	t.Run("delete: 200, {}", func(t *testing.T) {
		id, _ := e.create(t, anon, "Doomed")
		pk := strconv.Quote(id)
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"delete","pk":`+pk+`,"request_id":"d"}`)),
			ptReply("questions", "delete", 200, `{}`, `[]`, `"d"`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"retrieve","pk":`+pk+`}`)),
			ptFail("questions", "retrieve", 404, `["Not found."]`, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"delete","pk":`+pk+`}`)),
			ptFail("questions", "delete", 404, `["Not found."]`, `null`))
	})

	t.Run("custom detail action (publish gets the pk): what it returns", func(t *testing.T) {
		id, before := e.create(t, anon, "To publish")
		want := before.(map[string]any)
		want["published"] = true
		f := ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":"publish","pk":%q,"request_id":"pub"}`, id)))
		ptExpect(t, f, ptReply("questions", "publish", 200, ptJSON(t, want), `[]`, `"pub"`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":"retrieve","pk":%q}`, id))),
			ptReply("questions", "retrieve", 200, ptJSON(t, want), `[]`, `null`))
	})

	t.Run("custom list action (report): what it returns", func(t *testing.T) {
		report := func() (count, published int64) {
			t.Helper()
			data := ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"report","request_id":"rep"}`)),
				ptReply("questions", "report", 200, `"<any>"`, `[]`, `"rep"`))
			m := ptObject(t, "report", data, "count", "published")
			c, err1 := m["count"].(json.Number).Int64()
			p, err2 := m["published"].(json.Number).Int64()
			if err1 != nil || err2 != nil || p > c {
				t.Fatalf("report: %v", data)
			}
			return c, p
		}
		c0, p0 := report()
		a, _ := e.create(t, anon, "Counted 1")
		e.create(t, anon, "Counted 2")
		ptCall(t, anon, ptReq("questions", fmt.Sprintf(`{"action":"publish","pk":%q}`, a)))
		if c, p := report(); c != c0+2 || p != p0+1 {
			t.Errorf("report after 2 creates and 1 publish: count %d, published %d; want %d, %d", c, p, c0+2, p0+1)
		}
	})

	t.Run("custom action that raises not-found: 404", func(t *testing.T) {
		for _, pk := range []string{`,"pk":"01ZZZZZZZZZZZZZZZZZZZZZZZZ"`, `,"pk":-1`, ``} {
			ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"publish"`+pk+`,"request_id":"x"}`)),
				ptFail("questions", "publish", 404, `["Not found."]`, `"x"`))
		}
	})

	t.Run("an action the binding does not have: 400 Invalid Action", func(t *testing.T) {
		for _, c := range []struct {
			c      *client
			stream string
			action string
		}{{anon, "questions", "frobnicate"}, {anon, "questions", ""}, {alice, "notes", "frobnicate"}, {alice, "notes", "publish"}} {
			f := ptCall(t, c.c, ptReq(c.stream, fmt.Sprintf(`{"action":%q,"request_id":"ia"}`, c.action)))
			ptExpect(t, f, ptFail(c.stream, c.action, 400, `["Invalid Action"]`, `"ia"`))
		}
	})

	var aliceNote map[string]any
	t.Run("notes, a user with a token: 201, owner = the token's sub", func(t *testing.T) {
		f := ptCall(t, alice, ptReq("notes", `{"action":"create","data":{"text":"mine","owner":"mallory","id":"n1"},"request_id":"n"}`))
		aliceNote = ptObject(t, "note", ptExpect(t, f, ptReply("notes", "create", 201, `"<any>"`, `[]`, `"n"`)), "id", "owner", "text", "pinned")
		if id, _ := aliceNote["id"].(string); id == "" || id == "n1" || aliceNote["owner"] != "alice" || aliceNote["text"] != "mine" {
			t.Fatalf("note: %s", f.raw)
		}
		ptExpect(t, ptCall(t, alice, ptReq("notes", fmt.Sprintf(`{"action":"retrieve","pk":%q}`, aliceNote["id"]))),
			ptReply("notes", "retrieve", 200, ptJSON(t, aliceNote), `[]`, `null`))
		ptExpect(t, ptCall(t, alice, ptReq("notes", `{"action":"create","data":{}}`)),
			ptFail("notes", "create", 400, `[{"text":["This field is required."]}]`, `null`))
	})

	t.Run("notes, not permitted (anonymous): 401 Permission Denied, before the action or object is looked at", func(t *testing.T) {
		if aliceNote == nil {
			t.Skip("no note")
		}
		pk := strconv.Quote(aliceNote["id"].(string))
		for _, p := range []string{
			`{"action":"create","data":{"text":"hi"}`,
			`{"action":"create","data":"not an object"`,
			`{"action":"list"`,
			`{"action":"list","data":{"page":99}`,
			`{"action":"retrieve","pk":` + pk,
			`{"action":"retrieve","pk":"no-such-note"`,
			`{"action":"update","pk":` + pk + `,"data":{"text":"hacked"}`,
			`{"action":"patch","pk":` + pk + `,"data":{"text":"hacked"}`,
			`{"action":"delete","pk":` + pk,
			`{"action":"subscribe","data":{"action":"create"}`,
			`{"action":"subscribe"`,
			`{"action":"frobnicate"`,
		} {
			var action struct{ Action string }
			json.Unmarshal([]byte(p+"}"), &action)
			f := ptCall(t, anon, ptReq("notes", p+`,"request_id":"pd"}`))
			ptExpect(t, f, ptFail("notes", action.Action, 401, `["Permission Denied"]`, `"pd"`))
		}
		// Nothing changed.
		ptExpect(t, ptCall(t, alice, ptReq("notes", fmt.Sprintf(`{"action":"retrieve","pk":%s}`, pk))),
			ptReply("notes", "retrieve", 200, ptJSON(t, aliceNote), `[]`, `null`))
	})

	t.Run("notes, another user's note: private, 404 for every action, absent from the list, unchanged", func(t *testing.T) {
		if aliceNote == nil {
			t.Skip("no note")
		}
		pk := strconv.Quote(aliceNote["id"].(string))
		for _, p := range []string{
			`{"action":"retrieve","pk":` + pk + `}`,
			`{"action":"patch","pk":` + pk + `,"data":{"text":"edited by bob","owner":"bob"}}`,
			`{"action":"update","pk":` + pk + `,"data":{"text":"updated by bob"}}`,
			`{"action":"pin","pk":` + pk + `}`,
			`{"action":"delete","pk":` + pk + `}`,
		} {
			var action struct{ Action string }
			json.Unmarshal([]byte(p), &action)
			ptExpect(t, ptCall(t, bob, ptReq("notes", p)), ptFail("notes", action.Action, 404, `["Not found."]`, `null`))
		}
		list := ptExpect(t, ptCall(t, bob, ptReq("notes", `{"action":"list"}`)), ptReply("notes", "list", 200, `"<any>"`, `[]`, `null`))
		if !reflect.DeepEqual(list, []any{}) {
			t.Errorf("bob's list: %s, want []", ptJSON(t, list))
		}
		ptExpect(t, ptCall(t, bob, ptReq("notes", `{"action":"count"}`)), ptReply("notes", "count", 200, `{"count":0}`, `[]`, `null`))
		ptExpect(t, ptCall(t, alice, ptReq("notes", `{"action":"retrieve","pk":`+pk+`}`)),
			ptReply("notes", "retrieve", 200, ptJSON(t, aliceNote), `[]`, `null`))
		ptExpect(t, ptCall(t, alice, ptReq("notes", `{"action":"delete","pk":`+pk+`}`)),
			ptReply("notes", "delete", 200, `{}`, `[]`, `null`))
		ptExpect(t, ptCall(t, alice, ptReq("notes", `{"action":"retrieve","pk":`+pk+`}`)),
			ptFail("notes", "retrieve", 404, `["Not found."]`, `null`))
	})

	t.Run("order of checks: frame, stream, permission, action, object, validation", func(t *testing.T) {
		id, _ := e.create(t, anon, "Ordered")
		pk := strconv.Quote(id)
		for _, c := range []struct {
			c         *client
			msg, want string
		}{
			// A bad frame on an unknown stream: the frame first.
			{anon, `{"stream":"nope","payload":{"action":7,"request_id":"o"}}`,
				`{"stream":"nope","payload":{"action":null,"data":null,"errors":["Invalid Message: action must be a string"],"response_status":400,"request_id":"o"}}`},
			{anon, ptReq("nope", `{"action":"nope","request_id":"o"}`), ptFail("nope", "nope", 400, `["Invalid Stream"]`, `"o"`)},
			{anon, ptReq("notes", `{"action":"nope","request_id":"o"}`), ptFail("notes", "nope", 401, `["Permission Denied"]`, `"o"`)},
			{alice, ptReq("notes", `{"action":"nope","request_id":"o"}`), ptFail("notes", "nope", 400, `["Invalid Action"]`, `"o"`)},
			{anon, ptReq("questions", `{"action":"update","pk":"no-such-pk","data":{"question_text":true},"request_id":"o"}`),
				ptFail("questions", "update", 404, `["Not found."]`, `"o"`)},
			{anon, ptReq("questions", `{"action":"patch","pk":"no-such-pk","data":"text","request_id":"o"}`),
				ptFail("questions", "patch", 404, `["Not found."]`, `"o"`)},
			{anon, ptReq("questions", `{"action":"update","pk":`+pk+`,"data":{"question_text":true},"request_id":"o"}`),
				ptFail("questions", "update", 400, `[{"question_text":["Not a valid string."]}]`, `"o"`)},
		} {
			ptExpect(t, ptCall(t, c.c, c.msg), c.want)
		}
	})

	t.Run("pk: an integer is its decimal string; payload.pk absent takes data.pk", func(t *testing.T) {
		ptPut(t, e, "7", 1, map[string]types.AttributeValue{"question_text": ptS("Seven"), "pub_date": ptS("2026-01-02T03:04:05Z")})
		seven := `{"id":"7","question_text":"Seven","pub_date":"2026-01-02T03:04:05Z","published":false}`
		for _, p := range []string{
			`{"action":"retrieve","pk":7}`,
			`{"action":"retrieve","pk":"7"}`,
			`{"action":"retrieve","data":{"pk":7}}`,
			`{"action":"retrieve","data":{"pk":"7"}}`,
			`{"action":"retrieve","pk":"7","data":{"pk":"8"}}`,
		} {
			ptExpect(t, ptCall(t, anon, ptReq("questions", p)), ptReply("questions", "retrieve", 200, seven, `[]`, `null`))
		}
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"retrieve","pk":"8","data":{"pk":"7"}}`)),
			ptFail("questions", "retrieve", 404, `["Not found."]`, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"patch","pk":7,"data":{"question_text":"Sept"}}`)),
			ptReply("questions", "patch", 200, strings.Replace(seven, "Seven", "Sept", 1), `[]`, `null`))
	})

	t.Run("request_id: any JSON value echoed verbatim, null when absent", func(t *testing.T) {
		for _, rid := range []string{`"abc-1"`, `""`, `1`, `1.50`, `-0`, `1e3`, `true`, `false`, `{"k":[1,true,null]}`, `[1,"two",{}]`, `"ünï\"cøde"`} {
			for _, c := range []struct{ payload, want string }{
				{`{"action":"retrieve","pk":"no-such-pk","request_id":` + rid + `}`, ptFail("questions", "retrieve", 404, `["Not found."]`, rid)},
				{`{"action":"frobnicate","request_id":` + rid + `}`, ptFail("questions", "frobnicate", 400, `["Invalid Action"]`, rid)},
				{`{"action":"subscribe","data":{"action":"create"},"request_id":` + rid + `}`, ptReply("questions", "subscribe", 200, `{"action":"create"}`, `[]`, rid)},
			} {
				ptExpect(t, ptCall(t, anon, ptReq("questions", c.payload)), c.want)
			}
			ptExpect(t, ptCall(t, anon, ptReq("nope", `{"action":"list","request_id":`+rid+`}`)), ptFail("nope", "list", 400, `["Invalid Stream"]`, rid))
		}
		// Absent or null: null.
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"frobnicate"}`)), ptFail("questions", "frobnicate", 400, `["Invalid Action"]`, `null`))
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"frobnicate","request_id":null}`)), ptFail("questions", "frobnicate", 400, `["Invalid Action"]`, `null`))
		// Verbatim: the number as written, not reformatted.
		f := ptCall(t, anon, ptReq("questions", `{"action":"frobnicate","request_id":1.50}`))
		if !strings.Contains(f.raw, `"request_id":1.50`) {
			t.Errorf("request_id 1.50 not echoed as written: %s", f.raw)
		}
		ptTake(anon) // pushes of the subscriptions made here are not this row's business
	})

	t.Run("malformed frames: 400 Invalid Message with a short reason, what could be read echoed, connection kept", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		inv := func(stream, action, reason, rid string) string {
			return fmt.Sprintf(`{"stream":%s,"payload":{"action":%s,"data":null,"errors":["Invalid Message: %s"],"response_status":400,"request_id":%s}}`,
				stream, action, reason, rid)
		}
		for _, m := range []struct{ msg, want string }{
			{``, inv("null", "null", "not valid JSON", "null")},
			{`{`, inv("null", "null", "not valid JSON", "null")},
			{`not json`, inv("null", "null", "not valid JSON", "null")},
			{`{"stream":"questions","payload":{"action":"list"}} trailing`, inv("null", "null", "not valid JSON", "null")},
			{`{"stream":"questions","payload":{"action":"list"}}{}`, inv("null", "null", "not valid JSON", "null")},
			{`[]`, inv("null", "null", "not a JSON object", "null")},
			{`"questions"`, inv("null", "null", "not a JSON object", "null")},
			{`null`, inv("null", "null", "not a JSON object", "null")},
			{`42`, inv("null", "null", "not a JSON object", "null")},
			{`{}`, inv("null", "null", "stream is missing", "null")},
			{`{"payload":{"action":"list","request_id":"m1"}}`, inv("null", `"list"`, "stream is missing", `"m1"`)},
			{`{"stream":null,"payload":{"action":"list","request_id":"m1"}}`, inv("null", `"list"`, "stream must be a string", `"m1"`)},
			{`{"stream":5,"payload":{"action":"list","request_id":{"a":1}}}`, inv("null", `"list"`, "stream must be a string", `{"a":1}`)},
			{`{"stream":["questions"],"payload":{"action":"list","request_id":2}}`, inv("null", `"list"`, "stream must be a string", `2`)},
			{`{"stream":"questions"}`, inv(`"questions"`, "null", "payload is missing", "null")},
			{`{"stream":"questions","payload":"list"}`, inv(`"questions"`, "null", "payload must be an object", "null")},
			{`{"stream":"questions","payload":[{"action":"list"}]}`, inv(`"questions"`, "null", "payload must be an object", "null")},
			{`{"stream":"questions","payload":{"request_id":"m2"}}`, inv(`"questions"`, "null", "action is missing", `"m2"`)},
			{`{"stream":"questions","payload":{"action":null,"request_id":"m2"}}`, inv(`"questions"`, "null", "action must be a string", `"m2"`)},
			{`{"stream":"questions","payload":{"action":7,"request_id":"m3"}}`, inv(`"questions"`, "null", "action must be a string", `"m3"`)},
			{`{"stream":"questions","payload":{"action":{"name":"list"},"request_id":"m3"}}`, inv(`"questions"`, "null", "action must be a string", `"m3"`)},
			{`{"stream":"questions","payload":{"action":"retrieve","pk":true,"request_id":"m4"}}`, inv(`"questions"`, `"retrieve"`, "pk must be a string or an integer", `"m4"`)},
			{`{"stream":"questions","payload":{"action":"retrieve","pk":1.5}}`, inv(`"questions"`, `"retrieve"`, "pk must be a string or an integer", "null")},
			{`{"stream":"questions","payload":{"action":"retrieve","pk":{"id":1}}}`, inv(`"questions"`, `"retrieve"`, "pk must be a string or an integer", "null")},
		} {
			ptExpect(t, ptCall(t, c, m.msg), m.want)
		}
		// The connection is still open and served.
		e.create(t, c, "Still served")
	})

	t.Run("malformed frames: text that is not UTF-8 is not JSON: 400 Invalid Message, connection kept", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		for _, msg := range []string{
			"{\"stream\":\"questions\",\"payload\":{\"action\":\"retrieve\",\"pk\":\"no-such-pk\",\"request_id\":\"\xff\"}}",
			"{\"stream\":\"questions\",\"payload\":{\"action\":\"create\",\"data\":{\"question_text\":\"caf\xe9\"}}}",
		} {
			ptExpect(t, ptCall(t, c, msg),
				`{"stream":null,"payload":{"action":null,"data":null,"errors":["Invalid Message: not valid UTF-8"],"response_status":400,"request_id":null}}`)
		}
		e.create(t, c, "Still served")
	})

	t.Run("unknown stream: 400 Invalid Stream, echoing stream and action", func(t *testing.T) {
		for _, c := range []struct{ stream, payload, want string }{
			{"polls", `{"action":"list","request_id":7}`, ptFail("polls", "list", 400, `["Invalid Stream"]`, `7`)},
			{"", `{"action":"list"}`, ptFail("", "list", 400, `["Invalid Stream"]`, `null`)},
			{"Questions", `{"action":"create","data":{"question_text":"x"}}`, ptFail("Questions", "create", 400, `["Invalid Stream"]`, `null`)},
			{"questions ", `{"action":"frobnicate"}`, ptFail("questions ", "frobnicate", 400, `["Invalid Stream"]`, `null`)},
		} {
			ptExpect(t, ptCall(t, anon, ptReq(c.stream, c.payload)), c.want)
		}
	})

	t.Run("echoed stream, action and request_id are at most 1024 bytes, else Invalid Message", func(t *testing.T) {
		long := strings.Repeat("r", 1100)
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"list","request_id":"`+long+`"}`)),
			`{"stream":"questions","payload":{"action":"list","data":null,"errors":["Invalid Message: request_id longer than 1024 bytes"],"response_status":400,"request_id":null}}`)
		ptExpect(t, ptCall(t, anon, ptReq(strings.Repeat("s", 1100), `{"action":"list","request_id":1}`)),
			`{"stream":null,"payload":{"action":"list","data":null,"errors":["Invalid Message: stream longer than 1024 bytes"],"response_status":400,"request_id":1}}`)
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"`+strings.Repeat("a", 1100)+`","request_id":2}`)),
			`{"stream":"questions","payload":{"action":null,"data":null,"errors":["Invalid Message: action longer than 1024 bytes"],"response_status":400,"request_id":2}}`)
		// A long request_id within the limit is echoed.
		ok := `"` + strings.Repeat("k", 1000) + `"`
		ptExpect(t, ptCall(t, anon, ptReq("questions", `{"action":"frobnicate","request_id":`+ok+`}`)),
			ptFail("questions", "frobnicate", 400, `["Invalid Action"]`, ok))
	})
}

// TestProtocol_List: pages of DEFAULT_PAGE_SIZE (25), oldest first, on a
// fresh emulator whose collection starts empty.
func TestProtocol_List(t *testing.T) {
	e := ptStart(t, nil)
	c := mustDial(t, e.em, "")
	alice := mustDial(t, e.em, ptToken(t, "alice"))
	invalid := ptFail("questions", "list", 404, `["Invalid page."]`, `"l"`)

	t.Run("list of an empty collection, page 1: []", func(t *testing.T) {
		for _, p := range []string{`{"action":"list","request_id":"l"}`, `{"action":"list","data":null,"request_id":"l"}`,
			`{"action":"list","data":{},"request_id":"l"}`, `{"action":"list","data":{"page":1},"request_id":"l"}`} {
			ptExpect(t, ptCall(t, c, ptReq("questions", p)), ptReply("questions", "list", 200, `[]`, `[]`, `"l"`))
		}
		ptExpect(t, ptCall(t, alice, ptReq("notes", `{"action":"list","request_id":"l"}`)), ptReply("notes", "list", 200, `[]`, `[]`, `"l"`))
		ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"list","data":{"page":2},"request_id":"l"}`)), invalid)
	})

	var all []any
	for i := range 26 {
		_, data := e.create(t, c, fmt.Sprintf("Q%d", i+1))
		all = append(all, data)
	}

	t.Run("list, data absent or page 1: at most DEFAULT_PAGE_SIZE (25) objects, oldest first", func(t *testing.T) {
		page1 := ptJSON(t, all[:25])
		for _, p := range []string{`{"action":"list","request_id":"l"}`, `{"action":"list","data":{"page":1},"request_id":"l"}`,
			`{"action":"list","data":{"page":"1"},"request_id":"l"}`, `{"action":"list","data":{"page":1.0},"request_id":"l"}`,
			`{"action":"list","data":{"page":" 1 "},"request_id":"l"}`} {
			ptExpect(t, ptCall(t, c, ptReq("questions", p)), ptReply("questions", "list", 200, page1, `[]`, `"l"`))
		}
	})

	t.Run("list page 2: the next page (26 stored: page 2 holds 1)", func(t *testing.T) {
		page2 := ptJSON(t, all[25:])
		for _, page := range []string{`2`, `"2"`, `2.0`} {
			ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"list","data":{"page":`+page+`},"request_id":"l"}`)),
				ptReply("questions", "list", 200, page2, `[]`, `"l"`))
		}
	})

	t.Run("list with a page past the end, 0, negative or not an integer: 404 Invalid page.", func(t *testing.T) {
		for _, page := range []string{`3`, `4`, `1000`, `0`, `-1`, `"0"`, `1.5`, `"2.0"`, `"abc"`, `""`, `true`, `null`, `[1]`, `{"n":1}`, `99999999999999999999`, `1e400`} {
			ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"list","data":{"page":`+page+`},"request_id":"l"}`)), invalid)
		}
		// A deleted object leaves the pages: 25 stored, page 2 is past the end.
		last := all[25].(map[string]any)["id"].(string)
		ptCall(t, c, ptReq("questions", fmt.Sprintf(`{"action":"delete","pk":%q}`, last)))
		ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"list","data":{"page":2},"request_id":"l"}`)), invalid)
		ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"list","request_id":"l"}`)),
			ptReply("questions", "list", 200, ptJSON(t, all[:25]), `[]`, `"l"`))
	})
}

// TestProtocol_Subscriptions: subscribe replies and the pushes they bring:
// who gets what, exactly once, and who gets nothing.
func TestProtocol_Subscriptions(t *testing.T) {
	e := ptStart(t, nil)
	writer := mustDial(t, e.em, "")

	t.Run("subscribe with create, update or delete, optional pk: 200, {action}", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		for _, action := range []string{"create", "update", "delete"} {
			for _, pk := range []string{``, `"pk":"some-pk",`, `"pk":12,`, `"pk":"not-created-yet",`} {
				f := ptCall(t, c, ptReq("questions", `{"action":"subscribe",`+pk+`"data":{"action":"`+action+`"},"request_id":"s"}`))
				ptExpect(t, f, ptReply("questions", "subscribe", 200, `{"action":"`+action+`"}`, `[]`, `"s"`))
			}
		}
	})

	t.Run("subscribe without data.action: 400 action required", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		for _, data := range []string{``, `,"data":null`, `,"data":{}`, `,"data":{"action":null}`, `,"data":"update"`, `,"data":["update"]`, `,"data":{"pk":"x"}`} {
			ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"subscribe"`+data+`,"request_id":"s"}`)),
				ptFail("questions", "subscribe", 400, `["action required"]`, `"s"`))
		}
	})

	t.Run("subscribe with an action other than create/update/delete: 400 Invalid subscription action", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		for _, action := range []string{`"retrieve"`, `"list"`, `"patch"`, `"publish"`, `"UPDATE"`, `""`, `3`, `true`, `["create"]`} {
			ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"subscribe","data":{"action":`+action+`},"request_id":"s"}`)),
				ptFail("questions", "subscribe", 400, `["Invalid subscription action"]`, `"s"`))
		}
		// A refused subscription subscribes to nothing.
		e.create(t, writer, "Nobody asked")
		ptQuiet(t, map[string]*client{"refused": c})
	})

	t.Run("subscribe to all objects vs one pk; delete pushes the object as last stored", func(t *testing.T) {
		all := mustDial(t, e.em, "")
		one := mustDial(t, e.em, "")
		other := mustDial(t, e.em, "")
		none := mustDial(t, e.em, "")
		sub := func(c *client, pk, action string) {
			t.Helper()
			p := `{"action":"subscribe","data":{"action":"` + action + `"}}`
			if pk != "" {
				p = fmt.Sprintf(`{"action":"subscribe","pk":%q,"data":{"action":%q}}`, pk, action)
			}
			ptExpect(t, ptCall(t, c, ptReq("questions", p)), ptReply("questions", "subscribe", 200, `{"action":"`+action+`"}`, `[]`, `null`))
		}
		conns := map[string]*client{"all": all, "one": one, "other": other, "none": none, "writer": writer}
		for _, a := range []string{"create", "update", "delete"} {
			sub(all, "", a)
		}
		y, yData := e.create(t, writer, "Y")
		ptGot(t, "all", all, "questions", "create", "polls.question", y, yData)
		sub(other, y, "update")
		ptQuiet(t, conns)

		x, xData := e.create(t, writer, "X")
		sub(one, x, "update")
		sub(one, x, "delete")
		ptGot(t, "all", all, "questions", "create", "polls.question", x, xData)
		ptQuiet(t, conns)

		f := ptCall(t, writer, ptReq("questions", fmt.Sprintf(`{"action":"patch","pk":%q,"data":{"question_text":"X2"}}`, x)))
		x2 := ptExpect(t, f, ptReply("questions", "patch", 200, `"<any>"`, `[]`, `null`))
		ptGot(t, "all", all, "questions", "update", "polls.question", x, x2)
		ptGot(t, "one", one, "questions", "update", "polls.question", x, x2)
		ptQuiet(t, conns)

		f = ptCall(t, writer, ptReq("questions", fmt.Sprintf(`{"action":"update","pk":%q,"data":{"question_text":"Y2"}}`, y)))
		y2 := ptExpect(t, f, ptReply("questions", "update", 200, `"<any>"`, `[]`, `null`))
		if yData.(map[string]any)["pub_date"] != y2.(map[string]any)["pub_date"] {
			t.Errorf("update changed pub_date: %v -> %v", yData, y2)
		}
		ptGot(t, "all", all, "questions", "update", "polls.question", y, y2)
		ptGot(t, "other", other, "questions", "update", "polls.question", y, y2)
		ptQuiet(t, conns)

		ptExpect(t, ptCall(t, writer, ptReq("questions", fmt.Sprintf(`{"action":"delete","pk":%q}`, x))),
			ptReply("questions", "delete", 200, `{}`, `[]`, `null`))
		ptGot(t, "all", all, "questions", "delete", "polls.question", x, x2)
		ptGot(t, "one", one, "questions", "delete", "polls.question", x, x2)
		ptQuiet(t, conns)

		// The custom action's write is a change like any other.
		f = ptCall(t, writer, ptReq("questions", fmt.Sprintf(`{"action":"publish","pk":%q}`, y)))
		y3 := ptExpect(t, f, ptReply("questions", "publish", 200, `"<any>"`, `[]`, `null`))
		ptGot(t, "all", all, "questions", "update", "polls.question", y, y3)
		ptGot(t, "other", other, "questions", "update", "polls.question", y, y3)
		ptQuiet(t, conns)

		// A failed write changes nothing and pushes nothing.
		ptCall(t, writer, ptReq("questions", fmt.Sprintf(`{"action":"update","pk":%q,"data":{}}`, y)))
		ptCall(t, writer, ptReq("questions", `{"action":"create","data":{}}`))
		ptCall(t, writer, ptReq("questions", `{"action":"delete","pk":"no-such-pk"}`))
		ptQuiet(t, conns)
	})

	t.Run("one push per change per connection, however many subscriptions match", func(t *testing.T) {
		a := mustDial(t, e.em, "")
		b := mustDial(t, e.em, ptToken(t, "bob"))
		id, _ := e.create(t, writer, "Watched")
		for _, p := range []string{
			`{"action":"subscribe","data":{"action":"update"}}`,
			`{"action":"subscribe","pk":"` + id + `","data":{"action":"update"}}`,
			`{"action":"subscribe","pk":"` + id + `","data":{"action":"update"}}`,
			`{"action":"subscribe","data":{"pk":"` + id + `","action":"update"}}`,
		} {
			wantStatus(t, ptCall(t, a, ptReq("questions", p)), 200)
		}
		wantStatus(t, ptCall(t, b, ptReq("questions", `{"action":"subscribe","data":{"action":"update"}}`)), 200)
		wantStatus(t, ptCall(t, b, ptReq("questions", `{"action":"subscribe","data":{"action":"update"}}`)), 200)
		conns := map[string]*client{"a": a, "b": b, "writer": writer}
		ptQuiet(t, conns)
		for i := range 2 {
			f := ptCall(t, writer, ptReq("questions", fmt.Sprintf(`{"action":"patch","pk":%q,"data":{"question_text":"Watched %d"}}`, id, i)))
			data := ptExpect(t, f, ptReply("questions", "patch", 200, `"<any>"`, `[]`, `null`))
			ptGot(t, "a", a, "questions", "update", "polls.question", id, data)
			ptGot(t, "b", b, "questions", "update", "polls.question", id, data)
			ptQuiet(t, conns)
		}
	})

	t.Run("subscribing to a pk that does not exist yet is allowed, and it is pushed when it comes", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		for _, a := range []string{"create", "update", "delete"} {
			ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"subscribe","pk":"pt-future","data":{"action":"`+a+`"}}`)),
				ptReply("questions", "subscribe", 200, `{"action":"`+a+`"}`, `[]`, `null`))
		}
		ptPut(t, e, "pt-future", 1, map[string]types.AttributeValue{"question_text": ptS("Came later"), "pub_date": ptS("2026-02-03T04:05:06Z")})
		want := ptMustDecode(t, "want", `{"id":"pt-future","question_text":"Came later","pub_date":"2026-02-03T04:05:06Z","published":false}`)
		ptGot(t, "subscriber", c, "questions", "create", "polls.question", "pt-future", want)
		e.create(t, writer, "Some other question")
		ptQuiet(t, map[string]*client{"subscriber": c})
	})

	t.Run("every push comes from the stored change: a write straight to the database reaches subscribers", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		for _, a := range []string{"create", "update", "delete"} {
			wantStatus(t, ptCall(t, c, ptReq("questions", `{"action":"subscribe","data":{"action":"`+a+`"}}`)), 200)
		}
		conns := map[string]*client{"subscriber": c}
		ptPut(t, e, "pt-direct", 1, map[string]types.AttributeValue{"question_text": ptS("By a script"), "pub_date": ptS("2026-03-04T05:06:07Z")})
		v1 := ptMustDecode(t, "want", `{"id":"pt-direct","question_text":"By a script","pub_date":"2026-03-04T05:06:07Z","published":false}`)
		ptGot(t, "subscriber", c, "questions", "create", "polls.question", "pt-direct", v1)
		ptQuiet(t, conns)

		ptPut(t, e, "pt-direct", 2, map[string]types.AttributeValue{"question_text": ptS("Edited by a script"), "pub_date": ptS("2026-03-04T05:06:07Z"),
			"published": &types.AttributeValueMemberBOOL{Value: true}})
		v2 := ptMustDecode(t, "want", `{"id":"pt-direct","question_text":"Edited by a script","pub_date":"2026-03-04T05:06:07Z","published":true}`)
		ptGot(t, "subscriber", c, "questions", "update", "polls.question", "pt-direct", v2)
		ptQuiet(t, conns)
		// The API sees the script's write.
		ptExpect(t, ptCall(t, writer, ptReq("questions", `{"action":"retrieve","pk":"pt-direct"}`)),
			ptReply("questions", "retrieve", 200, ptJSON(t, v2), `[]`, `null`))

		_, err := ptDynamo(e).DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
			TableName: aws.String(emulator.Tables.Items),
			Key:       map[string]types.AttributeValue{"_stream": ptS("questions"), "id": ptS("pt-direct")},
		})
		if err != nil {
			t.Fatal(err)
		}
		ptGot(t, "subscriber", c, "questions", "delete", "polls.question", "pt-direct", v2)
		ptQuiet(t, conns)
	})

	t.Run("subscriptions last until the connection closes; a closed subscriber does not stop the others", func(t *testing.T) {
		gone := mustDial(t, e.em, "")
		stays := mustDial(t, e.em, "")
		for _, c := range []*client{gone, stays} {
			wantStatus(t, ptCall(t, c, ptReq("questions", `{"action":"subscribe","data":{"action":"create"}}`)), 200)
		}
		// Many requests later, the subscription still holds.
		for range 5 {
			wantStatus(t, ptCall(t, stays, ptReq("questions", `{"action":"list"}`)), 200)
		}
		gone.c.Close(websocket.StatusNormalClosure, "bye")
		time.Sleep(100 * time.Millisecond)
		id, data := e.create(t, writer, "After a close")
		ptGot(t, "stays", stays, "questions", "create", "polls.question", id, data)
		ptQuiet(t, map[string]*client{"stays": stays})
	})

	t.Run("notes: subscribe needs permission (anonymous 401); pushes carry model notes.note and reach only the owner", func(t *testing.T) {
		anon := mustDial(t, e.em, "")
		alice := mustDial(t, e.em, ptToken(t, "alice"))
		tab := mustDial(t, e.em, ptToken(t, "alice"))
		bob := mustDial(t, e.em, ptToken(t, "bob"))
		ptExpect(t, ptCall(t, anon, ptReq("notes", `{"action":"subscribe","data":{"action":"create"}}`)),
			ptFail("notes", "subscribe", 401, `["Permission Denied"]`, `null`))
		for _, c := range []*client{bob, tab} {
			for _, a := range []string{"create", "update", "delete"} {
				ptExpect(t, ptCall(t, c, ptReq("notes", `{"action":"subscribe","data":{"action":"`+a+`"}}`)),
					ptReply("notes", "subscribe", 200, `{"action":"`+a+`"}`, `[]`, `null`))
			}
		}
		// Subscribed to questions only: no notes.
		wantStatus(t, ptCall(t, anon, ptReq("questions", `{"action":"subscribe","data":{"action":"create"}}`)), 200)
		conns := map[string]*client{"anon": anon, "alice": alice, "tab": tab, "bob": bob}

		f := ptCall(t, alice, ptReq("notes", `{"action":"create","data":{"text":"for alice's other tab only"}}`))
		note := ptObject(t, "note", ptExpect(t, f, ptReply("notes", "create", 201, `"<any>"`, `[]`, `null`)), "id", "owner", "text", "pinned")
		id, _ := note["id"].(string)
		if note["owner"] != "alice" {
			t.Errorf("owner: %s", f.raw)
		}
		ptGot(t, "tab", tab, "notes", "create", "notes.note", id, note)
		ptQuiet(t, conns)

		f = ptCall(t, alice, ptReq("notes", fmt.Sprintf(`{"action":"patch","pk":%q,"data":{"text":"changed"}}`, id)))
		changed := ptExpect(t, f, ptReply("notes", "patch", 200, `"<any>"`, `[]`, `null`))
		ptGot(t, "tab", tab, "notes", "update", "notes.note", id, changed)
		ptQuiet(t, conns)

		wantStatus(t, ptCall(t, alice, ptReq("notes", fmt.Sprintf(`{"action":"delete","pk":%q}`, id))), 200)
		ptGot(t, "tab", tab, "notes", "delete", "notes.note", id, changed)
		ptQuiet(t, conns)
	})
}

// TestProtocol_Size: API Gateway's message and frame limits, replies and
// pushes over 128 KB, and an unexpected server-side failure.
func TestProtocol_Size(t *testing.T) {
	e := ptStart(t, nil)

	closedWith := func(t *testing.T, c *client, code websocket.StatusCode) {
		t.Helper()
		_, err := c.await(10*time.Second, func(frame) bool { return false })
		if got := websocket.CloseStatus(err); got != code {
			t.Errorf("connection end: %v (close status %d), want close status %d", err, got, code)
		}
	}
	// fragments sends msg as one message, its frames sized by sizes (the
	// last size repeats).
	fragments := func(t *testing.T, c *client, msg []byte, sizes ...int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w, err := c.c.Writer(ctx, websocket.MessageText)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; len(msg) > 0; i++ {
			n := min(sizes[min(i, len(sizes)-1)], len(msg))
			if _, err := w.Write(msg[:n]); err != nil {
				return // the server may already have closed
			}
			msg = msg[n:]
		}
		w.Close()
	}
	padded := func(size int) []byte {
		head := `{"stream":"questions","payload":{"action":"create","request_id":"big","data":{"question_text":"Padded","pad":"`
		tail := `"}}}`
		return []byte(head + strings.Repeat("p", size-len(head)-len(tail)) + tail)
	}

	t.Run("a message under 128 KB in frames of at most 32 KB is served", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		msg := padded(120 << 10)
		fragments(t, c, msg, 30<<10)
		f, err := c.await(10*time.Second, func(f frame) bool { return f.isReply() })
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		e.question(t, ptExpect(t, f, ptReply("questions", "create", 201, `"<any>"`, `[]`, `"big"`)), "Padded", false)
		// A 32 KB frame is allowed.
		c2 := mustDial(t, e.em, "")
		ptWrite(t, c2, padded(32<<10))
		if f, err := c2.await(10*time.Second, func(f frame) bool { return f.isReply() }); err != nil {
			t.Errorf("32 KB frame: %v", err)
		} else {
			wantStatus(t, f, 201)
		}
	})

	t.Run("a message over 128 KB closes the connection with 1009", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		fragments(t, c, padded(128<<10+1), 16<<10)
		closedWith(t, c, websocket.StatusMessageTooBig)
		c2 := mustDial(t, e.em, "")
		fragments(t, c2, padded(200<<10), 200<<10)
		closedWith(t, c2, websocket.StatusMessageTooBig)
	})

	t.Run("a single frame over 32 KB closes the connection with 1009", func(t *testing.T) {
		for _, size := range []int{32<<10 + 1, 40 << 10} {
			c := mustDial(t, e.em, "")
			// The server may close before it has read the whole frame:
			// the write can fail; the close frame is what counts.
			_ = c.c.Write(context.Background(), websocket.MessageText, padded(size))
			closedWith(t, c, websocket.StatusMessageTooBig)
		}
	})

	t.Run("a continuation frame over 32 KB closes the connection with 1009", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		fragments(t, c, padded(60<<10), 1<<10, 40<<10)
		closedWith(t, c, websocket.StatusMessageTooBig)
	})

	t.Run("the emulator goes on serving after connections closed for size", func(t *testing.T) {
		wantStatus(t, ptCall(t, mustDial(t, e.em, ""), ptReq("questions", `{"action":"list"}`)), 200)
	})

	watcher := mustDial(t, e.em, "")
	wantStatus(t, ptCall(t, watcher, ptReq("questions", `{"action":"subscribe","data":{"action":"create"}}`)), 200)
	// Creates made above may still be on their way through the stream.
	// The stream is one ordered shard: once a marker written now is
	// pushed, they have all been delivered.
	ptPut(t, e, "pt-size-marker", 1, map[string]types.AttributeValue{"question_text": ptS("marker"), "pub_date": ptS("2026-01-01T00:00:00Z")})
	if _, err := watcher.push("create", "pt-size-marker"); err != nil {
		t.Fatalf("no push of the marker: %v", err)
	}
	ptTake(watcher)

	t.Run("a push that would exceed 128 KB is not dropped: data null, truncated, model and pk", func(t *testing.T) {
		ptPut(t, e, "pt-huge", 1, map[string]types.AttributeValue{"question_text": ptS(strings.Repeat("h", 131000)), "pub_date": ptS("2026-01-01T00:00:00Z")})
		f, err := watcher.push("create", "pt-huge")
		if err != nil {
			t.Fatalf("no push of the huge create: %v", err)
		}
		want := `{"stream":"questions","payload":{"action":"create","data":null,"model":"polls.question","pk":"pt-huge","version":1,"truncated":true}}`
		got := ptMustDecode(t, "push", f.raw)
		if p, _ := got.(map[string]any)["payload"].(map[string]any); p != nil {
			if c, _ := p["cursor"].(string); !strings.HasPrefix(c, "1.") {
				t.Errorf("truncated push without its cursor: %.300s", f.raw)
			}
			delete(p, "cursor")
		}
		if !reflect.DeepEqual(got, ptMustDecode(t, "want", want)) {
			t.Errorf("push:\n got  %.500s\n want %s", f.raw, want)
		}
		ptQuiet(t, map[string]*client{"watcher": watcher})
	})

	t.Run("a reply that would exceed 128 KB is not dropped: 413 Response too large", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		tooLarge := regexp.MustCompile(`^Response too large: ([0-9]+) bytes, the limit is 131072\.$`)
		check := func(t *testing.T, f frame, action, rid string, wantN int) {
			t.Helper()
			p := ptObject(t, "payload", ptMustDecode(t, "reply", f.raw).(map[string]any)["payload"], "action", "data", "errors", "response_status", "request_id")
			errs, _ := p["errors"].([]any)
			if p["action"] != action || p["data"] != nil || p["response_status"] != json.Number("413") || p["request_id"] != rid || len(errs) != 1 {
				t.Fatalf("reply: %.500s", f.raw)
			}
			s, _ := errs[0].(string)
			m := tooLarge.FindStringSubmatch(s)
			if m == nil {
				t.Fatalf("errors: %q", s)
			}
			if n, _ := strconv.Atoi(m[1]); n <= 131072 || (wantN >= 0 && n != wantN) {
				t.Errorf("errors: %q, want %d bytes (the reply it replaces)", s, wantN)
			}
		}
		// The reply it replaces: the same frame with the object as data.
		wouldBe := func(action, data, rid string) int {
			return len(fmt.Sprintf(`{"stream":"questions","payload":{"action":%q,"data":%s,"version":1,"errors":[],"response_status":200,"request_id":%q}}`, action, data, rid))
		}
		f := ptCall(t, c, ptReq("questions", `{"action":"retrieve","pk":"pt-huge","request_id":"r413"}`))
		huge := `{"id":"pt-huge","question_text":"` + strings.Repeat("h", 131000) + `","pub_date":"2026-01-01T00:00:00Z","published":false}`
		check(t, f, "retrieve", "r413", wouldBe("retrieve", huge, "r413"))

		// Two objects that fit one by one, not together.
		for _, id := range []string{"pt-half-1", "pt-half-2"} {
			ptPut(t, e, id, 1, map[string]types.AttributeValue{"question_text": ptS(strings.Repeat("b", 70000)), "pub_date": ptS("2026-01-01T00:00:00Z")})
			wantStatus(t, ptCall(t, c, ptReq("questions", `{"action":"retrieve","pk":"`+id+`"}`)), 200)
		}
		// Together (with the huge one) they would make a list reply over
		// the limit: the page truncates its largest entries, in place,
		// until it fits (the huge one, then one of the halves).
		f = ptCall(t, c, ptReq("questions", `{"action":"list","request_id":"l413"}`))
		wantStatus(t, f, 200)
		if len(f.raw) > 131072 {
			t.Errorf("list reply of %d bytes, over the limit", len(f.raw))
		}
		var page []map[string]any
		if err := json.Unmarshal(f.Payload.Data, &page); err != nil {
			t.Fatalf("list data: %v", err)
		}
		truncated := map[string]bool{}
		for _, o := range page {
			if o["truncated"] == true {
				truncated[o["id"].(string)] = true
				if len(o) != 2 {
					t.Errorf("a truncated entry holds %v, want id and truncated only", o)
				}
			}
		}
		if !truncated["pt-huge"] || truncated["pt-half-1"] == truncated["pt-half-2"] || len(truncated) != 2 {
			t.Errorf("truncated entries %v, want pt-huge and one of the halves", truncated)
		}
		// The connection goes on.
		wantStatus(t, ptCall(t, c, ptReq("questions", `{"action":"retrieve","pk":"pt-half-1"}`)), 200)
	})

	t.Run("unexpected server-side failure: 500 Internal Server Error, request_id kept, connection open", func(t *testing.T) {
		// An item no serializer can read, written by another writer.
		ptPut(t, e, "pt-corrupt", 1, map[string]types.AttributeValue{"question_text": ptS("Broken"), "pub_date": ptS("not a time")})
		c := mustDial(t, e.em, "")
		for _, p := range []string{
			`{"action":"retrieve","pk":"pt-corrupt","request_id":"e1"}`,
			`{"action":"patch","pk":"pt-corrupt","data":{"question_text":"Fixed?"},"request_id":"e1"}`,
			`{"action":"publish","pk":"pt-corrupt","request_id":"e1"}`,
		} {
			var a struct{ Action string }
			json.Unmarshal([]byte(p), &a)
			f := ptCall(t, c, ptReq("questions", p))
			ptExpect(t, f, ptFail("questions", a.Action, 500, `["Internal Server Error"]`, `"e1"`))
			if strings.Contains(f.raw, "not a time") || strings.Contains(f.raw, "corrupt") {
				t.Errorf("internal text reached the client: %s", f.raw)
			}
		}
		ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"retrieve","pk":"pt-half-1","request_id":"e2"}`)),
			ptReply("questions", "retrieve", 200, `"<any>"`, `[]`, `"e2"`))
	})
}

// TestProtocol_Auth: tokens in the URL or the Authorization header; none
// is anonymous; a bad one is refused at the handshake with 401.
func TestProtocol_Auth(t *testing.T) {
	e := ptStart(t, nil)
	url := e.em.WebSocketURL()
	noteBy := func(t *testing.T, c *client, want string) {
		t.Helper()
		for i := range 2 { // the user travels with every message
			f := ptCall(t, c, ptReq("notes", fmt.Sprintf(`{"action":"create","data":{"text":"by %s %d"}}`, want, i)))
			n := ptObject(t, "note", ptExpect(t, f, ptReply("notes", "create", 201, `"<any>"`, `[]`, `null`)), "id", "owner", "text", "pinned")
			if n["owner"] != want {
				t.Errorf("owner %v, want %s: %s", n["owner"], want, f.raw)
			}
		}
	}

	t.Run("token in the URL: the verified user", func(t *testing.T) {
		noteBy(t, mustDial(t, e.em, ptToken(t, "alice")), "alice")
	})

	t.Run("token in Authorization: Bearer: the verified user", func(t *testing.T) {
		c, status, err := ptDialWith(t, url, http.Header{"Authorization": {"Bearer " + ptToken(t, "bob")}})
		if err != nil {
			t.Fatalf("dial with a header: %d %v", status, err)
		}
		noteBy(t, c, "bob")
	})

	t.Run("no token: an anonymous connection", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		ptExpect(t, ptCall(t, c, ptReq("notes", `{"action":"create","data":{"text":"x"}}`)), ptFail("notes", "create", 401, `["Permission Denied"]`, `null`))
		wantStatus(t, ptCall(t, c, ptReq("questions", `{"action":"list"}`)), 200)
	})

	t.Run("an invalid, expired or wrongly signed token: HTTP 401 at the handshake", func(t *testing.T) {
		expired, err := emulator.Token(secret, "alice", -time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := emulator.Token([]byte("another-secret-of-at-least-32-bytes-long"), "alice", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		good := ptToken(t, "alice")
		tampered := good[:len(good)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(good, "AA")]
		for name, tok := range map[string]string{"garbage": "not-a-jwt", "expired": expired, "forged": forged, "tampered": tampered} {
			if _, status, err := ptDialWith(t, url+"?token="+tok, nil); err == nil || status != 401 {
				t.Errorf("%s token in the URL: status %d, err %v; want a 401 handshake", name, status, err)
			}
			if _, status, err := ptDialWith(t, url, http.Header{"Authorization": {"Bearer " + tok}}); err == nil || status != 401 {
				t.Errorf("%s token in the header: status %d, err %v; want a 401 handshake", name, status, err)
			}
		}
		// The refusals leave the gateway working.
		noteBy(t, mustDial(t, e.em, good), "alice")
	})
}

// TestProtocol_Tuned runs an emulator with its settings overridden: API
// Gateway's idle and lifetime limits shortened (the defaults are 10
// minutes and 2 hours; the connection ends with 1001 Going away), and
// DEFAULT_PAGE_SIZE set to 2.
func TestProtocol_Tuned(t *testing.T) {
	const idle, life = 700 * time.Millisecond, 2 * time.Second
	e := ptStart(t, func(c *emulator.Config) {
		c.IdleTimeout, c.MaxLifetime = idle, life
		c.GuestEnv = append(c.GuestEnv, "WSBIND_PAGE_SIZE=2")
	})

	t.Run("DEFAULT_PAGE_SIZE is overridable: pages of 2", func(t *testing.T) {
		c := mustDial(t, e.em, "")
		var all []any
		for i := range 3 {
			_, data := e.create(t, c, fmt.Sprintf("Small page %d", i))
			all = append(all, data)
		}
		for page, want := range map[string]string{`1`: ptJSON(t, all[:2]), `2`: ptJSON(t, all[2:])} {
			ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"list","data":{"page":`+page+`}}`)),
				ptReply("questions", "list", 200, want, `[]`, `null`))
		}
		ptExpect(t, ptCall(t, c, ptReq("questions", `{"action":"list","data":{"page":3}}`)),
			ptFail("questions", "list", 404, `["Invalid page."]`, `null`))
	})

	t.Run("idle timeout closes a quiet connection; activity keeps one open until its lifetime", func(t *testing.T) {
		t0 := time.Now()
		quiet := mustDial(t, e.em, "")
		busy := mustDial(t, e.em, "")
		done := make(chan time.Duration, 1)
		go func() {
			_, err := quiet.await(10*time.Second, func(frame) bool { return false })
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Errorf("quiet connection: %v, want close status 1001", err)
			}
			done <- time.Since(t0)
		}()
		for time.Since(t0) < life-500*time.Millisecond {
			wantStatus(t, ptCall(t, busy, ptReq("questions", `{"action":"list"}`)), 200)
			time.Sleep(250 * time.Millisecond)
		}
		if d := <-done; d < idle-100*time.Millisecond || d > life {
			t.Errorf("quiet connection closed after %v, want about %v", d, idle)
		}
		_, err := busy.await(5*time.Second, func(frame) bool { return false })
		if d := time.Since(t0); websocket.CloseStatus(err) != websocket.StatusGoingAway || d < life-100*time.Millisecond || d > life+2*time.Second {
			t.Errorf("busy connection: %v after %v, want close status 1001 after about %v", err, d, life)
		}
	})
}
