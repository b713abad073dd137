package emulator_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbind/wsbind/local/emulator"
)

// TestEmulator_ConcurrentPatchers: 20 connections append to one
// question's text, each patch naming the version it read (if_version).
// A patch that lost the race answers 409 and changes nothing; the loser
// reads again and retries. No append is lost: the text ends with every
// one of them, and the version counts them.
func TestEmulator_ConcurrentPatchers(t *testing.T) {
	const patchers, rounds = 20, 3
	em := start(t, nil)
	owner := mustDial(t, em, "")
	r := owner.send("questions", `{"action":"create","data":{"question_text":"x"}}`)
	wantStatus(t, r, 201)
	pk := dataOf(t, r)["id"].(string)
	if r.Payload.Version != 1 {
		t.Fatalf("create: version %d, want 1: %s", r.Payload.Version, r.raw)
	}

	var conflicts, wins atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, patchers)
	for p := range patchers {
		c := mustDial(t, em, "")
		wg.Go(func() {
			for round := range rounds {
				token := fmt.Sprintf("%c%d", 'a'+p, round)
				for attempt := 0; ; attempt++ {
					if attempt > 200 {
						errs <- fmt.Errorf("%s: no win in 200 attempts", token)
						return
					}
					got := c.send("questions", fmt.Sprintf(`{"action":"retrieve","pk":%q}`, pk))
					if got.Payload.Status != 200 {
						errs <- fmt.Errorf("retrieve: %s", got.raw)
						return
					}
					text := dataOf(t, got)["question_text"].(string)
					patch := c.send("questions", fmt.Sprintf(`{"action":"patch","pk":%q,"if_version":%d,"data":{"question_text":%q}}`,
						pk, got.Payload.Version, text+","+token))
					switch patch.Payload.Status {
					case 200:
						if patch.Payload.Version != got.Payload.Version+1 {
							errs <- fmt.Errorf("patch from version %d answered version %d", got.Payload.Version, patch.Payload.Version)
							return
						}
						wins.Add(1)
					case 409:
						want := `["Version conflict: the object is at version `
						if !strings.HasPrefix(string(patch.Payload.Errors), want) {
							errs <- fmt.Errorf("409 errors %s, want %s N.\"]", patch.Payload.Errors, want)
							return
						}
						conflicts.Add(1)
						continue
					default:
						errs <- fmt.Errorf("patch: %s", patch.raw)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	final := owner.send("questions", fmt.Sprintf(`{"action":"retrieve","pk":%q}`, pk))
	wantStatus(t, final, 200)
	text := dataOf(t, final)["question_text"].(string)
	tokens := strings.Split(text, ",")[1:]
	seen := map[string]int{}
	for _, tok := range tokens {
		seen[tok]++
	}
	for p := range patchers {
		for round := range rounds {
			if tok := fmt.Sprintf("%c%d", 'a'+p, round); seen[tok] != 1 {
				t.Errorf("append %s appears %d times in the final text, want 1", tok, seen[tok])
			}
		}
	}
	if want := int64(1 + patchers*rounds); final.Payload.Version != want {
		t.Errorf("final version %d, want %d (1 + one per successful patch)", final.Payload.Version, want)
	}
	if wins.Load() != patchers*rounds {
		t.Errorf("%d successful patches, want %d", wins.Load(), patchers*rounds)
	}
	t.Logf("%d patchers x %d appends: %d patches succeeded, %d answered 409; final version %d, %d appends in the text",
		patchers, rounds, wins.Load(), conflicts.Load(), final.Payload.Version, len(tokens))
}

// TestEmulator_IdempotentCreate: one create sent 10 times with the same
// idempotency key by the same user, 5 on one connection and 5 on another
// after a reconnect, makes one question: every reply is the first one
// with its own request_id, and a subscriber gets one create push.
func TestEmulator_IdempotentCreate(t *testing.T) {
	em := start(t, nil)
	watcher := mustDial(t, em, "")
	wantStatus(t, watcher.send("questions", `{"action":"subscribe","data":{"action":"create"}}`), 200)
	tok, err := emulator.Token(secret, "dana", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const create = `{"action":"create","idempotency_key":"order-7","data":{"question_text":"Exactly once?"}}`
	var first frame
	c := mustDial(t, em, tok)
	for i := range 10 {
		if i == 5 {
			c.c.CloseNow()
			c = mustDial(t, em, tok) // the same user, a new connection
			c.seq = 100              // and request_ids of its own
		}
		r := c.send("questions", create)
		wantStatus(t, r, 201)
		if i == 0 {
			first = r
			continue
		}
		// The same reply but for its request_id (send matched the reply
		// by the request_id it sent).
		if got, want := stripRequestID(r.raw), stripRequestID(first.raw); got != want {
			t.Errorf("repeat %d: reply %s, want the first %s", i, got, want)
		}
	}
	pk := dataOf(t, first)["id"].(string)
	if _, err := watcher.push("create", pk); err != nil {
		t.Fatalf("no create push for %s: %v", pk, err)
	}
	time.Sleep(ptSettle)
	n := 0
	for _, p := range watcher.pushes() {
		if p.Payload.Action == "create" {
			n++
		}
	}
	if n != 0 {
		t.Errorf("%d more create pushes after the first, want none", n)
	}
	list := watcher.send("questions", `{"action":"list"}`)
	wantStatus(t, list, 200)
	if k := strings.Count(string(list.Payload.Data), "Exactly once?"); k != 1 {
		t.Errorf("the list holds %d questions made by the create, want 1: %s", k, list.raw)
	}
	// Another user's same key is another key.
	other, err := emulator.Token(secret, "erin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := mustDial(t, em, other).send("questions", create)
	wantStatus(t, r, 201)
	if dataOf(t, r)["id"] == pk {
		t.Errorf("another user's create with the same key answered the first user's object")
	}
}

// stripRequestID drops the request_id, the last member of a reply.
func stripRequestID(raw string) string {
	i := strings.LastIndex(raw, `,"request_id":`)
	if i < 0 {
		return raw
	}
	return raw[:i]
}
