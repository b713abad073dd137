package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsbind/wsbind/client"
	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/local/emulator"
	"github.com/wsbind/wsbind/local/emulatortest"
	"github.com/wsbind/wsbind/resource"
)

// TestSnapshot_UnderWrites: a snapshot taken while another client
// creates, changes and deletes objects, deletes of objects on the first
// page above all, holds exactly the table once the writes stop and their
// pushes are in. A list by page number would lose objects here: a
// delete on page 1 while the snapshot lists moves the first object of
// page 2 onto page 1, already read, and, unchanged, that object is never
// pushed either. The snapshot lists each page after the last pk of the
// one before, which no delete moves.
//
// Each run is a user of its own, whose notes (a scope of their own) are
// the stream's state: 60 to 80 objects, three pages and more. The
// emulator serves every run. Every run's notes are written first,
// straight to the emulator's table as a script would (through the API,
// the 7,000 creates would take most of the test's time), and long enough
// before the runs that a run's replay holds its writer's changes, not
// its seeds (a replay of the seeds would make up for a listing that
// missed one, and hide it).
//
// The replay overlap is 1 s, as in TestStorm: the emulator's fan-out
// takes a change within milliseconds.
func TestSnapshot_UnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("100 snapshots under writes")
	}
	runs := envInt("SNAPSHOT_RUNS", 100)
	settle := 10 * time.Second
	if d, err := time.ParseDuration(envString("SNAPSHOT_SETTLE", "")); err == nil {
		settle = d // shorter, to count the failures of a broken listing quickly
	}
	em := emulatortest.Start(t, func(c *emulator.Config) {
		c.GuestEnv = append(c.GuestEnv, "WSBIND_REPLAY_OVERLAP=1s")
	})
	start := time.Now()
	rnd := mrand.New(mrand.NewPCG(7, 11))
	users, seeds := seedNotes(t, em, runs, rnd)
	seeded := time.Since(start)
	var (
		failed, objects, writes, deletes int
		dups, clientDups, relists        int64
	)
	for run, user := range users {
		r := snapshotUnderWrites(t, em, user, seeds[run], rnd.Uint64(), settle)
		objects += r.objects
		writes += r.writes
		deletes += r.deletes
		dups += r.dups
		clientDups += r.clientDups
		relists += r.relists
		if r.diff != "" {
			failed++
			if failed <= 5 {
				t.Errorf("run %d (%s): the snapshot differs from the table after %d writes (%d deletes): %s", run, user, r.writes, r.deletes, r.diff)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d runs ended with a snapshot other than the table", failed, runs)
	}
	t.Logf("snapshot under writes: %d runs, %d failed, in %v (%v of it writing their notes); "+
		"%.1f objects and %.1f writes (%.1f deletes) a run; %d duplicates dropped by the snapshots "+
		"(%d by their clients' subscriptions), %d relists",
		runs, failed, time.Since(start).Round(time.Millisecond), seeded.Round(time.Millisecond),
		float64(objects)/float64(runs), float64(writes)/float64(runs), float64(deletes)/float64(runs),
		dups, clientDups, relists)
}

// seedNotes writes each run's notes: a user per run, 60 to 80 notes
// each, with the server's kind of ids, 16 writes at a time. It returns
// the users and their notes' pks, sorted.
func seedNotes(t *testing.T, em *emulator.Emulator, runs int, rnd *mrand.Rand) (users []string, pks [][]string) {
	t.Helper()
	db := dynamo.New(dynamo.Config{Client: emulator.DynamoDBClient(em.DynamoDBEndpoint()), Tables: emulator.Tables})
	nonce := rand.Text()[:6]
	users, pks = make([]string, runs), make([][]string, runs)
	type note struct{ user, id, data string }
	work := make(chan note)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 16 {
		wg.Go(func() {
			for n := range work {
				err := db.Create(t.Context(), store.Part{Stream: "notes", Scope: n.user}, store.Item{ID: n.id, Data: []byte(n.data)})
				if err != nil {
					failed.Store(&err)
				}
			}
		})
	}
	for run := range runs {
		users[run] = fmt.Sprintf("snap-%s-%03d", nonce, run)
		for i := range 60 + rnd.IntN(21) {
			id := resource.NewID(time.Now())
			pks[run] = append(pks[run], id)
			work <- note{users[run], id, fmt.Sprintf(`{"id":%q,"owner":%q,"text":"seed %d","pinned":false}`, id, users[run], i)}
		}
		slices.Sort(pks[run])
	}
	close(work)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("seed: %v", *err)
	}
	// The fan-out takes the changes in order: once a probe written last
	// is pushed, it has taken every seed, and the runs do not wait
	// behind them. A second later no seed is within a run's replay
	// (which starts 1 s before its cursor), which therefore cannot make
	// up for a listing that missed a seed.
	probe := "snap-" + nonce + "-probe"
	c := dial(t, em, client.Options{Token: token(t, probe)})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sub, err := c.Stream("notes").Subscribe(ctx, client.Sub{Action: "create"})
	if err != nil {
		t.Fatal(err)
	}
	id := resource.NewID(time.Now())
	if err := db.Create(ctx, store.Part{Stream: "notes", Scope: probe}, store.Item{ID: id, Data: []byte(fmt.Sprintf(`{"id":%q,"owner":%q,"text":"probe","pinned":false}`, id, probe))}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.Events():
	case <-ctx.Done():
		t.Fatal("the fan-out never took the seeds")
	}
	time.Sleep(1100 * time.Millisecond)
	return users, pks
}

// underWrites is one run's outcome: diff is "" when the snapshot equals
// the table.
type underWrites struct {
	diff                     string
	objects, writes, deletes int
	dups, clientDups         int64
	relists                  int64
}

// snapshotUnderWrites is one run: user's Snapshot of notes while a
// writer of user's changes live, its notes, then the snapshot against
// the table.
func snapshotUnderWrites(t *testing.T, em *emulator.Emulator, user string, live []string, seed uint64, settle time.Duration) (res underWrites) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settle+30*time.Second)
	defer cancel()
	opts := client.Options{Token: token(t, user)}
	w := dial(t, em, opts)
	defer w.Close()
	notes := w.Stream("notes")
	rnd := mrand.New(mrand.NewPCG(seed, seed>>1))

	// The writer: creates, patches and deletes, one at a time, as fast
	// as the emulator answers, until told to stop. Half are deletes of
	// the first page's objects.
	stop := make(chan struct{})
	started := make(chan struct{})
	var writerErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(started)
		for i := 0; ; i++ {
			if i == 2 {
				started <- struct{}{}
			}
			select {
			case <-stop:
				return
			default:
			}
			var err error
			switch k := rnd.IntN(10); {
			case k < 5 && len(live) > 40:
				j := rnd.IntN(min(25, len(live)))
				_, err = notes.Delete(ctx, live[j])
				live = slices.Delete(live, j, j+1)
				res.deletes++
			case k < 7:
				var r *client.Result
				if r, err = notes.Create(ctx, map[string]any{"text": fmt.Sprintf("write %d", i)}); err == nil {
					live = append(live, r.PK) // ids grow with time: the end of the list
				}
			default:
				_, err = notes.Patch(ctx, live[rnd.IntN(len(live))], map[string]any{"text": fmt.Sprintf("write %d", i)})
			}
			res.writes++
			if err != nil {
				writerErr = err
				return
			}
		}
	})
	<-started

	c := dial(t, em, opts)
	defer c.Close()
	sn, err := c.Stream("notes").Snapshot(ctx, nil)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("%s: snapshot: %v", user, err)
	}
	defer sn.Close(ctx)
	if writerErr != nil {
		t.Fatalf("%s: writer: %v", user, writerErr)
	}

	want := streamState(t, em, opts, "notes")
	res.objects = len(want)
	settled, cancelSettle := context.WithTimeout(ctx, settle)
	defer cancelSettle()
	err = sn.Wait(settled, func(objects map[string]client.Object) bool { return snapshotDiff(objects, want) == "" })
	if err != nil {
		objects := map[string]client.Object{}
		for _, o := range sn.Objects() {
			objects[o.PK] = o
		}
		res.diff = snapshotDiff(objects, want)
	}
	res.dups, res.relists, res.clientDups = sn.Duplicates(), sn.Relists(), c.Stats().Duplicates
	return res
}

// snapshotDiff says how objects differ from want, pk → canonical JSON
// ("" when they do not).
func snapshotDiff(objects map[string]client.Object, want map[string]string) string {
	var missing, extra, changed []string
	for pk, w := range want {
		o, ok := objects[pk]
		switch {
		case !ok:
			missing = append(missing, pk)
		case canonical(o.Data) != w:
			changed = append(changed, fmt.Sprintf("%s is %s, the table has %s", pk, canonical(o.Data), w))
		}
	}
	for pk := range objects {
		if _, ok := want[pk]; !ok {
			extra = append(extra, pk)
		}
	}
	if len(missing)+len(extra)+len(changed) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(changed)
	return fmt.Sprintf("%d objects, the table %d; missing %q; extra %q; changed [%s]",
		len(objects), len(want), missing, extra, strings.Join(changed, "; "))
}
