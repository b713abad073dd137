package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/faults"
)

// setFaults switches the emulator's faults, failing the test on settings
// Set refuses.
func setFaults(t testing.TB, em *emulator.Emulator, s faults.Settings) {
	t.Helper()
	if err := em.Faults().Set(s); err != nil {
		t.Fatal(err)
	}
}

// ftCreateAll sends n creates on c at once (the gateway routes up to 32
// of a connection's messages in parallel) and returns their replies, in
// order.
func ftCreateAll(t testing.TB, c *client, prefix string, n int) []frame {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		msg := fmt.Sprintf(`{"stream":"questions","payload":{"action":"create","data":{"question_text":"%s"},"request_id":%q}}`, ids[i], ids[i])
		if err := c.c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	replies := make([]frame, n)
	for i, id := range ids {
		f, err := c.await(20*time.Second, func(f frame) bool { return f.isReply() && f.Payload.RequestID == id })
		if err != nil {
			t.Fatalf("reply to create %s: %v", id, err)
		}
		replies[i] = f
	}
	return replies
}

// ftPKs returns the pks of the 201 replies, and the other replies.
func ftPKs(t testing.TB, replies []frame) (pks []string, failed []frame) {
	t.Helper()
	for _, r := range replies {
		if r.Payload.Status != 201 {
			failed = append(failed, r)
			continue
		}
		pk, _ := dataOf(t, r)["id"].(string)
		if pk == "" {
			t.Fatalf("create: no id in %s", r.raw)
		}
		pks = append(pks, pk)
	}
	return pks, failed
}

// ftAwaitPushes waits until w has received a create push of every pk in
// pks, for up to d, and returns how many create pushes of each pk it
// received (duplicates included) by then.
func ftAwaitPushes(t testing.TB, w *client, pks []string, d time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := map[string]int{}
		for _, p := range w.pushes() {
			if p.Payload.Action == "create" {
				got[p.Payload.PK]++
			}
		}
		var missing []string
		for _, pk := range pks {
			if got[pk] == 0 {
				missing = append(missing, pk)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d pushes never arrived: %s", d, len(missing), len(pks), strings.Join(missing, " "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ftDuplicates is how many pushes beyond the first of each pk arrived,
// and of how many pks.
func ftDuplicates(got map[string]int) (extra, pks int) {
	for _, n := range got {
		if n > 1 {
			extra += n - 1
			pks++
		}
	}
	return extra, pks
}

// TestFaults_DynamoThrottle: with 30% of DynamoDB requests throttled,
// the real SDK client retries them (as a throttle: the error is
// ProvisionedThroughputExceededException), and creates over the
// WebSocket still succeed.
//
// The SDK tries a DynamoDB request 4 times (its default for DynamoDB, as
// on Lambda): 0.3⁴ ≈ 0.8% of requests are throttled every time, and
// their create is answered 500, as it would be on AWS. Such a create is
// sent again, as a client does after a 500, and must then succeed; more
// than 2 of 20 would mean the retries are not carrying the rest.
func TestFaults_DynamoThrottle(t *testing.T) {
	em := start(t, nil)
	c := mustDial(t, em, "")
	ctx := context.Background()

	// The SDK sees the injected answer as DynamoDB's throttle, and tries
	// as often as its retryer allows.
	client := emulator.DynamoDBClient(em.DynamoDBEndpoint())
	setFaults(t, em, faults.Settings{DynamoThrottle: 1})
	before := em.Faults().Counts()
	_, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(emulator.Tables.Items),
		Key:       map[string]types.AttributeValue{"_stream": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: "x"}},
	}, func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) || !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Fatalf("GetItem, every request throttled: %v, want a ProvisionedThroughputExceededException the SDK sees as a throttle", err)
	}
	if n := em.Faults().Counts().DynamoThrottles - before.DynamoThrottles; n != 3 {
		t.Errorf("%d throttles for one GetItem of 3 attempts", n)
	}

	setFaults(t, em, faults.Settings{DynamoThrottle: 0.3})
	before = em.Faults().Counts()
	begin := time.Now()
	pks, failed := ftPKs(t, ftCreateAll(t, c, "throttled", 20))
	took := time.Since(begin)
	for i, f := range failed {
		if f.Payload.Status != 500 {
			t.Fatalf("a throttled create: %s, want 201, or 500 when the SDK gave up", f.raw)
		}
		again := c.send("questions", fmt.Sprintf(`{"action":"create","data":{"question_text":"again-%d"}}`, i))
		wantStatus(t, again, 201)
		pks = append(pks, dataOf(t, again)["id"].(string))
	}
	setFaults(t, em, faults.Settings{})
	after := em.Faults().Counts()
	t.Logf("20 creates in %v, %d answered 500 and sent again; DynamoDB requests %d, throttled %d", took.Round(time.Millisecond),
		len(failed), after.DynamoRequests-before.DynamoRequests, after.DynamoThrottles-before.DynamoThrottles)
	if len(failed) > 2 {
		t.Errorf("%d of 20 creates failed: the SDK's retries should carry all but about 1%% of them", len(failed))
	}
	if after.DynamoThrottles == before.DynamoThrottles {
		t.Error("no DynamoDB request was throttled")
	}
	// Every create is stored, once.
	list := c.send("questions", `{"action":"list","data":{"page":1}}`)
	wantStatus(t, list, 200)
	for _, pk := range pks {
		if strings.Count(list.raw, pk) != 1 {
			t.Errorf("created %s is listed %d times", pk, strings.Count(list.raw, pk))
		}
	}
	if n := strings.Count(list.raw, `"question_text":`); n != 20 {
		t.Errorf("%d questions listed, want 20", n)
	}
}

// TestFaults_Posts: with 30% of management-API posts throttled and 10%
// failed, a subscriber still receives the push of every create: the
// Poster retries (and what it gives up, the stream mapping retries).
func TestFaults_Posts(t *testing.T) {
	em := start(t, nil)
	c := mustDial(t, em, "")
	w := mustDial(t, em, "")
	wantStatus(t, w.send("questions", `{"action":"subscribe","data":{"action":"create"}}`), 200)

	// Only posts draw, one at a time: the seed makes the run repeatable.
	setFaults(t, em, faults.Settings{PostThrottle: 0.3, PostFail: 0.1, Seed: 1})
	begin := time.Now()
	var pks []string
	for i := range 20 {
		r := c.send("questions", fmt.Sprintf(`{"action":"create","data":{"question_text":"Q%d"}}`, i))
		wantStatus(t, r, 201)
		pks = append(pks, dataOf(t, r)["id"].(string))
	}
	ftAwaitPushes(t, w, pks, 8*time.Second)
	took := time.Since(begin)
	time.Sleep(200 * time.Millisecond) // duplicates still on their way
	got := ftAwaitPushes(t, w, pks, 0)
	counts := em.Faults().Counts()
	setFaults(t, em, faults.Settings{})

	extra, dupPKs := ftDuplicates(got)
	t.Logf("20 pushes in %v; %d duplicates (of %d pks); %v", took.Round(time.Millisecond), extra, dupPKs, counts)
	if len(got) != len(pks) {
		t.Errorf("pushes of %d pks, want exactly the %d created", len(got), len(pks))
	}
	if counts.PostThrottles == 0 || counts.PostFails == 0 {
		t.Errorf("posts throttled %d, failed %d: want some of each", counts.PostThrottles, counts.PostFails)
	}
}

// TestFaults_FanoutTrap: fan-out invocations that trap halfway through
// their batch are retried by the stream mapping, so every push is
// delivered, the first half's more than once.
func TestFaults_FanoutTrap(t *testing.T) {
	em := start(t, nil)
	c := mustDial(t, em, "")
	w := mustDial(t, em, "")
	wantStatus(t, w.send("questions", `{"action":"subscribe","data":{"action":"create"}}`), 200)

	setFaults(t, em, faults.Settings{FanoutTrap: 1})
	first := c.send("questions", `{"action":"create","data":{"question_text":"first"}}`)
	wantStatus(t, first, 201)
	firstPK := dataOf(t, first)["id"].(string)
	// The trapped invocation got the record before it failed: its push
	// arrives while every invocation traps.
	if _, err := w.push("create", firstPK); err != nil {
		t.Fatalf("push of the first half of a trapped batch: %v", err)
	}
	pks := []string{firstPK}
	more, failed := ftPKs(t, ftCreateAll(t, c, "during", 6))
	if len(failed) != 0 {
		t.Fatalf("creates failed: %s", failed[0].raw)
	}
	pks = append(pks, more...)
	time.Sleep(300 * time.Millisecond) // more trapped retries
	setFaults(t, em, faults.Settings{})
	trapped := em.Faults().Counts()

	begin := time.Now()
	got := ftAwaitPushes(t, w, pks, 8*time.Second)
	extra, dupPKs := ftDuplicates(got)
	t.Logf("every push %v after the trap ended; %d duplicates (of %d pks); %v", time.Since(begin).Round(time.Millisecond), extra, dupPKs, trapped)
	if trapped.FanoutTraps < 2 {
		t.Errorf("%d invocations trapped, want the first and its retries", trapped.FanoutTraps)
	}
	if got[firstPK] < 2 {
		t.Errorf("the first record's push arrived %d times, want again after each trap", got[firstPK])
	}
}

// TestFaults_Stuck: the next connection to open after Stuck is set reads
// nothing: its replies never arrive. The one after it is served.
func TestFaults_Stuck(t *testing.T) {
	em := start(t, nil)
	setFaults(t, em, faults.Settings{Stuck: 1})
	stuck := mustDial(t, em, "")
	fine := mustDial(t, em, "")
	if n := em.Faults().Counts().Stuck; n != 1 {
		t.Fatalf("%d connections stuck, want 1", n)
	}
	wantStatus(t, fine.send("questions", `{"action":"list"}`), 200)
	if err := stuck.c.Write(context.Background(), websocket.MessageText, []byte(`{"stream":"questions","payload":{"action":"list","request_id":"s"}}`)); err != nil {
		t.Fatal(err)
	}
	if f, err := stuck.await(500*time.Millisecond, func(f frame) bool { return true }); err == nil {
		t.Errorf("a stuck connection received %s", f.raw)
	}
}
