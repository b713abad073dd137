// Package cards serves stream "cards": a kanban board per team. A user
// belongs to the teams its token names as roles "team:<name>" and works
// on its first team's board; it sees, changes and is pushed that board's
// cards alone. Anyone on the team adds, edits and moves cards; only a
// "lead" deletes them.
package cards

import (
	"strings"
	"time"

	"github.com/wsbind/wsbind/resource"
)

// Card is one card on a team's board.
type Card struct {
	ID        string
	Team      string
	Title     string
	Status    string
	Points    int
	CreatedBy string
	Created   time.Time
	Moved     time.Time
}

// Statuses are a card's columns, left to right.
var Statuses = []string{"todo", "doing", "done"}

// LeadRole may delete cards.
const LeadRole = "lead"

// Binding serves stream "cards".
var Binding = resource.MustNew(resource.Binding[Card]{
	Stream: "cards",
	Model:  "board.card",
	ID:     func(c *Card) *string { return &c.ID },
	Fields: []resource.Field[Card]{
		resource.String("team", func(c *Card) *string { return &c.Team }, resource.ReadOnly()),
		resource.String("title", func(c *Card) *string { return &c.Title }, resource.Required(), resource.MaxLength(120)),
		resource.String("status", func(c *Card) *string { return &c.Status }, resource.Choices(Statuses...), resource.Default("todo")),
		resource.Int("points", func(c *Card) *int { return &c.Points }, resource.MinValue(0), resource.MaxValue(13), resource.Default(1)),
		resource.String("created_by", func(c *Card) *string { return &c.CreatedBy }, resource.ReadOnly()),
		resource.Time("created", func(c *Card) *time.Time { return &c.Created }, resource.ReadOnly()),
		resource.Time("moved", func(c *Card) *time.Time { return &c.Moved }, resource.ReadOnly()),
	},
	Permissions: []resource.Permission{resource.IsAuthenticated, leadDeletes},
	Scope: resource.Scope[Card]{
		Key: func(c *Card) *string { return &c.Team },
		Of:  func(u resource.User) (string, bool) { return Team(u), false },
	},
	OnCreate: func(call *resource.Call[Card], c *Card) error {
		c.CreatedBy = call.User.ID
		c.Created, c.Moved = call.Now, call.Now
		return nil
	},
	OnUpdate: func(call *resource.Call[Card], c *Card) error {
		c.Moved = call.Now
		return nil
	},
	Actions: []resource.Action[Card]{
		resource.DetailAction("advance", advance),
		resource.ListAction("totals", totals),
	},
})

// Team is the user's team: its first role "team:<name>", or "" (which
// sees nothing and may create nothing).
func Team(u resource.User) string {
	for _, r := range u.Roles {
		if t, ok := strings.CutPrefix(r, "team:"); ok && t != "" {
			return t
		}
	}
	return ""
}

// leadDeletes lets only leads delete.
var leadDeletes = resource.PermissionFunc(func(u resource.User, action, _ string) bool {
	return action != "delete" || u.HasRole(LeadRole)
})

// advance moves a card one column right: {"action": "advance", "pk": id}.
// A card already done is a 409.
func advance(call *resource.Call[Card]) (any, int, error) {
	c, err := call.Update(call.PK, func(c *Card) error {
		for i, s := range Statuses[:len(Statuses)-1] {
			if c.Status == s {
				c.Status = Statuses[i+1]
				c.Moved = call.Now
				return nil
			}
		}
		return resource.Conflict("The card is done already.")
	})
	if err != nil {
		return nil, 0, err
	}
	return c, 200, nil
}

// totals sums the points of the team's cards by column:
// {"todo": 3, "doing": 5, "done": 0}.
func totals(call *resource.Call[Card]) (any, int, error) {
	t := map[string]int{}
	for _, s := range Statuses {
		t[s] = 0
	}
	err := call.Each(func(c *Card) bool {
		t[c.Status] += c.Points
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	return t, 200, nil
}
