// Package questions is the polls.question binding on stream "questions":
// the channels-api tutorial's Question, with "publish" and "unpublish"
// detail actions and a "report" list action.
package questions

import (
	"strconv"
	"time"

	"github.com/wsbind/wsbind/resource"
)

// Question is a poll question.
type Question struct {
	ID        string
	Text      string
	PubDate   time.Time
	Published bool
}

// Report is what the "report" action answers: {"count": N, "published": M}.
type Report struct {
	Count     int
	Published int
}

// AppendJSON writes the report without reflection (resource.Appender).
func (r Report) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"count":`...)
	dst = strconv.AppendInt(dst, int64(r.Count), 10)
	dst = append(dst, `,"published":`...)
	dst = strconv.AppendInt(dst, int64(r.Published), 10)
	return append(dst, '}')
}

// Binding serves stream "questions".
var Binding = resource.MustNew(resource.Binding[Question]{
	Stream: "questions",
	Model:  "polls.question",
	ID:     func(q *Question) *string { return &q.ID },
	Fields: []resource.Field[Question]{
		resource.String("question_text", func(q *Question) *string { return &q.Text },
			resource.Required(), resource.MaxLength(200)),
		resource.Time("pub_date", func(q *Question) *time.Time { return &q.PubDate }, resource.ReadOnly()),
		resource.Bool("published", func(q *Question) *bool { return &q.Published }, resource.ReadOnly()),
	},
	Permissions: []resource.Permission{resource.AllowAny},
	OnCreate: func(c *resource.Call[Question], q *Question) error {
		q.PubDate = c.Now
		q.Published = false
		return nil
	},
	Actions: []resource.Action[Question]{
		resource.DetailAction("publish", publish),
		resource.DetailAction("unpublish", unpublish),
		resource.ListAction("report", report),
	},
})

// publish and unpublish set whether the question is published, and
// return it.
var (
	publish   = setPublished(true)
	unpublish = setPublished(false)
)

func setPublished(v bool) func(c *resource.Call[Question]) (any, int, error) {
	return func(c *resource.Call[Question]) (any, int, error) {
		q, err := c.Update(c.PK, func(q *Question) error {
			q.Published = v
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
		return q, 200, nil
	}
}

// report counts the questions and the published ones.
func report(c *resource.Call[Question]) (any, int, error) {
	var r Report
	err := c.Each(func(q *Question) bool {
		r.Count++
		if q.Published {
			r.Published++
		}
		return true
	})
	if err != nil {
		return nil, 0, err
	}
	return r, 200, nil
}
