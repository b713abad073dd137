package emulator_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
)

// TestEmulator_Resume: every push and list reply carries a cursor; a
// new connection that subscribes since a list's cursor is pushed what it
// missed, marked replay, before its subscribe is answered, and then live
// changes; nothing from before the cursor.
func TestEmulator_Resume(t *testing.T) {
	// No overlap: the replay starts at the cursor itself, so what came
	// before it is not sent again (with the default overlap it may be,
	// as a duplicate the client drops).
	em := emulatortest.Start(t, func(c *emulator.Config) {
		c.GuestEnv = append(c.GuestEnv, "WSBIND_REPLAY_OVERLAP=0s")
	})
	writer := emulatortest.MustDial(t, em, "")
	before := writer.Send("questions", `{"action":"create","data":{"question_text":"before"}}`)
	if before.Payload.Status != 201 {
		t.Fatalf("create: %s", before.Raw)
	}
	time.Sleep(50 * time.Millisecond)
	list := writer.Send("questions", `{"action":"list"}`)
	var lp struct {
		Payload struct {
			Cursor string `json:"cursor"`
		} `json:"payload"`
	}
	json.Unmarshal([]byte(list.Raw), &lp)
	if !strings.HasPrefix(lp.Payload.Cursor, "1.") {
		t.Fatalf("list reply without a cursor: %s", list.Raw)
	}
	var pks []string
	for i := range 5 {
		r := writer.Send("questions", fmt.Sprintf(`{"action":"create","data":{"question_text":"missed %d"}}`, i))
		pks = append(pks, r.Object(t)["id"].(string))
	}
	// Let the fan-out record them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		probe := emulatortest.MustDial(t, em, "")
		r := probe.Send("questions", `{"action":"subscribe","data":{"action":"create","since":"`+lp.Payload.Cursor+`"}}`)
		if r.Payload.Status != 200 {
			t.Fatalf("subscribe since: %s", r.Raw)
		}
		if n := len(probe.Pushes()); n >= 5 || time.Now().After(deadline) {
			t.Logf("probe: %d replayed after %v", n, time.Until(deadline))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	late := emulatortest.MustDial(t, em, "")
	r := late.Send("questions", `{"action":"subscribe","data":{"action":"create","since":"`+lp.Payload.Cursor+`"}}`)
	if r.Payload.Status != 200 || strings.Contains(r.Raw, "gap") {
		t.Fatalf("subscribe since: %s", r.Raw)
	}
	// The replay came before the reply.
	replayed := late.Pushes()
	got := map[string]bool{}
	for _, p := range replayed {
		var f struct {
			Payload struct {
				Replay bool   `json:"replay"`
				Cursor string `json:"cursor"`
			} `json:"payload"`
		}
		json.Unmarshal([]byte(p.Raw), &f)
		if !f.Payload.Replay || !strings.HasPrefix(f.Payload.Cursor, "1.") || p.Payload.Version != 1 {
			t.Errorf("replayed push %s: want replay, a cursor and version 1", p.Raw)
		}
		got[p.Payload.PK] = true
	}
	for _, pk := range pks {
		if !got[pk] {
			t.Errorf("%s was not replayed (got %d pushes before the reply)", pk, len(replayed))
		}
	}
	if got[before.Object(t)["id"].(string)] {
		t.Errorf("the create before the cursor was replayed")
	}
	// Then live, with a cursor and no replay mark.
	c := writer.Send("questions", `{"action":"create","data":{"question_text":"live"}}`)
	live, err := late.Push("create", c.Object(t)["id"].(string))
	if err != nil {
		t.Fatalf("live push after the replay: %v", err)
	}
	if strings.Contains(live.Raw, `"replay"`) || !strings.Contains(live.Raw, `"cursor":"1.`) {
		t.Errorf("live push %s: want a cursor and no replay mark", live.Raw)
	}
}

// TestEmulator_ResumeGap: a cursor older than the history's retention
// (WSBIND_HISTORY_RETENTION, two seconds here) is answered gap, and
// nothing is replayed; the subscription still receives live pushes.
func TestEmulator_ResumeGap(t *testing.T) {
	em := emulatortest.Start(t, func(c *emulator.Config) {
		c.GuestEnv = append(c.GuestEnv, "WSBIND_HISTORY_RETENTION=2s")
	})
	writer := emulatortest.MustDial(t, em, "")
	list := writer.Send("questions", `{"action":"list"}`)
	var lp struct {
		Payload struct {
			Cursor string `json:"cursor"`
		} `json:"payload"`
	}
	json.Unmarshal([]byte(list.Raw), &lp)
	writer.Send("questions", `{"action":"create","data":{"question_text":"forgotten"}}`)
	time.Sleep(2500 * time.Millisecond)

	late := emulatortest.MustDial(t, em, "")
	r := late.Send("questions", `{"action":"subscribe","data":{"action":"create","since":"`+lp.Payload.Cursor+`"}}`)
	if r.Payload.Status != 200 || string(r.Payload.Data) != `{"action":"create","gap":true}` {
		t.Fatalf("subscribe since an expired cursor: %s, want gap", r.Raw)
	}
	if n := len(late.Pushes()); n != 0 {
		t.Errorf("a gap replayed %d pushes", n)
	}
	c := writer.Send("questions", `{"action":"create","data":{"question_text":"live"}}`)
	if _, err := late.Push("create", c.Object(t)["id"].(string)); err != nil {
		t.Errorf("live push after a gap: %v", err)
	}
}
