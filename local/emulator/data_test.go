package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
)

// syncBuffer is a log destination safe for the emulator's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startData starts an emulator keeping its data in dir, logging as JSON
// into log.
func startData(t *testing.T, dir string, log *syncBuffer) *emulator.Emulator {
	t.Helper()
	cfg := emulatortest.Config(t)
	cfg.DataDir = dir
	cfg.Log = slog.New(slog.NewJSONHandler(log, nil))
	em, err := emulator.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return em
}

func closeEm(t *testing.T, em *emulator.Emulator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := em.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestData_RestartKeepsItems: objects created through the WebSocket API
// are there after a restart with the same data directory, as they were
// written; after a crash that cut the log's last write short, the
// emulator says so in one log line and keeps everything before it.
func TestData_RestartKeepsItems(t *testing.T) {
	dir := t.TempDir()
	var log1 syncBuffer
	em := startData(t, dir, &log1)
	c := lcDialAll(t, em, 1, "before")[0]
	want := map[string]string{} // pk → question_text
	for _, text := range []string{"kept one", "kept two"} {
		r, _, err := c.do("create", "", `{"question_text":"`+text+`"}`, lcReplyTimeout)
		if err != nil || r.Status != 201 {
			t.Fatalf("create: %v %s", err, r.Raw)
		}
		want[lcID(r)] = text
	}
	c.c.CloseNow()
	closeEm(t, em)

	retrieveAll := func(em *emulator.Emulator, name string) {
		t.Helper()
		c := lcDialAll(t, em, 1, name)[0]
		defer c.c.CloseNow()
		for pk, text := range want {
			r, _, err := c.do("retrieve", pk, "", lcReplyTimeout)
			if err != nil || r.Status != 200 {
				t.Fatalf("%s: retrieve %s: %v %s", name, pk, err, r.Raw)
			}
			var obj struct {
				Text string `json:"question_text"`
			}
			if err := json.Unmarshal(r.Data, &obj); err != nil || obj.Text != text {
				t.Errorf("%s: retrieve %s: %s, want question_text %q", name, pk, r.Data, text)
			}
		}
	}
	var log2 syncBuffer
	em = startData(t, dir, &log2)
	retrieveAll(em, "restarted")
	if !strings.Contains(log2.String(), `"msg":"wsbind: data restored"`) {
		t.Errorf("the restart did not log what it restored:\n%s", log2.String())
	}
	c = lcDialAll(t, em, 1, "second")[0]
	if r, _, err := c.do("create", "", `{"question_text":"maybe cut"}`, lcReplyTimeout); err != nil || r.Status != 201 {
		t.Fatalf("create: %v %s", err, r.Raw)
	}
	c.c.CloseNow()
	closeEm(t, em)

	// A crash in the middle of the last write: its frame cut short.
	logPath := filepath.Join(dir, "dynamodb.log")
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	var log3 syncBuffer
	em = startData(t, dir, &log3)
	defer closeEm(t, em)
	retrieveAll(em, "after the crash")
	var warned int
	for line := range strings.SplitSeq(log3.String(), "\n") {
		if strings.Contains(line, "not a whole record") {
			warned++
			if !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, `"log_kept_as"`) {
				t.Errorf("the torn tail's line: %s", line)
			}
		}
	}
	if warned != 1 {
		t.Errorf("%d log lines about the torn tail, want 1:\n%s", warned, log3.String())
	}
}

// TestData_Unwritable: a data directory that cannot be made is one
// clear error from Start.
func TestData_Unwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := emulatortest.Config(t)
	cfg.DataDir = filepath.Join(file, "data")
	em, err := emulator.Start(context.Background(), cfg)
	if err == nil {
		closeEm(t, em)
		t.Fatal("Start with a data directory under a file: no error")
	}
	if !strings.Contains(err.Error(), "data directory") || !strings.Contains(err.Error(), cfg.DataDir) {
		t.Errorf("Start: %v, want an error naming the data directory %s", err, cfg.DataDir)
	}
}
