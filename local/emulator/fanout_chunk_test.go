package emulator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsbind/wsbind/local/emulatortest"
)

// TestEmulator_ChunkedFanout: a change with more subscribers than the
// chunking threshold (fanout.DefaultThreshold, 100) goes out through the
// in-process push workers, as on AWS through the push function, and
// reaches every subscriber exactly once, the changes in order.
func TestEmulator_ChunkedFanout(t *testing.T) {
	em := emulatortest.Start(t, nil)
	conns := lcDialAll(t, em, 250, "sub")
	for _, c := range conns {
		if r, _, err := c.do("subscribe", "", `{"action":"create"}`, lcLoadReply); err != nil || r.Status != 200 {
			t.Fatalf("%s subscribe: %v %s", c.name, err, r.Raw)
		}
	}
	var texts []string
	for i := range 3 {
		text := fmt.Sprintf("chunked %d", i)
		if r, _, err := conns[0].do("create", "", fmt.Sprintf(`{"question_text":%q}`, text), lcLoadReply); err != nil || r.Status != 201 {
			t.Fatalf("create: %v %s", err, r.Raw)
		}
		texts = append(texts, text)
	}
	deadline := time.Now().Add(time.Minute)
	for _, c := range conns {
		for c.pushCount() < len(texts) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would come now
	for _, c := range conns {
		ps := c.pushesCopy()
		var got []string
		for _, p := range ps {
			got = append(got, p.Text)
		}
		if fmt.Sprint(got) != fmt.Sprint(texts) {
			t.Fatalf("%s received %q, want %q once each, in order", c.name, got, texts)
		}
	}
}
