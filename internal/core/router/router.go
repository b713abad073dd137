// Package router turns request frames into reply frames and store changes
// into push frames: frame → stream → permission → action → reply, and
// change → serializer → subscribers → pushes. It is guest code: the
// standard library and this module only.
package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/identity"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/core/protocol"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/resource"
)

// Logger receives server-side failures. *slog.Logger satisfies it.
type Logger interface {
	Error(msg string, args ...any)
}

// Config configures a Router. Registry and Store are required.
type Config struct {
	Registry *resource.Registry
	Store    store.Store
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Log receives failures with a correlation id. nil means standard error.
	Log Logger
	// Post sends a frame to connections: the pushes a resumed
	// subscription replays. nil answers such a subscribe 500.
	Post func(ctx context.Context, frame []byte, conns []string) error
	// History says how far back a resumed subscription replays. The zero
	// value means HistoryDefaults.
	History History
}

// History configures replay (RATIONALE: "Why is the history written by
// the fan-out, and a cursor a time?").
type History struct {
	// Retention is how long the history keeps changes: an older cursor is
	// a gap. WSBIND_HISTORY_RETENTION.
	Retention time.Duration
	// Overlap is how far before its cursor a replay starts, which must
	// exceed the longest a push can trail a later one to a connection
	// (a throttled post waits up to the Poster's patience, 5 s).
	// WSBIND_REPLAY_OVERLAP.
	Overlap time.Duration
	// Limit is the most changes one subscribe replays; a longer gap is a
	// gap. WSBIND_REPLAY_LIMIT.
	Limit int
}

// HistoryDefaults are the history settings unless configured.
var HistoryDefaults = History{Retention: 24 * time.Hour, Overlap: 6 * time.Second, Limit: 10000}

// HistoryFromEnv reads the history settings from the environment:
// WSBIND_HISTORY_RETENTION and WSBIND_REPLAY_OVERLAP (Go durations) and
// WSBIND_REPLAY_LIMIT (a count). An unset one keeps its default; a bad
// one keeps it too, and is the error (the host checks the settings at
// start, where a bad one stops the process with one line; the guest
// never sees one).
func HistoryFromEnv(getenv func(string) string) (History, error) {
	h := HistoryDefaults
	var errs []error
	if v := getenv("WSBIND_HISTORY_RETENTION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			h.Retention = d
		} else {
			errs = append(errs, fmt.Errorf("WSBIND_HISTORY_RETENTION=%q: want a positive duration such as 24h", v))
		}
	}
	if v := getenv("WSBIND_REPLAY_OVERLAP"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			h.Overlap = d
		} else {
			errs = append(errs, fmt.Errorf("WSBIND_REPLAY_OVERLAP=%q: want a duration such as 6s", v))
		}
	}
	if v := getenv("WSBIND_REPLAY_LIMIT"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			h.Limit = n
		} else {
			errs = append(errs, fmt.Errorf("WSBIND_REPLAY_LIMIT=%q: want a positive number of changes", v))
		}
	}
	return h, errors.Join(errs...)
}

// Router serves the bindings of one registry.
type Router struct {
	reg      *resource.Registry
	store    store.Store
	now      func() time.Time
	log      Logger
	settings resource.Settings
	post     func(ctx context.Context, frame []byte, conns []string) error
	history  History
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
	r.store = cfg.Store
	r.post = cfg.Post
	r.history = cfg.History
	if r.history == (History{}) {
		r.history = HistoryDefaults
	}
	return r
}

// Conn is who sent a frame: the connection and its verified user.
type Conn struct {
	ID   string
	User identity.User
}

// Handle answers one frame with exactly one reply frame. It never panics on
// any input, and binding panics become 500 replies.
func (r *Router) Handle(ctx context.Context, conn Conn, frame []byte) []byte {
	req, perr := protocol.Decode(frame)
	if perr != nil {
		return reply(&req, call.Result{}, perr)
	}
	h := r.reg.Lookup(req.Stream)
	if h == nil {
		return reply(&req, call.Result{}, apierr.InvalidStream())
	}
	if req.IdempotencyKey != "" && writes(h, req.Action) {
		return r.once(ctx, h, conn, &req)
	}
	res, err := r.serve(ctx, h, conn, &req)
	if err == nil && res.Resume != nil {
		err = r.replay(ctx, h, conn, &res)
	}
	return reply(&req, res, r.publicError(err, &req, conn))
}

// reply writes the reply frame of a result, within the message limit: a
// list page truncates the entries that do not fit, a committed write too
// large for a message is answered truncated (the write happened; an error
// would invite a duplicate), and any other reply too large is a 413.
func reply(req *protocol.Request, res call.Result, err *apierr.Error) []byte {
	if err != nil {
		// Echoes are bounded (protocol.MaxEcho), so an error always fits.
		return protocol.Reply(nil, req, 0, nil, err)
	}
	out := protocol.Out{Status: res.Status, Data: res.Data, Version: res.Version, Cursor: res.Cursor}
	if res.Page != nil {
		out.Data = fitPage(req, out, res.Page)
	}
	frame := protocol.ReplyWith(make([]byte, 0, len(out.Data)+160), req, out, nil)
	if len(frame) <= protocol.MaxMessage {
		return frame
	}
	if res.Write {
		out.Truncated, out.PK = true, res.PK
		return protocol.ReplyWith(nil, req, out, nil)
	}
	msg := fmt.Sprintf("Response too large: %d bytes, the limit is %d.", len(frame), protocol.MaxMessage)
	return protocol.Reply(nil, req, 0, nil, apierr.TooLarge(msg))
}

// fitPage writes a list page as a JSON array that fits, with the rest of
// the reply, in one message: while it does not, the largest entry left is
// replaced by {"id": <pk>, "truncated": true}. The entries keep their
// order.
func fitPage(req *protocol.Request, out protocol.Out, page []call.Entry) []byte {
	out.Data = []byte("[]")
	budget := protocol.MaxMessage - len(protocol.ReplyWith(nil, req, out, nil)) + len(out.Data)
	stubs := make([][]byte, len(page))
	size := len(page) + 1 // brackets and commas
	for _, e := range page {
		size += len(e.Data)
	}
	if size > budget {
		order := make([]int, len(page))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return len(page[b].Data) - len(page[a].Data) })
		for _, i := range order {
			if size <= budget {
				break
			}
			stub := append(jsonv.AppendString([]byte(`{"id":`), page[i].ID), `,"truncated":true}`...)
			size += len(stub) - len(page[i].Data)
			stubs[i] = stub
		}
	}
	data := make([]byte, 0, size)
	data = append(data, '[')
	for i, e := range page {
		if i > 0 {
			data = append(data, ',')
		}
		if stubs[i] != nil {
			data = append(data, stubs[i]...)
		} else {
			data = append(data, e.Data...)
		}
	}
	return append(data, ']')
}

func (r *Router) serve(ctx context.Context, h *resource.Handler, conn Conn, req *protocol.Request) (res call.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = apierr.Internal(fmt.Errorf("panic: %v", p))
		}
	}()
	now := r.now()
	if expired(conn.User, now) {
		return call.Result{}, apierr.TokenExpired()
	}
	defer func() {
		// A page's position is taken before it is read: a change after
		// it is in the history a subscribe since it replays.
		// A subscription's position is taken before it is registered:
		// resuming from it misses nothing pushed after.
		if err == nil && (req.Action == "list" || req.Action == "subscribe") {
			res.Cursor = store.Cursor(now.UnixMilli())
		}
	}()
	return h.Serve(ctx, &r.settings, r.store, call.Request{
		Action:       req.Action,
		PK:           req.PK,
		Data:         req.Data,
		User:         conn.User,
		ConnID:       conn.ID,
		Now:          now,
		IfVersion:    req.IfVersion,
		HasIfVersion: req.HasIfVersion,
	})
}

// expired reports whether the user's token expired before now. A
// connection outlives its token; from then on it is served as no one
// (RATIONALE: "Why does a connection whose token expired get 401s?").
func expired(u identity.User, now time.Time) bool {
	exp, ok := u.Expires()
	return ok && u.ID != "" && now.Unix() >= exp
}

// publicError logs internal failures under a correlation id and returns
// what the client may read; nil for no error.
func (r *Router) publicError(err error, req *protocol.Request, conn Conn) *apierr.Error {
	if err == nil {
		return nil
	}
	e := apierr.AsError(err)
	if e.Code() == apierr.CodeInternal {
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

// Change kinds, as pushes name them (store's).
const (
	KindCreate = store.KindCreate
	KindUpdate = store.KindUpdate
	KindDelete = store.KindDelete
)

// Change is one committed write: store.Change, what fan-out reads.
type Change = store.Change

// ErrUnknownStream is returned for changes of streams no binding serves
// (the items table may hold other data); fan-out skips them.
var ErrUnknownStream = errors.New("no binding for the stream")

// ErrBadChange is returned for a change that can never become a push: an
// unknown kind, or no image to push (a stream that does not carry old and
// new images, say). Retrying it would block the stream, so fan-out logs
// and skips it.
var ErrBadChange = errors.New("bad change")

// ErrGone is Config.Post's error when every connection posted to is
// gone: a replay to it stops.
var ErrGone = errors.New("connection gone")

// Post is one push to one connection.
type Post struct {
	ConnID string
	Frame  []byte
}

// topics are the subscription topics a change of a kind may reach, and
// the rank of each one's action: a create reaches only create
// subscriptions and a delete only delete ones; an update may also enter or
// leave a subscription's view, and so reaches all three.
func topics(stream, kind, pk string) ([]string, []int) {
	kinds := []string{kind}
	if kind == KindUpdate {
		kinds = []string{KindUpdate, KindCreate, KindDelete}
	}
	ts := make([]string, 0, 2*len(kinds))
	ranks := make([]int, 0, 2*len(kinds))
	for _, k := range kinds {
		r := rankDelete
		switch k {
		case KindCreate:
			r = rankCreate
		case KindUpdate:
			r = rankUpdate
		}
		ts = append(ts, store.Topic(stream, k, ""), store.Topic(stream, k, pk))
		ranks = append(ranks, r, r)
	}
	return ts, ranks
}

// kindOf is the rank of a subscription's topic among ts; 0 for one the
// fan-out did not ask for.
func kindOf(ts []string, ranks []int, topic string) int {
	for i, t := range ts {
		if t == topic {
			return ranks[i]
		}
	}
	return 0
}

// Fanout builds the posts for a change. Each subscription compares what
// it could see before and after the change (the binding's scope and object
// permissions for the user recorded at subscribe time, and its filter):
// an object that stays visible is an update to update subscriptions, one
// that enters is a create to create subscriptions, one that leaves is a
// delete (with the object as it was) to delete subscriptions, and nothing
// else is pushed. A connection whose subscriptions disagree gets one
// push: update over create over delete. Connections whose token has
// expired get nothing. Posts come in connection id order.
func (r *Router) Fanout(ctx context.Context, subs store.Subscribers, ch Change) ([]Post, error) {
	h := r.reg.Lookup(ch.Stream)
	if h == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStream, ch.Stream)
	}
	return r.fanout(ctx, h, subs, ch, false)
}

// fanout is Fanout for the binding h; replay marks the pushes as sent
// again to a resumed subscription.
func (r *Router) fanout(ctx context.Context, h *resource.Handler, subs store.Subscribers, ch Change, replay bool) ([]Post, error) {
	old, new := ch.Old, ch.New
	switch ch.Kind {
	case KindCreate:
		old = nil
	case KindDelete:
		new = nil
	case KindUpdate:
	default:
		return nil, fmt.Errorf("%w: change of %s/%s: unknown kind %q", ErrBadChange, ch.Stream, ch.PK, ch.Kind)
	}
	if (ch.Kind == KindDelete && old == nil) || (ch.Kind != KindDelete && new == nil) {
		return nil, fmt.Errorf("%w: change of %s/%s: %s without its image", ErrBadChange, ch.Stream, ch.PK, ch.Kind)
	}
	if ch.Kind == KindUpdate && old == nil {
		// A stream without old images: the object counts as visible
		// before exactly when it is after, so nothing enters or leaves.
		old = new
	}
	ts, kinds := topics(ch.Stream, ch.Kind, ch.PK)
	list, err := subs.Subscribers(ctx, ts)
	if err != nil {
		return nil, fmt.Errorf("subscribers of %s/%s: %w", ch.Stream, ch.PK, err)
	}
	if len(list) == 0 {
		// No one to push to: the images need not be read (a replay asks
		// this of every change in its window, most of them of kinds its
		// one subscription does not take).
		return nil, nil
	}
	im, err := h.Images(old, new)
	if err != nil {
		return nil, fmt.Errorf("change of %s/%s: %w", ch.Stream, ch.PK, err)
	}
	// The clock is read once, and only for a subscriber whose token
	// carries an expiry.
	var now time.Time
	// Each connection's outcome, the kind of push it gets by rank, in the
	// order the subscriptions came (connection id order within a topic).
	type outcome struct {
		conn string
		rank int
	}
	outcomes := make([]outcome, 0, len(list))
	index := make(map[string]int, len(list))
	for _, s := range list {
		i, ok := index[s.ConnID]
		if !ok {
			i = len(outcomes)
			index[s.ConnID] = i
			outcomes = append(outcomes, outcome{conn: s.ConnID})
		}
		kind := kindOf(ts, kinds, s.Topic)
		if kind == 0 || outcomes[i].rank == rankUpdate {
			continue
		}
		if _, ok := s.User.Expires(); ok {
			if now.IsZero() {
				now = r.now()
			}
			if expired(s.User, now) {
				continue
			}
		}
		if !h.Allowed(&r.settings, s.User, KindRetrieve, ch.PK) {
			continue
		}
		sees := im.Visible(s.User, s.Filter)
		before, after := sees[0], sees[1]
		var got int
		switch {
		case before && after && kind == rankUpdate:
			got = rankUpdate
		case !before && after && kind == rankCreate:
			got = rankCreate
		case before && !after && kind == rankDelete:
			got = rankDelete
		}
		outcomes[i].rank = max(outcomes[i].rank, got)
	}
	var frames [rankUpdate + 1][]byte
	posts := make([]Post, 0, len(outcomes))
	for _, o := range outcomes {
		if o.rank == 0 {
			continue
		}
		if frames[o.rank] == nil {
			frames[o.rank] = r.pushFrame(h, ch, o.rank, im, replay)
		}
		posts = append(posts, Post{ConnID: o.conn, Frame: frames[o.rank]})
	}
	if err := im.Err(); err != nil {
		return nil, fmt.Errorf("change of %s/%s: %w", ch.Stream, ch.PK, err)
	}
	// Several topics interleave their connections; one topic's are in
	// order already, and sorting a sorted slice costs one pass.
	slices.SortFunc(posts, func(a, b Post) int { return strings.Compare(a.ConnID, b.ConnID) })
	return posts, nil
}

// KindRetrieve is the action the permissions see for a push.
const KindRetrieve = "retrieve"

// Push outcomes, ranked: a connection gets the highest of its
// subscriptions'.
const (
	rankDelete = 1
	rankCreate = 2
	rankUpdate = 3
)

// pushFrame writes the push of one outcome: create and update carry the
// object after the change, delete the object as it was. A frame that would
// exceed the message limit is replaced by one without data, marked
// truncated.
func (r *Router) pushFrame(h *resource.Handler, ch Change, rank int, im call.Images, replay bool) []byte {
	kind, data := KindUpdate, im.Wire(1)
	switch rank {
	case rankCreate:
		kind = KindCreate
	case rankDelete:
		kind, data = KindDelete, im.Wire(0)
	}
	m := protocol.PushMeta{Stream: ch.Stream, Action: kind, Model: h.Model(), PK: ch.PK, Version: ch.Version, Replay: replay}
	if ch.At > 0 {
		m.Cursor = store.Cursor(ch.At)
	}
	frame := protocol.PushAt(make([]byte, 0, len(data)+160), m, data)
	if len(frame) > protocol.MaxMessage {
		frame = protocol.PushAt(nil, m, nil)
	}
	return frame
}

// replay pushes a resumed subscription the changes it missed, oldest
// first, each as the fan-out would have pushed it to this subscription
// alone (its scope, object permissions and filter for the user it
// recorded; entering and leaving its view), marked replay; then the reply
// goes out. A cursor older than the retention, or more changes than the
// limit, answer gap instead: the client must list again.
func (r *Router) replay(ctx context.Context, h *resource.Handler, conn Conn, res *call.Result) error {
	rs := res.Resume
	res.Resume = nil
	gap := func() error {
		res.Data = append(res.Data[:len(res.Data)-1], `,"gap":true}`...)
		return nil
	}
	if rs.From < r.now().Add(-r.history.Retention).UnixMilli() {
		return gap()
	}
	if r.post == nil {
		return apierr.Internal(errors.New("replay: no way to post"))
	}
	from := rs.From - r.history.Overlap.Milliseconds()
	chs, err := r.store.Since(ctx, rs.Part, from, r.history.Limit+1)
	if err != nil {
		return apierr.Internal(fmt.Errorf("history of %s: %w", h.Stream(), err))
	}
	if len(chs) > r.history.Limit {
		return gap()
	}
	// The reply's cursor is the last position read: every change up to it
	// was replayed here (or delivered before), and every one after it is
	// recorded after this read, so its fan-out, which reads the
	// subscribers after recording, finds this subscription. "Now", the
	// cursor of a fresh subscribe, would also cover a batch the fan-out
	// took before now and has not pushed yet: a client resuming from it
	// after a cut could miss that batch.
	last := rs.From
	for _, ch := range chs {
		last = max(last, ch.At)
	}
	res.Cursor = store.Cursor(last)
	one := oneSub(rs.Sub)
	// A change the fan-out was slow to push is in the history more than
	// once (it keeps the position of a change being pushed fresh): it is
	// replayed once, from its first position. (Only an identical change
	// is a repeat: an object deleted and made again under its pk starts
	// again at version 1.)
	type change struct {
		pk, kind string
		version  int64
	}
	sent := make(map[change]int, len(chs)) // the index of its first copy
	for i, ch := range chs {
		if ch.Stream != h.Stream() {
			continue
		}
		k := change{ch.PK, ch.Kind, ch.Version}
		if j, ok := sent[k]; ok && bytes.Equal(chs[j].Old, ch.Old) && bytes.Equal(chs[j].New, ch.New) {
			continue
		}
		sent[k] = i
		posts, err := r.fanout(ctx, h, one, ch, true)
		if errors.Is(err, ErrBadChange) || errors.Is(err, store.ErrCorrupt) {
			continue
		} else if err != nil {
			return apierr.Internal(err)
		}
		for _, p := range posts {
			if err := r.post(ctx, p.Frame, []string{conn.ID}); errors.Is(err, ErrGone) {
				return nil // the client left: no one to replay to, or to answer
			} else if err != nil {
				return apierr.Internal(fmt.Errorf("replay to %s: %w", conn.ID, err))
			}
		}
	}
	return nil
}

// oneSub is the subscribers of a replay: the one subscription resumed.
type oneSub store.Subscription

func (s oneSub) Subscribers(_ context.Context, topics []string) ([]store.Subscription, error) {
	if slices.Contains(topics, s.Topic) {
		return []store.Subscription{store.Subscription(s)}, nil
	}
	return nil, nil
}
