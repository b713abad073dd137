package cards_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/local/emulatortest"
)

// TestBoard runs the application's guests in the local emulator and
// works the board as three users: two on team a (one of them its lead)
// and one on team b.
func TestBoard(t *testing.T) {
	em := emulatortest.Start(t, nil)
	ann := emulatortest.MustDial(t, em, emulatortest.Token(t, "ann", "team:a", "lead"))
	ben := emulatortest.MustDial(t, em, emulatortest.Token(t, "ben", "team:a"))
	cat := emulatortest.MustDial(t, em, emulatortest.Token(t, "cat", "team:b"))

	for _, c := range []*emulatortest.Client{ben, cat} {
		if r := c.Send("cards", `{"action":"subscribe","data":{"action":"update"}}`); r.Payload.Status != 200 {
			t.Fatalf("subscribe: %s", r.Raw)
		}
	}

	// Ann adds a card: defaults, hooks and the team filled in.
	r := ann.Send("cards", `{"action":"create","data":{"title":"Draft the launch post","points":3}}`)
	if r.Payload.Status != 201 {
		t.Fatalf("create: %s", r.Raw)
	}
	card := r.Object(t)
	id, _ := card["id"].(string)
	if card["team"] != "a" || card["status"] != "todo" || card["created_by"] != "ann" || card["created"] == "" {
		t.Errorf("create: %s, want team a, todo, by ann, with a time", r.Raw)
	}

	// Validation: a status off the board and points out of range.
	r = ann.Send("cards", `{"action":"create","data":{"title":"x","status":"blocked","points":40}}`)
	if r.Payload.Status != 400 || !strings.Contains(string(r.Payload.Errors), "status") || !strings.Contains(string(r.Payload.Errors), "points") {
		t.Errorf("invalid create: %s, want 400 naming status and points", r.Raw)
	}

	// Ben advances it; he is pushed the change, Cat is not.
	r = ben.Send("cards", `{"action":"advance","pk":"`+id+`"}`)
	if r.Payload.Status != 200 || r.Object(t)["status"] != "doing" {
		t.Fatalf("advance: %s, want doing", r.Raw)
	}
	if p, err := ben.Push("update", id); err != nil {
		t.Errorf("ben's update push: %v", err)
	} else if p.Object(t)["status"] != "doing" || p.Payload.Version != 2 {
		t.Errorf("ben's update push: %s, want doing at version 2", p.Raw)
	}
	ben.Send("cards", `{"action":"advance","pk":"`+id+`"}`)
	if r := ben.Send("cards", `{"action":"advance","pk":"`+id+`"}`); r.Payload.Status != 409 {
		t.Errorf("advance past done: %s, want 409", r.Raw)
	}

	// Totals: the team's points by column.
	r = ann.Send("cards", `{"action":"totals"}`)
	var totals map[string]int
	if err := json.Unmarshal(r.Payload.Data, &totals); r.Payload.Status != 200 || err != nil || totals["done"] != 3 || totals["todo"] != 0 {
		t.Errorf("totals: %s, want 3 points done", r.Raw)
	}

	// Team b sees none of it.
	if r := cat.Send("cards", `{"action":"list"}`); r.Payload.Status != 200 || string(r.Payload.Data) != "[]" {
		t.Errorf("cat's list: %s, want empty", r.Raw)
	}
	if r := cat.Send("cards", `{"action":"retrieve","pk":"`+id+`"}`); r.Payload.Status != 404 {
		t.Errorf("cat retrieving team a's card: %s, want 404", r.Raw)
	}
	if got := cat.Pushes(); len(got) != 0 {
		t.Errorf("cat was pushed team a's changes: %v", got)
	}

	// Only the lead deletes (a refusal is 401 "Permission Denied", as
	// in channels-api).
	if r := ben.Send("cards", `{"action":"delete","pk":"`+id+`"}`); r.Payload.Status != 401 {
		t.Errorf("ben's delete: %s, want 401", r.Raw)
	}
	if r := ann.Send("cards", `{"action":"delete","pk":"`+id+`"}`); r.Payload.Status != 204 && r.Payload.Status != 200 {
		t.Errorf("ann's delete: %s, want it done", r.Raw)
	}
}
