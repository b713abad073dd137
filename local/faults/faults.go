// Package faults injects the failures of the deployed system into the
// local emulator: management-API posts answered 500 or 429 or served
// late, DynamoDB requests throttled or failing, fan-out invocations that
// trap halfway through their batch, and clients that stop reading. The
// retries that cope with them on AWS (the SDK's, the Poster's, the
// stream mapping's) then run locally, against the real SDK clients.
//
//	s, err := faults.Parse("post-throttle=0.05,dynamo-throttle=0.05,seed=1")
//	f := faults.New(s)
//	em, err := emulator.Start(ctx, emulator.Config{Faults: f /* ... */})
//	em.Faults().Set(faults.Settings{}) // later: no more faults
//	fmt.Println(em.Faults().Counts())  // what was injected
//
// A *Faults is switched at run time (Set) and safe for concurrent use.
// Its zero Settings inject nothing, and the wrapped handlers then cost an
// atomic load and a counter per request.
package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// Settings are the faults to inject. The zero value injects none. A share
// is the probability, from 0 to 1, that one request (post, DynamoDB
// request, invocation) gets the fault, drawn for each independently.
type Settings struct {
	// PostFail is the share of management-API POSTs (/@connections/{id})
	// answered 500 InternalServerErrorException, the message not
	// delivered.
	PostFail float64
	// PostThrottle is the share of POSTs answered 429
	// LimitExceededException, the message not delivered. PostFail and
	// PostThrottle are drawn together: they may add up to 1 at most.
	PostThrottle float64
	// PostDelay is latency added before a POST is served (then it may
	// still fail or be throttled).
	PostDelay time.Duration
	// PostDelayShare is the share of POSTs delayed by PostDelay; 0 means
	// all of them.
	PostDelayShare float64

	// DynamoThrottle is the share of DynamoDB data-plane requests
	// (GetItem, PutItem, UpdateItem, DeleteItem, Query, Scan and the
	// Batch and Transact operations) answered 400
	// ProvisionedThroughputExceededException, unapplied: the SDK retries
	// them as throttles. Table operations (CreateTable, DescribeTable,
	// ...) are never faulted.
	DynamoThrottle float64
	// Dynamo500 is the share of data-plane requests answered 500
	// InternalServerError, unapplied. Dynamo500 and DynamoThrottle add up
	// to 1 at most.
	Dynamo500 float64

	// FanoutTrap is the share of fan-out invocations that trap halfway:
	// the function gets only the first half of the batch's records
	// (rounded down, but at least one), and the invocation then fails as
	// a guest that trapped does. The stream mapping retries or bisects the
	// batch, so the pushes of that first half are delivered again: at
	// least once, never exactly once.
	FanoutTrap float64

	// Stuck is how many of the next connections to open stop reading:
	// the gateway sends them nothing, as a client whose receive buffer is
	// full. Their send queue fills, posts to them are answered 429, and
	// the gateway drops them (1006) once a message has waited its
	// WriteTimeout. Set restarts the count.
	Stuck int

	// Seed seeds the draws. With the same seed, the same sequence of
	// requests gets the same faults (concurrent requests draw in the
	// order they arrive). 0 means a random seed. Set with a Seed other
	// than 0 restarts the sequence.
	Seed uint64
}

// Any reports whether s injects any fault (Seed alone injects none).
func (s Settings) Any() bool {
	s.Seed = 0
	return s != Settings{}
}

// Keys of the spec, in the order String writes them.
const (
	keyPostFail       = "post-fail"
	keyPostThrottle   = "post-throttle"
	keyPostDelay      = "post-delay"
	keyPostDelayShare = "post-delay-share"
	keyDynamoThrottle = "dynamo-throttle"
	keyDynamo500      = "dynamo-500"
	keyFanoutTrap     = "fanout-trap"
	keyStuck          = "stuck"
	keySeed           = "seed"
)

// Keys are the keys a spec may use, in the order String writes them.
var Keys = []string{keyPostFail, keyPostThrottle, keyPostDelay, keyPostDelayShare,
	keyDynamoThrottle, keyDynamo500, keyFanoutTrap, keyStuck, keySeed}

// shares are the settings that are shares, by key.
func (s *Settings) shares() []struct {
	key string
	v   *float64
} {
	return []struct {
		key string
		v   *float64
	}{
		{keyPostFail, &s.PostFail}, {keyPostThrottle, &s.PostThrottle}, {keyPostDelayShare, &s.PostDelayShare},
		{keyDynamoThrottle, &s.DynamoThrottle}, {keyDynamo500, &s.Dynamo500}, {keyFanoutTrap, &s.FanoutTrap},
	}
}

// Validate reports the first setting out of range, named by its key.
func (s Settings) Validate() error {
	for _, sh := range s.shares() {
		if v := *sh.v; !(v >= 0 && v <= 1) { // NaN too
			return fmt.Errorf("faults: %s=%v: a share is from 0 to 1", sh.key, v)
		}
	}
	if sum := s.PostFail + s.PostThrottle; sum > 1 {
		return fmt.Errorf("faults: %s=%v and %s=%v add up to more than 1", keyPostFail, s.PostFail, keyPostThrottle, s.PostThrottle)
	}
	if sum := s.DynamoThrottle + s.Dynamo500; sum > 1 {
		return fmt.Errorf("faults: %s=%v and %s=%v add up to more than 1", keyDynamoThrottle, s.DynamoThrottle, keyDynamo500, s.Dynamo500)
	}
	if s.PostDelay < 0 {
		return fmt.Errorf("faults: %s=%v: a delay is not negative", keyPostDelay, s.PostDelay)
	}
	if s.Stuck < 0 {
		return fmt.Errorf("faults: %s=%d: a count is not negative", keyStuck, s.Stuck)
	}
	return nil
}

// Parse reads a spec: comma-separated key=value settings, as String
// writes them, e.g.
//
//	post-fail=0.05,post-throttle=0.05,post-delay=20ms,dynamo-throttle=0.05,dynamo-500=0.01,fanout-trap=0.02,stuck=2,seed=1
//
// Shares are numbers from 0 to 1, post-delay a Go duration (20ms, 1s),
// stuck a count, seed an unsigned integer. Blanks around items are
// ignored; "" is no faults. Every key may appear once.
func Parse(spec string) (Settings, error) {
	var s Settings
	seen := map[string]bool{}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, ok := strings.Cut(item, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok {
			return Settings{}, fmt.Errorf("faults: %q is not key=value (keys: %s)", item, strings.Join(Keys, ", "))
		}
		if seen[key] {
			return Settings{}, fmt.Errorf("faults: %s is given twice", key)
		}
		seen[key] = true
		if err := s.set(key, val); err != nil {
			return Settings{}, err
		}
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// set sets one key.
func (s *Settings) set(key, val string) error {
	for _, sh := range s.shares() {
		if sh.key != key {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(v) {
			return fmt.Errorf("faults: %s=%s: not a number (a share, from 0 to 1)", key, val)
		}
		if v < 0 || v > 1 {
			return fmt.Errorf("faults: %s=%s: a share is from 0 to 1", key, val)
		}
		*sh.v = v
		return nil
	}
	switch key {
	case keyPostDelay:
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("faults: %s=%s: not a duration (20ms, 1s)", key, val)
		}
		if d < 0 {
			return fmt.Errorf("faults: %s=%s: a delay is not negative", key, val)
		}
		s.PostDelay = d
	case keyStuck:
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("faults: %s=%s: not a count (0, 1, 2, ...)", key, val)
		}
		s.Stuck = n
	case keySeed:
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("faults: %s=%s: not an unsigned integer", key, val)
		}
		s.Seed = n
	default:
		return fmt.Errorf("faults: unknown key %q (keys: %s)", key, strings.Join(Keys, ", "))
	}
	return nil
}

// String writes s as a spec Parse reads back: the settings that are not
// zero, in the order of Keys; "" for the zero Settings.
func (s Settings) String() string {
	var parts []string
	share := func(key string, v float64) {
		if v != 0 {
			parts = append(parts, key+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	share(keyPostFail, s.PostFail)
	share(keyPostThrottle, s.PostThrottle)
	if s.PostDelay != 0 {
		parts = append(parts, keyPostDelay+"="+s.PostDelay.String())
	}
	share(keyPostDelayShare, s.PostDelayShare)
	share(keyDynamoThrottle, s.DynamoThrottle)
	share(keyDynamo500, s.Dynamo500)
	share(keyFanoutTrap, s.FanoutTrap)
	if s.Stuck != 0 {
		parts = append(parts, keyStuck+"="+strconv.Itoa(s.Stuck))
	}
	if s.Seed != 0 {
		parts = append(parts, keySeed+"="+strconv.FormatUint(s.Seed, 10))
	}
	return strings.Join(parts, ",")
}

// Counts are what a Faults saw and injected since New.
type Counts struct {
	Posts         int64 // management-API POSTs seen
	PostFails     int64 // answered 500
	PostThrottles int64 // answered 429
	PostDelays    int64 // delayed

	DynamoRequests  int64 // DynamoDB data-plane requests seen
	DynamoThrottles int64 // answered ProvisionedThroughputExceededException
	Dynamo500s      int64 // answered InternalServerError

	Fanouts     int64 // fan-out invocations seen
	FanoutTraps int64 // trapped halfway

	Stuck int64 // connections that stopped reading
}

// Injected is the number of faults injected, of every kind.
func (c Counts) Injected() int64 {
	return c.PostFails + c.PostThrottles + c.PostDelays + c.DynamoThrottles + c.Dynamo500s + c.FanoutTraps + c.Stuck
}

func (c Counts) String() string {
	return fmt.Sprintf("posts %d (failed %d, throttled %d, delayed %d), DynamoDB requests %d (throttled %d, 500 %d), fan-outs %d (trapped %d), stuck connections %d",
		c.Posts, c.PostFails, c.PostThrottles, c.PostDelays, c.DynamoRequests, c.DynamoThrottles, c.Dynamo500s, c.Fanouts, c.FanoutTraps, c.Stuck)
}

// Faults is the faults in force and the counts of those injected. Its
// methods are safe for concurrent use. The zero value injects nothing
// until Set.
type Faults struct {
	cur atomic.Pointer[Settings]

	mu        sync.Mutex // guards rng, stuckLeft, and Set as a whole
	rng       *rand.Rand
	stuckLeft int

	posts, postFails, postThrottles, postDelays atomic.Int64
	dynamo, dynamoThrottles, dynamo500s         atomic.Int64
	fanouts, fanoutTraps                        atomic.Int64
	stuck                                       atomic.Int64
}

// New returns a Faults injecting s. It panics if s is not valid
// (Validate); Parse returns only valid Settings.
func New(s Settings) *Faults {
	f := &Faults{}
	seed := s.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	f.rng = newRand(seed)
	if err := f.Set(s); err != nil {
		panic(err)
	}
	return f
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Set replaces the faults in force with s, from the next request on (a
// delayed post already waiting keeps its delay). It refuses settings that
// are not valid, keeping those in force. The next s.Stuck connections
// stop reading; with s.Seed other than 0 the draws restart from it.
func (f *Faults) Set(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Seed != 0 {
		f.rng = newRand(s.Seed)
	}
	f.stuckLeft = s.Stuck
	f.cur.Store(&s)
	return nil
}

// Settings returns the settings in force, as last Set.
func (f *Faults) Settings() Settings { return *f.load() }

// noFaults are the settings of a Faults never Set.
var noFaults Settings

// load returns the settings in force.
func (f *Faults) load() *Settings {
	if s := f.cur.Load(); s != nil {
		return s
	}
	return &noFaults
}

// String is the spec of the settings in force.
func (f *Faults) String() string { return f.Settings().String() }

// Counts returns the counts so far.
func (f *Faults) Counts() Counts {
	return Counts{
		Posts: f.posts.Load(), PostFails: f.postFails.Load(), PostThrottles: f.postThrottles.Load(), PostDelays: f.postDelays.Load(),
		DynamoRequests: f.dynamo.Load(), DynamoThrottles: f.dynamoThrottles.Load(), Dynamo500s: f.dynamo500s.Load(),
		Fanouts: f.fanouts.Load(), FanoutTraps: f.fanoutTraps.Load(),
		Stuck: f.stuck.Load(),
	}
}

// uniform draws from [0, 1).
func (f *Faults) uniform() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng == nil {
		f.rng = newRand(rand.Uint64())
	}
	return f.rng.Float64()
}

// hit draws true with probability p.
func (f *Faults) hit(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return f.uniform() < p
}

// Stuck reports whether the connection connID, just opened, is to stop
// reading: true for each of the next Settings.Stuck connections. It is
// gateway.Config.Stuck.
func (f *Faults) Stuck(connID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stuckLeft <= 0 {
		return false
	}
	f.stuckLeft--
	f.stuck.Add(1)
	return true
}

// Management wraps the gateway's handler: POSTs to a path containing
// /@connections/ (the management API's PostToConnection) are delayed,
// failed and throttled as the settings say, answered as API Gateway does
// (X-Amzn-ErrorType, {"message": ...}). Every other request, GET and
// DELETE /@connections/{id} included, goes to next as is.
func (f *Faults) Management(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/@connections/") {
			next.ServeHTTP(w, r)
			return
		}
		f.posts.Add(1)
		s := f.load()
		if s.PostDelay > 0 && f.hit(or(s.PostDelayShare, 1)) {
			f.postDelays.Add(1)
			if !sleep(r.Context(), s.PostDelay) {
				return // the client went away
			}
		}
		if s.PostFail > 0 || s.PostThrottle > 0 {
			switch u := f.uniform(); {
			case u < s.PostFail:
				f.postFails.Add(1)
				drain(r)
				writeRestJSONError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
				return
			case u < s.PostFail+s.PostThrottle:
				f.postThrottles.Add(1)
				drain(r)
				writeRestJSONError(w, http.StatusTooManyRequests, "LimitExceededException", "Rate exceeded")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func or(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// sleep waits d, or until ctx ends (then it returns false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drain reads what is left of the request's body, as a server that
// answers does: the client's connection can then be reused.
func drain(r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
}

// writeRestJSONError answers as API Gateway's management API does (the
// gateway's writeError).
func writeRestJSONError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// requestID is a request id for an injected answer, as AWS gives every
// answer one (the SDK's errors quote it).
func requestID() string {
	return fmt.Sprintf("fault-%016x", rand.Uint64())
}

// dataPlane are the DynamoDB operations DynamoDB throttles: those on
// items. Table operations are never faulted, so that the emulator's
// tables are created whatever the settings.
var dataPlane = map[string]bool{
	"GetItem": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true,
	"Query": true, "Scan": true, "BatchGetItem": true, "BatchWriteItem": true,
	"TransactGetItems": true, "TransactWriteItems": true,
}

// DynamoDB's error answers.
const (
	dynamoPrefix   = "com.amazonaws.dynamodb.v20120810#"
	throttleType   = "ProvisionedThroughputExceededException"
	throttleMsg    = "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
	internalType   = "InternalServerError"
	internalMsg    = "Internal server error"
	dynamoJSONType = "application/x-amz-json-1.0"
)

// DynamoDB wraps a DynamoDB endpoint's handler: data-plane requests
// (X-Amz-Target DynamoDB_20120810.GetItem, ...) are throttled and failed
// as the settings say, answered as DynamoDB does (400 or 500, `__type`
// and `message` in an application/x-amz-json-1.0 body), without reaching
// next: a faulted write is not applied. Everything else goes to next.
func (f *Faults) DynamoDB(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if r.Method != http.MethodPost || !dataPlane[target[strings.LastIndexByte(target, '.')+1:]] {
			next.ServeHTTP(w, r)
			return
		}
		f.dynamo.Add(1)
		s := f.load()
		if s.DynamoThrottle > 0 || s.Dynamo500 > 0 {
			switch u := f.uniform(); {
			case u < s.Dynamo500:
				f.dynamo500s.Add(1)
				drain(r)
				writeDynamoError(w, http.StatusInternalServerError, internalType, internalMsg)
				return
			case u < s.Dynamo500+s.DynamoThrottle:
				f.dynamoThrottles.Add(1)
				drain(r)
				writeDynamoError(w, http.StatusBadRequest, throttleType, throttleMsg)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeDynamoError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": dynamoPrefix + typ, "message": msg})
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.Header().Set("Content-Type", dynamoJSONType)
	w.WriteHeader(status)
	w.Write(b)
}

// Invoker is a Lambda function as the emulator invokes it: the event's
// JSON in, the response's JSON out. It is aws-lambda-go's lambda.Handler,
// the one declaration of that shape (emulator.Invoker is the same type).
type Invoker = lambda.Handler

// ErrTrapped is the error of a fan-out invocation that trapped.
var ErrTrapped = errors.New("faults: the guest trapped (injected)")

// Fanout wraps the fan-out function: a FanoutTrap share of its
// invocations hand it the first half of the DynamoDB stream event's
// Records (rounded down, at least one), then fail with an error wrapping
// ErrTrapped, whatever the function answered. A payload that is not a
// stream event with records is passed as is.
func (f *Faults) Fanout(fn Invoker) Invoker { return &fanout{f: f, fn: fn} }

type fanout struct {
	f  *Faults
	fn Invoker
}

// event is a DynamoDB stream event, its records left undecoded.
type event struct {
	Records []json.RawMessage `json:"Records"`
}

func (x *fanout) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	x.f.fanouts.Add(1)
	s := x.f.load()
	if s.FanoutTrap <= 0 || !x.f.hit(s.FanoutTrap) {
		return x.fn.Invoke(ctx, payload)
	}
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil || len(ev.Records) == 0 {
		return x.fn.Invoke(ctx, payload)
	}
	x.f.fanoutTraps.Add(1)
	n := max(1, len(ev.Records)/2)
	half, err := json.Marshal(event{Records: ev.Records[:n]})
	if err != nil {
		return nil, err
	}
	if _, err := x.fn.Invoke(ctx, half); err != nil {
		return nil, fmt.Errorf("%w after %d of %d records, which failed too: %w", ErrTrapped, n, len(ev.Records), err)
	}
	return nil, fmt.Errorf("%w after %d of %d records", ErrTrapped, n, len(ev.Records))
}
