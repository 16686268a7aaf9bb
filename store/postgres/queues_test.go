package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/outbox"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// lease is the delivery lease the queues give.
const lease = deliveryLease

// qt0 is the queue tests' fake clock, in whole microseconds.
var qt0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// gateways opens n stores on one fresh database, as n gateway instances
// would (each its own pool).
func gateways(t *testing.T, n int) []*DB {
	t.Helper()
	url := pgtest.URL(t)
	out := make([]*DB, n)
	for i := range out {
		sealer, err := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		db, err := Open(context.Background(), url, sealer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out[i] = db
	}
	return out
}

// enqueueTexts queues n texts created at qt0, to phones phones apart (a
// phone is an ordering key: phones < n makes some wait for others).
func enqueueTexts(t *testing.T, db *DB, n, phones int) []string {
	t.Helper()
	var texts []link.Text
	var ids []string
	for i := range n {
		id := fmt.Sprintf("sms_%03d", i)
		texts = append(texts, link.Text{ID: id, Kind: link.TextReply, To: fmt.Sprintf("+23480300%05d", i%phones), Created: qt0})
		ids = append(ids, id)
	}
	if err := db.EnqueueTexts(t.Context(), texts...); err != nil {
		t.Fatal(err)
	}
	return ids
}

// handedOut returns the ids of what a queue's Due hands out.
func handedOut(t *testing.T, q *Queue, now time.Time, max int) []string {
	t.Helper()
	return handedOutHolding(t, q, now, max, nil)
}

// handedOutHolding returns the ids of what a queue's Due hands out to a
// caller holding held.
func handedOutHolding(t *testing.T, q *Queue, now time.Time, max int, held []string) []string {
	t.Helper()
	msgs, err := q.DeliveredThenDue(t.Context(), nil, now, max, held)
	if err != nil {
		t.Fatalf("Due: %v", err)
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func TestInstancesWorkingOneQueueAreNeverHandedOneMessage(t *testing.T) {
	for _, c := range []struct {
		name   string
		phones int // ordering keys among the 200 messages
		max    int // asked of Due at a time
	}{
		{"every message its own key", 200, 7},
		{"ten messages a key", 20, 7},
		{"one key", 1, 3},
		{"large claims", 200, 150},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbs := gateways(t, 2)
			all := enqueueTexts(t, dbs[0], 200, c.phones)
			var mu sync.Mutex
			holder := map[string]int{} // id → the instance it was handed to
			var dupes []string
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, len(dbs))
			for i, db := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ctx := context.Background()
					other := dbs[1-i]
					for round := 0; ; round++ {
						if round == 100000 {
							errs[i] = fmt.Errorf("the queue does not drain")
							return
						}
						mu.Lock()
						done := len(holder) == len(all)
						mu.Unlock()
						if done {
							return
						}
						msgs, err := db.Texts().Due(ctx, qt0, c.max)
						if err != nil {
							errs[i] = err
							return
						}
						for n, m := range msgs {
							mu.Lock()
							if was, ok := holder[m.ID]; ok {
								dupes = append(dupes, fmt.Sprintf("%s (instance %d, then %d)", m.ID, was, i))
							}
							holder[m.ID] = i
							mu.Unlock()
							// Every other outcome is recorded by the other
							// instance: the holder need not be the one.
							finisher := db
							if n%2 == 1 {
								finisher = other
							}
							if err := finisher.Texts().Delivered(ctx, m.ID); err != nil {
								errs[i] = err
								return
							}
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("instance %d: %v", i, err)
				}
			}
			if len(dupes) != 0 {
				t.Errorf("handed out twice: %v", dupes)
			}
			if len(holder) != len(all) {
				t.Errorf("%d messages handed out, want %d", len(holder), len(all))
			}
			if left := handedOut(t, dbs[0].Texts(), qt0.Add(24*time.Hour), 1000); len(left) != 0 {
				t.Errorf("left in the queue: %v", left)
			}
		})
	}
}

func TestClaimsMadeAtOnceAreDisjoint(t *testing.T) {
	dbs := gateways(t, 2)
	all := enqueueTexts(t, dbs[0], 200, 200)
	got := make([][]string, len(dbs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			msgs, err := db.Texts().Due(context.Background(), qt0, 200)
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
			for _, m := range msgs {
				got[i] = append(got[i], m.ID)
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, id := range got[0] {
		if slices.Contains(got[1], id) {
			t.Errorf("%s handed to both instances", id)
		}
	}
	if n := len(got[0]) + len(got[1]); n != len(all) {
		t.Errorf("handed out %d of %d messages", n, len(all))
	}
}

func TestAMessageIsHeldByTheInstanceItWasHandedTo(t *testing.T) {
	type step struct {
		name     string
		instance int
		do       func(t *testing.T, q *Queue) // nil: Due at now
		now      time.Time
		held     []string // what the caller of Due holds
		want     []string
	}
	reschedule := func(at time.Time) func(t *testing.T, q *Queue) {
		return func(t *testing.T, q *Queue) {
			if err := q.Reschedule(t.Context(), "sms_000", 1, at, "HTTP 503"); err != nil {
				t.Fatal(err)
			}
		}
	}
	delivered := func(t *testing.T, q *Queue) {
		if err := q.Delivered(t.Context(), "sms_000"); err != nil {
			t.Fatal(err)
		}
	}
	giveUp := func(t *testing.T, q *Queue) {
		if err := q.GiveUp(t.Context(), "sms_000", "refused"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"the lease lapses: an instance died mid-delivery", []step{
			{name: "the first instance is handed it", instance: 0, now: qt0, want: []string{"sms_000"}},
			{name: "the other, not", instance: 1, now: qt0},
			{name: "nor just before the lease lapses", instance: 1, now: qt0.Add(lease - time.Microsecond)},
			{name: "the other once it lapsed", instance: 1, now: qt0.Add(lease), want: []string{"sms_000"}},
			{name: "now the first is not", instance: 0, now: qt0.Add(lease)},
		}},
		{"the holder is handed its own again, its lease renewed", []step{
			{name: "handed out", instance: 0, now: qt0, want: []string{"sms_000"}},
			{name: "again to its holder, later", instance: 0, now: qt0.Add(lease / 2), want: []string{"sms_000"}},
			{name: "not to the other at the first lease's end", instance: 1, now: qt0.Add(lease)},
			{name: "to the other at the renewed lease's end", instance: 1, now: qt0.Add(lease / 2).Add(lease), want: []string{"sms_000"}},
		}},
		{"the holder is handed its own again, its lease kept while more than half is left", []step{
			{name: "handed out", instance: 0, now: qt0, want: []string{"sms_000"}},
			{name: "again to its holder, just before half the lease", instance: 0, now: qt0.Add(lease/2 - time.Microsecond), want: []string{"sms_000"}},
			{name: "not to the other before the first lease's end", instance: 1, now: qt0.Add(lease - time.Microsecond)},
			{name: "to the other at the first lease's end", instance: 1, now: qt0.Add(lease), want: []string{"sms_000"}},
		}},
		{"what its holder holds is left out while more than half its lease is left, then handed out to renew it", []step{
			{name: "handed out", instance: 0, now: qt0, want: []string{"sms_000"}},
			{name: "left out, held, just before half the lease", instance: 0, now: qt0.Add(lease/2 - time.Microsecond), held: []string{"sms_000"}},
			{name: "handed out again, held, at half the lease", instance: 0, now: qt0.Add(lease / 2), held: []string{"sms_000"}, want: []string{"sms_000"}},
			{name: "not to the other at the first lease's end", instance: 1, now: qt0.Add(lease)},
			{name: "to the other at the renewed lease's end", instance: 1, now: qt0.Add(lease / 2).Add(lease), held: []string{"sms_000"}, want: []string{"sms_000"}},
		}},
		{"Delivered by another instance", []step{
			{name: "handed out", instance: 0, now: qt0, want: []string{"sms_000"}},
			{name: "delivered by the other", instance: 1, do: delivered},
			{name: "gone for the holder", instance: 0, now: qt0.Add(time.Hour)},
			{name: "gone for the other", instance: 1, now: qt0.Add(time.Hour)},
		}},
		{"Reschedule ends the lease", []step{
			{name: "handed out", instance: 0, now: qt0, want: []string{"sms_000"}},
			{name: "retried in a minute", instance: 0, do: reschedule(qt0.Add(time.Minute))},
			{name: "not before", instance: 1, now: qt0.Add(time.Minute - time.Microsecond)},
			{name: "to any instance at the retry", instance: 1, now: qt0.Add(time.Minute), want: []string{"sms_000"}},
		}},
		{"GiveUp by another instance", []step{
			{name: "handed out", instance: 0, now: qt0, want: []string{"sms_000"}},
			{name: "given up by the other", instance: 1, do: giveUp},
			{name: "gone", instance: 0, now: qt0.Add(time.Hour)},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbs := gateways(t, 2)
			enqueueTexts(t, dbs[0], 1, 1)
			for _, s := range c.steps {
				q := dbs[s.instance].Texts()
				if s.do != nil {
					s.do(t, q)
					continue
				}
				if got := handedOutHolding(t, q, s.now, 10, s.held); !slices.Equal(got, s.want) {
					t.Fatalf("%s: instance %d handed %v at qt0%+v, want %v", s.name, s.instance, got, s.now.Sub(qt0), s.want)
				}
			}
		})
	}
}

// What its caller holds is not counted in max, and still holds back the
// later messages of its ordering key.
func TestWhatTheCallerHoldsIsNotCountedAndHoldsBackItsKey(t *testing.T) {
	db := gateways(t, 1)[0]
	enqueueTexts(t, db, 4, 2) // sms_000 and sms_002 to one phone, sms_001 and sms_003 to another
	q := db.Texts()
	if got := handedOut(t, q, qt0, 1); !slices.Equal(got, []string{"sms_000"}) {
		t.Fatalf("first claim: %v", got)
	}
	if got := handedOutHolding(t, q, qt0, 1, []string{"sms_000"}); !slices.Equal(got, []string{"sms_001"}) {
		t.Errorf("a claim of one holding sms_000: %v, want sms_001 (sms_002 waits behind sms_000)", got)
	}
}

func TestNextDueCountsAnotherInstancesMessageFromTheEndOfItsLease(t *testing.T) {
	dbs := gateways(t, 2)
	ctx := t.Context()
	enqueueTexts(t, dbs[0], 1, 1)
	if got := handedOut(t, dbs[0].Texts(), qt0, 10); len(got) != 1 {
		t.Fatalf("Due = %v, want the message", got)
	}
	for i, want := range []time.Time{qt0, qt0.Add(lease)} {
		if at, ok, err := dbs[i].Texts().NextDue(ctx); err != nil || !ok || !at.Equal(want) {
			t.Errorf("instance %d: NextDue = %v, %v, %v; want %v", i, at, ok, err, want)
		}
	}
	// Queued behind it, a later message of its key counts for nothing.
	if err := dbs[1].EnqueueTexts(ctx, link.Text{ID: "sms_later", Kind: link.TextReply, To: "+2348030000000", Created: qt0}); err != nil {
		t.Fatal(err)
	}
	if at, ok, err := dbs[1].Texts().NextDue(ctx); err != nil || !ok || !at.Equal(qt0.Add(lease)) {
		t.Errorf("NextDue with a message waiting = %v, %v, %v; want the lease's end", at, ok, err)
	}
}

func TestMessagesOfOneKeyQueuedAtOnceLeaveInTheirQueueOrder(t *testing.T) {
	dbs := gateways(t, 3)
	ctx := t.Context()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				text := link.Text{ID: fmt.Sprintf("sms_%d_%02d", w, i), Kind: link.TextReply, To: "+2348030000001", Created: qt0}
				if err := dbs[w%2].EnqueueTexts(context.Background(), text); err != nil {
					t.Errorf("EnqueueTexts: %v", err)
					return
				}
			}
		}()
	}
	written := make(chan struct{})
	go func() { wg.Wait(); close(written) }()
	close(start)
	// A third instance sends them while they are queued: each leaves only
	// once every message queued before it (a lower Seq) has left.
	var seqs []uint64
	last := map[int]int{} // writer → its last message sent
	for done := false; !done; {
		select {
		case <-written:
			done = true
		default:
		}
		for {
			msgs, err := dbs[2].Texts().Due(ctx, qt0, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				break
			}
			m := msgs[0]
			seqs = append(seqs, m.Seq)
			var w, i int
			fmt.Sscanf(m.ID, "sms_%d_%d", &w, &i)
			if prev, ok := last[w]; ok && i != prev+1 {
				t.Errorf("%s sent after sms_%d_%02d", m.ID, w, prev)
			}
			last[w] = i
			if err := dbs[2].Texts().Delivered(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seqs) != writers*each {
		t.Errorf("sent %d of %d", len(seqs), writers*each)
	}
	if !slices.IsSorted(seqs) {
		t.Errorf("sent out of their queue order: %v", seqs)
	}
}

func TestAMessageIsNotHandedOutBeforeAnEarlierOneOfItsKeyCommits(t *testing.T) {
	dbs := gateways(t, 2)
	ctx := t.Context()
	msg := func(id string) []link.Message {
		return []link.Message{{ID: id, Type: link.TextReply, Body: []byte("{}"), Created: qt0, Next: qt0, Key: "2348030000001"}}
	}
	// The first commit is slow: it queued m_first and goes on writing.
	queued, commit := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(commit) }) }
	defer release() // even when failing: the open transaction holds a connection
	first := make(chan error, 1)
	go func() {
		first <- dbs[0].inTx(ctx, func(tx pgx.Tx) error {
			if err := dbs[0].putMessages(ctx, tx, queueTexts, msg("m_first")); err != nil {
				return err
			}
			close(queued)
			<-commit
			return nil
		})
	}()
	<-queued
	// The second, on another instance, must wait for it.
	second := make(chan error, 1)
	go func() {
		second <- dbs[1].inTx(ctx, func(tx pgx.Tx) error { return dbs[1].putMessages(ctx, tx, queueTexts, msg("m_second")) })
	}()
	for waiting := 0; waiting == 0; {
		select {
		case err := <-second:
			t.Fatalf("the second commit went through while the first was open (%v): it could be sent first", err)
		default:
		}
		if err := dbs[0].pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if got := handedOut(t, dbs[0].Texts(), qt0, 10); len(got) != 0 {
		t.Fatalf("while the first commit is open, Due = %v, want nothing", got)
	}
	release()
	for _, done := range []chan error{first, second} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"m_first", "m_second"} {
		got := handedOut(t, dbs[0].Texts(), qt0, 10)
		if !slices.Equal(got, []string{want}) {
			t.Fatalf("Due = %v, want %s", got, want)
		}
		if err := dbs[0].Texts().Delivered(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBucketSizesCountsTheRowsOfEveryTableButTheDatabasesOwn(t *testing.T) {
	db := gateways(t, 1)[0]
	ctx := t.Context()
	enqueueTexts(t, db, 3, 3)
	if err := db.Texts().GiveUp(ctx, "sms_000", "refused"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FirstDelivery(ctx, "termii", "msg-1", qt0); err != nil {
		t.Fatal(err)
	}
	if err := db.OptOut(ctx, "+2348030000001", true, qt0); err != nil {
		t.Fatal(err)
	}
	sizes, err := db.BucketSizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"messages": 2, "dead_letters": 1, "inbound_seen": 1, "opt_outs": 1, "conversations": 0} {
		if got, ok := sizes[table]; !ok || got != want {
			t.Errorf("BucketSizes[%s] = %d, %v; want %d", table, got, ok, want)
		}
	}
	var tables []string
	rows, err := db.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if _, ok := sizes[table]; ok == (table == "meta" || table == "ussdlink_schema_version") {
			t.Errorf("table %s counted = %v", table, ok)
		}
	}
}

func TestTwoInstancesWorkersSendEachMessageOnceInItsKeysOrder(t *testing.T) {
	dbs := gateways(t, 2)
	all := enqueueTexts(t, dbs[0], 120, 15)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	sent := map[string]int{}       // id → instance that sent it
	lastSeq := map[string]uint64{} // ordering key → seq of the last message sent
	var problems []string
	var wg sync.WaitGroup
	for i, db := range dbs {
		w := &outbox.Worker{
			Queue: db.Texts(), Noun: "text", PollEvery: 20 * time.Millisecond,
			Send: func(ctx context.Context, m link.Message) error {
				var earlier int
				if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE queue = $1 AND key = $2 AND seq < $3`,
					queueTexts, m.Key, int64(m.Seq)).Scan(&earlier); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if earlier != 0 {
					problems = append(problems, fmt.Sprintf("%s sent before the %d queued earlier of its key were done", m.ID, earlier))
				}
				if was, ok := sent[m.ID]; ok {
					problems = append(problems, fmt.Sprintf("%s sent by instance %d, then %d", m.ID, was, i))
				}
				if m.Seq <= lastSeq[m.Key] {
					problems = append(problems, fmt.Sprintf("%s (seq %d) sent after seq %d of its key", m.ID, m.Seq, lastSeq[m.Key]))
				}
				sent[m.ID], lastSeq[m.Key] = i, m.Seq
				if len(sent) == len(all) {
					cancel()
				}
				return nil
			},
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if len(problems) != 0 {
		t.Errorf("problems: %v", problems)
	}
	if len(sent) != len(all) {
		t.Fatalf("sent %d of %d before the deadline", len(sent), len(all))
	}
	by := [2]int{}
	for _, i := range sent {
		by[i]++
	}
	t.Logf("sent by instance: %v", by)
	if left := handedOut(t, dbs[0].Texts(), qt0.Add(time.Hour), 1000); len(left) != 0 {
		t.Errorf("left in the queue: %v", left)
	}
}

func TestDeliveredMessagesAreRemovedInTheTransactionOfTheNextClaim(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		failClaim bool     // the server refuses the claim's update
		want      []string // handed out by DeliveredThenDue
		left      int      // messages the queue holds after it
	}{
		{"the next of the delivered one's key is handed out in the same call", 3, false, []string{"sms_001"}, 2},
		{"a refused claim removes nothing", 3, true, nil, 3},
		{"with max 0 it only removes", 0, false, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			db := gateways(t, 1)[0]
			enqueueTexts(t, db, 3, 1) // one phone: one ordering key
			q := db.Texts()
			if got := handedOut(t, q, qt0, 3); !slices.Equal(got, []string{"sms_000"}) {
				t.Fatalf("first claim: %v, want sms_000 alone (the others wait for it)", got)
			}
			if tt.failClaim {
				if _, err := db.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN RAISE EXCEPTION 'refused'; END $$;
					CREATE TRIGGER refuse BEFORE UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
					t.Fatal(err)
				}
			}
			msgs, err := q.DeliveredThenDue(ctx, []string{"sms_000"}, qt0, tt.max, nil)
			if (err != nil) != tt.failClaim {
				t.Fatalf("DeliveredThenDue: %v, want an error %v", err, tt.failClaim)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("handed out %v, want %v", got, tt.want)
			}
			if n, _, err := q.Depth(ctx); err != nil || n != tt.left {
				t.Errorf("the queue holds %d messages (%v), want %d", n, err, tt.left)
			}
		})
	}
}

// The workers record a queue's deliveries with its next read.
var _ outbox.SettlingQueue = (*Queue)(nil)
