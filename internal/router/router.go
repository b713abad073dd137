// Package router turns request frames into reply frames and store changes
// into push frames: frame → stream → permission → action → reply, and
// change → serializer → subscribers → pushes. It is guest code: the
// standard library and this module only.
package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/protocol"
	"github.com/wsbind/wsbind/resource"
)

// Logger receives server-side failures. *slog.Logger satisfies it.
type Logger interface {
	Error(msg string, args ...any)
}

// Config configures a Router. Registry and Store are required.
type Config struct {
	Registry *resource.Registry
	Store    resource.Store
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Log receives failures with a correlation id. nil means standard error.
	Log Logger
}

// Router serves the bindings of one registry.
type Router struct {
	reg      *resource.Registry
	env      resource.Env
	now      func() time.Time
	log      Logger
	settings resource.Settings
}

// New returns a router. The config is copied; do not change it after.
func New(cfg Config) *Router {
	r := &Router{reg: cfg.Registry, now: cfg.Now, log: cfg.Log}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = stderrLogger{}
	}
	r.settings = cfg.Registry.Settings()
	r.env = resource.Env{Store: cfg.Store, Settings: r.settings}
	return r
}

// Conn is who sent a frame: the connection and its verified user.
type Conn struct {
	ID   string
	User resource.User
}

// Handle answers one frame with exactly one reply frame. It never panics on
// any input, and binding panics become 500 replies.
func (r *Router) Handle(ctx context.Context, conn Conn, frame []byte) []byte {
	req, out := r.handle(ctx, conn, frame)
	if len(out) > protocol.MaxMessage {
		// Echoes are bounded (protocol.MaxEcho), so this always fits.
		msg := fmt.Sprintf("Response too large: %d bytes, the limit is %d.", len(out), protocol.MaxMessage)
		return protocol.Reply(nil, &req, 0, nil, resource.TooLarge(msg))
	}
	return out
}

func (r *Router) handle(ctx context.Context, conn Conn, frame []byte) (protocol.Request, []byte) {
	req, perr := protocol.Decode(frame)
	if perr != nil {
		return req, protocol.Reply(nil, &req, 0, nil, perr)
	}
	h := r.reg.Lookup(req.Stream)
	if h == nil {
		return req, protocol.Reply(nil, &req, 0, nil, resource.InvalidStream())
	}
	res, err := r.serve(ctx, h, conn, &req)
	if err != nil {
		return req, protocol.Reply(nil, &req, 0, nil, r.publicError(err, &req, conn))
	}
	return req, protocol.Reply(make([]byte, 0, len(res.Data)+160), &req, res.Status, res.Data, nil)
}

func (r *Router) serve(ctx context.Context, h *resource.Handler, conn Conn, req *protocol.Request) (res resource.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = resource.Internal(fmt.Errorf("panic: %v", p))
		}
	}()
	return h.Serve(ctx, r.env, resource.Request{
		Action: req.Action,
		PK:     req.PK,
		Data:   req.Data,
		User:   conn.User,
		ConnID: conn.ID,
		Now:    r.now(),
	})
}

// publicError logs internal failures under a correlation id and returns
// what the client may read.
func (r *Router) publicError(err error, req *protocol.Request, conn Conn) *resource.Error {
	e := resource.AsError(err)
	if e.Code() == resource.CodeInternal {
		r.log.Error("wsbind: internal error",
			"correlation_id", resource.NewID(time.Now()),
			"stream", req.Stream, "action", req.Action, "conn", conn.ID,
			"err", err.Error())
	}
	return e
}

type stderrLogger struct{}

func (stderrLogger) Error(msg string, args ...any) {
	line := msg
	for i := 0; i+1 < len(args); i += 2 {
		line += fmt.Sprintf(" %v=%s", args[i], strconv.Quote(fmt.Sprint(args[i+1])))
	}
	fmt.Fprintln(os.Stderr, line)
}

// Change kinds, as pushes name them.
const (
	KindCreate = resource.ActionCreate
	KindUpdate = resource.ActionUpdate
	KindDelete = resource.ActionDelete
)

// Change is one committed write, as the database's change stream reports
// it: the stored images before (nil on create) and after (nil on delete).
type Change struct {
	Stream string
	PK     string
	Kind   string
	Old    []byte
	New    []byte
}

// Push is what one change sends: the frame, and the two topics whose
// subscribers receive it (all objects of the stream, and this pk).
type Push struct {
	Frame  []byte
	Topics [2]string
}

// ErrUnknownStream is returned for changes of streams no binding serves
// (the items table may hold other data); fan-out skips them.
var ErrUnknownStream = errors.New("no binding for the stream")

// ErrBadChange is returned for a change that can never become a push: an
// unknown kind, or no image to push (a stream that does not carry old and
// new images, say). Retrying it would block the stream, so fan-out logs
// and skips it.
var ErrBadChange = errors.New("bad change")

// Push builds the push for a change. A delete carries the last stored
// object. A frame that would exceed the message limit is replaced by one
// without data, marked truncated.
func (r *Router) Push(ch Change) (Push, error) {
	h := r.reg.Lookup(ch.Stream)
	if h == nil {
		return Push{}, fmt.Errorf("%w: %q", ErrUnknownStream, ch.Stream)
	}
	image := ch.New
	switch ch.Kind {
	case KindCreate, KindUpdate:
	case KindDelete:
		image = ch.Old
	default:
		return Push{}, fmt.Errorf("%w: change of %s/%s: unknown kind %q", ErrBadChange, ch.Stream, ch.PK, ch.Kind)
	}
	if image == nil {
		return Push{}, fmt.Errorf("%w: change of %s/%s: %s without its image", ErrBadChange, ch.Stream, ch.PK, ch.Kind)
	}
	data, err := h.Represent(image)
	if err != nil {
		return Push{}, fmt.Errorf("change of %s/%s: %w", ch.Stream, ch.PK, err)
	}
	frame := protocol.Push(make([]byte, 0, len(data)+128), ch.Stream, ch.Kind, h.Model(), ch.PK, data)
	if len(frame) > protocol.MaxMessage {
		frame = protocol.Push(nil, ch.Stream, ch.Kind, h.Model(), ch.PK, nil)
	}
	return Push{
		Frame:  frame,
		Topics: [2]string{resource.Topic(ch.Stream, ch.Kind, ""), resource.Topic(ch.Stream, ch.Kind, ch.PK)},
	}, nil
}

// Subscribers finds who subscribed to a topic. It is the fan-out's view of
// the subscriptions table: one query per topic.
type Subscribers interface {
	Subscribers(ctx context.Context, topic string) ([]resource.Subscription, error)
}

// Post is one push to one connection.
type Post struct {
	ConnID string
	Frame  []byte
}

// Fanout builds the posts for a change: every connection subscribed to
// either topic gets the push once, if its user may still retrieve the
// object. Posts come in connection id order.
func (r *Router) Fanout(ctx context.Context, subs Subscribers, ch Change) ([]Post, error) {
	p, err := r.Push(ch)
	if err != nil {
		return nil, err
	}
	h := r.reg.Lookup(ch.Stream)
	seen := map[string]bool{}
	var posts []Post
	for _, topic := range p.Topics {
		list, err := subs.Subscribers(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("subscribers of %s: %w", topic, err)
		}
		for _, s := range list {
			if seen[s.ConnID] {
				continue
			}
			seen[s.ConnID] = true
			if h.Allowed(&r.settings, s.User, resource.ActionRetrieve, ch.PK) {
				posts = append(posts, Post{ConnID: s.ConnID, Frame: p.Frame})
			}
		}
	}
	slices.SortFunc(posts, func(a, b Post) int { return strings.Compare(a.ConnID, b.ConnID) })
	return posts, nil
}
