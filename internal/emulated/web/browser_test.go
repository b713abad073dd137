package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/bindings"
	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
	"github.com/wsbind/wsbind/resource"
)

// testServer is what the browser test drives: the emulator's origin, the
// bindings its guests serve, and its store, to check what the page did.
type testServer struct {
	URL   string // http://127.0.0.1:port
	Reg   *resource.Registry
	Store store.Store
}

// newEmulatorServer starts the real emulator: the page, the gateway, the
// wasm guests and the DynamoDB endpoint with its change stream.
func newEmulatorServer(t *testing.T) *testServer {
	t.Helper()
	em := emulatortest.Start(t, nil)
	return &testServer{
		URL:   strings.TrimSuffix(em.DebuggerURL(), "/"),
		Reg:   bindings.Registry(resource.Settings{}),
		Store: dynamo.New(dynamo.Config{Client: emulator.DynamoDBClient(em.DynamoDBEndpoint()), Tables: emulator.Tables}),
	}
}

// The browser test drives the debugger in headless Chromium against
// newTestServer. It skips when no Chromium is found, unless
// WSBIND_REQUIRE_BROWSER=1 (CI), and saves a screenshot to WSBIND_ARTIFACTS
// (or the test's temporary directory).

// findChromium returns the browser to run: WSBIND_CHROMIUM, or the first
// Chromium or Chrome on PATH.
func findChromium() string {
	if p := os.Getenv("WSBIND_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// wait polls a JavaScript condition for up to 10 s.
func wait(cond string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(10*time.Second))
}

// choose picks the option value of a select as a user would, firing change.
func choose(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		got, err := chromedp.Evaluate[string](`(() => { const e = document.getElementById(`+js(id)+`);
			e.value = `+js(value)+`; e.dispatchEvent(new Event("change", {bubbles: true})); return e.value; })()`)(ctx, t)
		if err == nil && got != value {
			err = fmt.Errorf("select #%s has no option %q", id, value)
		}
		return err
	})
}

// typeData replaces the data field's text by typing it.
func typeData(text string) chromedp.Action[chromedp.Void] {
	return typeInto("data", text)
}

// typeInto replaces a field's text by typing it.
func typeInto(id, text string) chromedp.Action[chromedp.Void] {
	empty := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`document.getElementById(`+js(id)+`).value = ""`)(ctx, t)
		return err
	})
	if text == "" {
		return empty
	}
	return chromedp.Steps(empty, chromedp.SendKeys(chromedp.ID(id), text))
}

// entry is a log entry as the page shows it: its data attributes, the
// label, time and text of its summary line, and the frame it details.
type entry struct {
	Kind      string `json:"kind"`
	Stream    string `json:"stream"`
	Action    string `json:"action"`
	Status    string `json:"status"`
	PK        string `json:"pk"`
	Version   string `json:"version"`
	Cursor    string `json:"cursor"`
	Replay    string `json:"replay"`
	RequestID string `json:"requestId"`
	MS        string `json:"ms"`
	Label     string `json:"label"`
	Time      string `json:"time"`
	Summary   string `json:"summary"`
	Body      string `json:"body"`
	Open      bool   `json:"open"`
}

// entries reads the log, top to bottom.
func entries(ctx context.Context, t *testing.T) []entry {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]entry](`[...document.querySelectorAll("#log li")].map(li => ({
		...li.dataset, label: li.querySelector(".kind").textContent, time: li.querySelector(".time").textContent,
		summary: li.querySelector("summary").textContent,
		body: (li.querySelector("pre") || {}).textContent || "", open: li.querySelector("details").open}))`))
	if err != nil {
		t.Fatalf("reading the log: %v", err)
	}
	return got
}

// frame is the part of a reply or push the test reads.
type frame struct {
	Stream  string `json:"stream"`
	Payload struct {
		Action    string          `json:"action"`
		PK        string          `json:"pk"`
		Model     string          `json:"model"`
		Status    int             `json:"response_status"`
		RequestID json.RawMessage `json:"request_id"`
		Version   int             `json:"version"`
		Cursor    string          `json:"cursor"`
		Replay    bool            `json:"replay"`
		Data      struct {
			ID   string `json:"id"`
			Text string `json:"question_text"`
		} `json:"data"`
	} `json:"payload"`
}

func decode(t *testing.T, what, s string) frame {
	t.Helper()
	var f frame
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatalf("%s is not a frame: %v\n%s", what, err, s)
	}
	return f
}

func TestDebugger_Browser(t *testing.T) {
	browser := findChromium()
	if browser == "" {
		if os.Getenv("WSBIND_REQUIRE_BROWSER") == "1" {
			t.Fatal("no Chromium found (set WSBIND_CHROMIUM or install chromium) and WSBIND_REQUIRE_BROWSER=1")
		}
		t.Skip("no Chromium found: install chromium or set WSBIND_CHROMIUM to run the browser test")
	}
	srv := newEmulatorServer(t)

	// A guard for the whole test; each wait has its own 10 s limit.
	guard, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(guard,
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(1200, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()

	// Every console error and uncaught exception (a CSP refusal, a script
	// bug) fails the test at the end.
	var (
		consoleMu   sync.Mutex
		consoleErrs []string
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				consoleMu.Lock()
				consoleErrs = append(consoleErrs, m.String())
				consoleMu.Unlock()
			}
		}
	}()
	defer func() {
		consoleMu.Lock()
		defer consoleMu.Unlock()
		for _, m := range consoleErrs {
			t.Errorf("browser console: %s", m)
		}
	}()

	// The page loads, and its selects list the registry's bindings.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		wait(`document.querySelectorAll("#stream option").length > 0`),
	); err != nil {
		t.Fatalf("opening the debugger: %v", err)
	}
	streams, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#stream option")].map(o => o.value)`))
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.Reg.Streams(); !slices.Equal(streams, want) {
		t.Errorf("stream select: got %v, want %v", streams, want)
	}
	for _, s := range []string{"questions", "notes"} {
		if !slices.Contains(streams, s) {
			t.Errorf("stream select lacks %q: %v", s, streams)
		}
	}
	for _, s := range srv.Reg.Streams() {
		var want []string
		for _, a := range srv.Reg.Lookup(s).Actions() {
			want = append(want, a.Name)
		}
		if err := chromedp.Do(ctx, choose("stream", s)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#action option")].map(o => o.value)`))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s action select: got %v, want %v", s, got, want)
		}
	}

	// The keyboard reaches Connect from the token field, with a visible
	// focus ring.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("token")), chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	focus, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[document.activeElement.id,
		document.activeElement.matches(":focus-visible") ? getComputedStyle(document.activeElement).outlineStyle : "not focus-visible"]`))
	if err != nil {
		t.Fatal(err)
	}
	if focus[0] != "connect" || focus[1] == "none" || focus[1] == "not focus-visible" {
		t.Errorf("Tab from the token field: got focus on #%s, outline %s; want #connect with an outline", focus[0], focus[1])
	}

	// Connect from the keyboard: Enter in the token field.
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.ID("token")),
		chromedp.KeyEvent("\r"),
		wait(`document.getElementById("status").dataset.state === "open"`),
	); err != nil {
		t.Fatalf("connecting: %v", err)
	}

	// Create a question with the Send button.
	text1 := "From the browser " + strconv.FormatInt(time.Now().UnixNano(), 36) + "?"
	if err := chromedp.Do(ctx,
		choose("stream", "questions"),
		choose("action", "create"),
		typeData(`{"question_text": `+js(text1)+`}`),
		chromedp.Click(chromedp.ID("send")),
		wait(`document.querySelector('#log li[data-kind="reply"][data-action="create"]')`),
	); err != nil {
		t.Fatalf("creating a question: %v", err)
	}
	reply := entries(ctx, t)[0]
	created := decode(t, "create reply", reply.Body)
	if reply.Status != "201" || created.Payload.Status != 201 || created.Payload.Data.Text != text1 {
		t.Fatalf("create reply: got status %s, %+v; want 201 with %q", reply.Status, created.Payload, text1)
	}
	if ms, err := strconv.ParseFloat(reply.MS, 64); err != nil || ms < 0 || !strings.HasSuffix(reply.Time, "s") {
		t.Errorf("create reply time: got ms %q, label %q; want a duration", reply.MS, reply.Time)
	}
	if string(created.Payload.RequestID) != reply.RequestID {
		t.Errorf("reply request_id: got %s in the frame, %s in the entry", created.Payload.RequestID, reply.RequestID)
	}
	if reply.Version != "1" || created.Payload.Version != 1 || reply.PK != created.Payload.Data.ID || !strings.Contains(reply.Summary, "version 1") {
		t.Errorf("create reply: got version %q, pk %q, line %q (frame: version %d); want version 1 of %s shown",
			reply.Version, reply.PK, reply.Summary, created.Payload.Version, created.Payload.Data.ID)
	}
	if _, err := srv.Store.Get(context.Background(), store.Part{Stream: "questions"}, created.Payload.Data.ID); err != nil {
		t.Errorf("the store lacks the created question %q: %v", created.Payload.Data.ID, err)
	}

	// Invalid JSON is refused before sending, with a message.
	sentBefore := count(ctx, t, `#log li[data-kind="sent"]`)
	if err := chromedp.Do(ctx, typeData(`{"question_text": `), chromedp.Click(chromedp.ID("send"))); err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("data-error").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "not valid JSON") || count(ctx, t, `#data[aria-invalid="true"]`) != 1 {
		t.Errorf("invalid data: got message %q; want one naming the JSON error, on an invalid field", msg)
	}
	if n := count(ctx, t, `#log li[data-kind="sent"]`); n != sentBefore {
		t.Errorf("invalid data was sent: %d frames sent, want %d", n, sentBefore)
	}

	// The server's refusal comes back through the client as an error: its
	// status and message.
	if err := chromedp.Do(ctx,
		choose("action", "retrieve"),
		typeData(`{}`),
		typeInto("pk", "no-such-question"),
		chromedp.Click(chromedp.ID("send")),
		wait(`document.querySelector('#log li[data-kind="reply"][data-action="retrieve"]')`),
		typeInto("pk", ""),
	); err != nil {
		t.Fatalf("retrieving a missing question: %v", err)
	}
	if got := entries(ctx, t)[0]; got.Status != "404" || !strings.Contains(got.Summary, "Not found.") || decode(t, "404 reply", got.Body).Payload.Status != 404 {
		t.Errorf("retrieve of a missing pk: got %s %q, want 404 with the server's message", got.Status, got.Summary)
	}

	// Subscribe to creates with Ctrl+Enter.
	if err := chromedp.Do(ctx,
		choose("action", "subscribe"),
		typeData(`{"action": "create"}`),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		wait(`document.querySelector('#subs li[data-stream="questions"][data-action="create"][data-pk=""]')`),
	); err != nil {
		t.Fatalf("subscribing: %v", err)
	}
	subReply := entries(ctx, t)[0]
	if subReply.Kind != "reply" || subReply.Action != "subscribe" || subReply.Status != "200" {
		t.Errorf("newest entry after subscribing: got %+v, want the subscribe reply, 200", subReply)
	}
	// Where the subscription began: resuming from it replays what followed.
	since := subReply.Cursor
	if sf := decode(t, "subscribe reply", subReply.Body); since == "" || sf.Payload.Cursor != since || !strings.Contains(subReply.Summary, "cursor "+since) {
		t.Errorf("subscribe reply: got cursor %q, line %q, frame's cursor %q; want the frame's cursor shown", since, subReply.Summary, sf.Payload.Cursor)
	}

	// Another connection creates a question; the page shows the push.
	text2 := "From another client " + strconv.FormatInt(time.Now().UnixNano(), 36) + "?"
	id2 := createFromGo(t, srv.URL, text2)
	if err := chromedp.Do(ctx, wait(`document.querySelector('#log li[data-kind="push"]')`)); err != nil {
		t.Fatalf("waiting for the push: %v", err)
	}
	log := entries(ctx, t)
	push := log[0]
	pf := decode(t, "push", push.Body)
	if push.Kind != "push" || pf.Payload.Action != "create" || pf.Payload.PK != id2 || pf.Payload.Data.Text != text2 || pf.Payload.Model == "" {
		t.Errorf("newest entry: got %s %+v; want the push of create %s with %q", push.Kind, pf.Payload, id2, text2)
	}
	if !strings.HasPrefix(push.Time, "+") {
		t.Errorf("push time: got %q, want the time since connecting", push.Time)
	}
	// The line shows what the client made of the push: action, pk, version,
	// cursor, and that it is live, not replayed.
	if push.Action != "create" || push.PK != id2 || push.Version != "1" || pf.Payload.Version != 1 ||
		push.Cursor == "" || push.Cursor != pf.Payload.Cursor || push.Replay != "false" || pf.Payload.Replay || push.Label != "push" {
		t.Errorf("push entry: got action %q pk %q version %q cursor %q replay %q label %q; frame: version %d cursor %q replay %v",
			push.Action, push.PK, push.Version, push.Cursor, push.Replay, push.Label, pf.Payload.Version, pf.Payload.Cursor, pf.Payload.Replay)
	}
	for _, want := range []string{"create", "pk " + id2, "version 1", "cursor " + pf.Payload.Cursor} {
		if !strings.Contains(push.Summary, want) {
			t.Errorf("push line %q lacks %q", push.Summary, want)
		}
	}
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#subs li[data-action="create"]').dataset.cursor`)); err != nil || got != pf.Payload.Cursor {
		t.Errorf("subscription's cursor: got %q (%v), want the push's %q", got, err, pf.Payload.Cursor)
	}
	if n := count(ctx, t, `#log li[data-kind="push"]`); n != 1 {
		t.Errorf("got %d pushes, want 1 (the browser's own create came before it subscribed)", n)
	}

	// Expand the push, then switch to oldest first.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#log li[data-kind="push"] summary`)),
		chromedp.Click(chromedp.ID("newest-first")),
	); err != nil {
		t.Fatal(err)
	}
	reordered := entries(ctx, t)
	if last := reordered[len(reordered)-1]; last.Kind != "push" || !last.Open || len(reordered) != len(log) {
		t.Errorf("oldest first: got %d entries ending with %s (open %v), want %d ending with the open push", len(reordered), last.Kind, last.Open, len(log))
	}

	screenshot(ctx, t, "debugger.png")

	// A filtered subscription is listed with its filter; unsubscribe
	// removes exactly the subscription it names.
	if err := chromedp.Do(ctx,
		choose("action", "subscribe"),
		typeData(`{"action": "update", "filter": {"published": true}}`),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		wait(`document.querySelector('#subs li[data-action="update"][data-filter="{\\"published\\":true}"]')`),
		choose("action", "unsubscribe"),
		typeData(`{"action": "create"}`),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		wait(`!document.querySelector('#subs li[data-action="create"]')`),
	); err != nil {
		t.Fatalf("filtered subscribe, then unsubscribe: %v", err)
	}
	if n := count(ctx, t, `#subs li`); n != 1 {
		t.Errorf("after unsubscribing creates: %d subscriptions listed, want the filtered one", n)
	}

	// Disconnecting forgets the subscriptions.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("disconnect")),
		wait(`document.getElementById("status").dataset.state === "closed" && document.querySelectorAll("#subs li").length === 0`),
	); err != nil {
		t.Fatalf("disconnecting: %v", err)
	}

	// Resume: a reloaded page subscribes from the first subscription's
	// cursor and is pushed the change made since, marked replay. The client
	// holds it until the subscribe's reply is in, then hands it over before
	// the subscribe's promise settles, so the page logs it before the reply.
	if err := chromedp.Do(ctx,
		chromedp.Reload(),
		wait(`document.querySelectorAll("#stream option").length > 0 && document.querySelectorAll("#log li").length === 0`),
		chromedp.Click(chromedp.ID("connect")),
		wait(`document.getElementById("status").dataset.state === "open"`),
		choose("stream", "questions"),
		choose("action", "subscribe"),
		typeData(`{"action": "create", "since": `+js(since)+`}`),
		chromedp.Click(chromedp.ID("send")),
		wait(`document.querySelector('#subs li[data-action="create"]')`),
		wait(`document.querySelector('#log li[data-kind="push"][data-pk=`+js(id2)+`]')`),
	); err != nil {
		t.Fatalf("resuming from %s: %v", since, err)
	}
	log = entries(ctx, t)
	replayAt, replyAt := -1, -1
	for i, e := range log {
		if e.Kind == "push" && e.PK == id2 && replayAt < 0 {
			replayAt = i
		}
		if e.Kind == "reply" && e.Action == "subscribe" && replyAt < 0 {
			replyAt = i
		}
	}
	if replayAt < 0 || replyAt < 0 {
		t.Fatalf("after resuming from %s: no push of %s or no subscribe reply in %+v", since, id2, log)
	}
	replayed := log[replayAt]
	rf := decode(t, "replayed push", replayed.Body)
	if replayed.Replay != "true" || !rf.Payload.Replay || replayed.Label != "replay" || replayed.Version != "1" ||
		replayed.Cursor == "" || replayed.Cursor != rf.Payload.Cursor || rf.Payload.Data.Text != text2 {
		t.Errorf("replayed push: got replay %q label %q version %q cursor %q; frame: replay %v cursor %q text %q; want version 1, marked replay",
			replayed.Replay, replayed.Label, replayed.Version, replayed.Cursor, rf.Payload.Replay, rf.Payload.Cursor, rf.Payload.Data.Text)
	}
	if replyAt > replayAt { // newest first: the reply is above the replay it follows
		t.Errorf("the subscribe reply (entry %d) was logged before the replay (entry %d), want after", replyAt, replayAt)
	}
	if r := log[replyAt]; r.Status != "200" || !strings.Contains(r.Summary, "replayed from "+since) {
		t.Errorf("resumed subscribe reply: got %s %q, want 200 saying where it replayed from", r.Status, r.Summary)
	}
	screenshot(ctx, t, "debugger-resumed.png")
}

// screenshot saves the page to WSBIND_ARTIFACTS (or the test's temporary
// directory).
func screenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("WSBIND_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// count returns how many elements match a CSS selector.
func count(ctx context.Context, t *testing.T, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+js(sel)+`).length`))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// createFromGo creates a question over its own WebSocket connection and
// returns its id.
func createFromGo(t *testing.T, httpURL, text string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(httpURL, "http")+"/", nil)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	defer c.CloseNow()
	req := `{"stream":"questions","payload":{"action":"create","data":{"question_text":` + js(text) + `},"request_id":"go-1"}}`
	if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := decode(t, "second connection's reply", string(b))
	if f.Payload.Status != 201 || f.Payload.Data.ID == "" || string(f.Payload.RequestID) != `"go-1"` {
		t.Fatalf("second connection's create: got %s, want 201 with an id and request_id go-1", b)
	}
	c.Close(websocket.StatusNormalClosure, "")
	return f.Payload.Data.ID
}
