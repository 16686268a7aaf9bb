package outbox_test

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/outbox"
)

// write is one outcome a memQueue recorded.
type write struct {
	op       string // "delivered", "reschedule", "give up"
	id       string
	attempts int
	next     time.Time
	lastErr  string
}

// memQueue is a queue in memory. It hands out every due message, keeping no
// order per key (the store does), so tests can see the worker's own care.
// Each recorded outcome is sent on writes; each Due call's time on dueCalls.
type memQueue struct {
	mu       sync.Mutex
	msgs     map[string]link.Message
	failDue  bool
	writes   chan write
	dueCalls chan time.Time
}

func newMemQueue(msgs ...link.Message) *memQueue {
	q := &memQueue{msgs: map[string]link.Message{}, writes: make(chan write, 100), dueCalls: make(chan time.Time, 100)}
	for i, m := range msgs {
		m.Seq = uint64(i + 1)
		q.msgs[m.ID] = m
	}
	return q
}

func (q *memQueue) Due(_ context.Context, now time.Time, max int) ([]link.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case q.dueCalls <- time.Now():
	default:
	}
	if q.failDue {
		return nil, errors.New("disk on fire")
	}
	var out []link.Message
	for _, m := range q.msgs {
		if !m.Next.After(now) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b link.Message) int { return cmp.Or(a.Next.Compare(b.Next), cmp.Compare(a.Seq, b.Seq)) })
	return out[:min(max, len(out))], nil
}

func (q *memQueue) NextDue(context.Context) (time.Time, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failDue {
		return time.Time{}, false, errors.New("disk on fire")
	}
	var at time.Time
	for _, m := range q.msgs {
		if at.IsZero() || m.Next.Before(at) {
			at = m.Next
		}
	}
	return at, !at.IsZero(), nil
}

func (q *memQueue) record(w write, change func()) error {
	q.mu.Lock()
	change()
	q.mu.Unlock()
	q.writes <- w
	return nil
}

func (q *memQueue) Delivered(_ context.Context, id string) error {
	return q.record(write{op: "delivered", id: id}, func() { delete(q.msgs, id) })
}

func (q *memQueue) Reschedule(_ context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return q.record(write{"reschedule", id, attempts, next, lastErr}, func() {
		m := q.msgs[id]
		m.Attempts, m.Next, m.LastErr = attempts, next, lastErr
		q.msgs[id] = m
	})
}

func (q *memQueue) GiveUp(_ context.Context, id string, lastErr string) error {
	return q.record(write{op: "give up", id: id, lastErr: lastErr}, func() { delete(q.msgs, id) })
}

// skippingMemQueue is a memQueue that leaves out of Due the messages the
// worker reports it holds, as the bbolt store's queues do (DueExcept). It
// notes the ids each call was told to leave out.
type skippingMemQueue struct {
	*memQueue
	left chan []string // the ids one DueExcept left out, sorted
}

func newSkippingMemQueue(msgs ...link.Message) skippingMemQueue {
	return skippingMemQueue{memQueue: newMemQueue(msgs...), left: make(chan []string, 100)}
}

func (q skippingMemQueue) DueExcept(ctx context.Context, now time.Time, max int, skip func(id []byte) bool) ([]link.Message, error) {
	all, err := q.Due(ctx, now, math.MaxInt)
	var out []link.Message
	var left []string
	for _, m := range all {
		if skip([]byte(m.ID)) {
			left = append(left, m.ID)
			continue
		}
		out = append(out, m)
	}
	slices.Sort(left)
	select {
	case q.left <- left:
	default:
	}
	return out[:min(max, len(out))], err
}

// settlingMemQueue is a memQueue that records the deliveries the worker
// hands its reads (DeliveredThenDue), as PostgreSQL's queues do, and
// fails both while failDue is set. It counts the Delivered calls made to
// it directly.
type settlingMemQueue struct {
	*memQueue
	direct *atomic.Int32
	renew  map[string]bool // held messages handed back once, as PostgreSQL's renews a lease (under mu)
}

func newSettlingMemQueue(msgs ...link.Message) settlingMemQueue {
	return settlingMemQueue{memQueue: newMemQueue(msgs...), direct: new(atomic.Int32), renew: map[string]bool{}}
}

// renewOnce has the next read hand ids back even while they are held.
func (q settlingMemQueue) renewOnce(ids ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		q.renew[id] = true
	}
}

func (q settlingMemQueue) Delivered(ctx context.Context, id string) error {
	q.direct.Add(1)
	return q.memQueue.Delivered(ctx, id)
}

func (q settlingMemQueue) DeliveredThenDue(ctx context.Context, delivered []string, now time.Time, max int, held []string) ([]link.Message, error) {
	q.mu.Lock()
	fail := q.failDue
	q.mu.Unlock()
	if fail {
		return nil, errors.New("disk on fire")
	}
	for _, id := range delivered {
		q.memQueue.Delivered(ctx, id)
	}
	if max == 0 {
		return nil, nil
	}
	all, err := q.Due(ctx, now, math.MaxInt) // held ones still hold back their keys
	q.mu.Lock()
	out := slices.DeleteFunc(all, func(m link.Message) bool {
		if q.renew[m.ID] {
			delete(q.renew, m.ID)
			return false
		}
		return slices.Contains(held, m.ID)
	})
	q.mu.Unlock()
	return out[:min(max, len(out))], err
}

// put queues m, due now.
func (q *memQueue) put(m link.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m.Seq = uint64(len(q.msgs) + 100)
	q.msgs[m.ID] = m
}

// queueKinds are the two kinds of queue a worker reads: one whose Due
// hands out what the worker holds too, and one that leaves it out.
var queueKinds = map[string]func(msgs ...link.Message) (outbox.Queue, *memQueue){
	"queue": func(msgs ...link.Message) (outbox.Queue, *memQueue) { q := newMemQueue(msgs...); return q, q },
	"skipping queue": func(msgs ...link.Message) (outbox.Queue, *memQueue) {
		q := newSkippingMemQueue(msgs...)
		return q, q.memQueue
	},
	"settling queue": func(msgs ...link.Message) (outbox.Queue, *memQueue) {
		q := newSettlingMemQueue(msgs...)
		return q, q.memQueue
	},
}

// message returns a message due now, queued age ago, with an ordering key.
func message(id, key string, age time.Duration) link.Message {
	now := time.Now()
	return link.Message{ID: id, Type: "TEST", Key: key, Created: now.Add(-age), Next: now}
}

// running starts w and returns a stop that cancels Run and checks it
// returned nil.
func running(t *testing.T, w *outbox.Worker) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}
}

func TestEveryOutcomeOfASendIsRecorded(t *testing.T) {
	tests := []struct {
		name     string
		age      time.Duration // since the message was queued
		send     func() error
		want     string // the write
		wantErr  string // in the recorded reason
		retrying bool   // want a retry after the backoff
	}{
		{name: "sent", send: func() error { return nil }, want: "delivered"},
		{name: "skipped", send: func() error { return outbox.Skip("opted out") }, want: "delivered"},
		{name: "refused for good", send: func() error { return outbox.Permanent(errors.New("HTTP 400")) }, want: "give up", wantErr: "HTTP 400"},
		{name: "failed, young", age: time.Hour, send: func() error { return errors.New("HTTP 503") }, want: "reschedule", wantErr: "HTTP 503", retrying: true},
		{name: "failed, older than RetryFor", age: 25 * time.Hour, send: func() error { return errors.New("HTTP 503") }, want: "give up", wantErr: "gave up after 1 attempts"},
		{name: "send panicked", send: func() error { panic("bug") }, want: "reschedule", wantErr: "panicked", retrying: true},
	}
	for kind, newQueue := range queueKinds {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					queue, q := newQueue(message("m1", "k", tt.age))
					w := &outbox.Worker{Queue: queue, Send: func(context.Context, link.Message) error { return tt.send() },
						RetryFor: 24 * time.Hour, Backoff: time.Minute, MaxBackoff: time.Hour, Log: zerolog.Nop()}
					stop := running(t, w)
					defer stop()
					sent := time.Now()

					got := <-q.writes
					if got.op != tt.want || got.id != "m1" || !strings.Contains(got.lastErr, tt.wantErr) {
						t.Errorf("recorded %+v, want %s with an error mentioning %q", got, tt.want, tt.wantErr)
					}
					if !tt.retrying {
						return
					}
					if wait := got.next.Sub(sent); got.attempts != 1 || wait < 30*time.Second || wait > time.Minute {
						t.Errorf("rescheduled attempt %d in %v, want attempt 1 in 30s–1m", got.attempts, wait)
					}
					if again := <-q.writes; again.attempts != 2 || time.Now().Before(got.next) {
						t.Errorf("second attempt %+v at %v, want attempt 2 not before %v", again, time.Now(), got.next)
					}
				})
			})
		}
	}
}

func TestStoreReadErrorsPauseTheWorkerForAGrowingBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		q.failDue = true
		w := &outbox.Worker{Queue: q, Send: func(context.Context, link.Message) error { return nil },
			Backoff: time.Second, MaxBackoff: 8 * time.Second, Log: zerolog.Nop()}
		for range 10 {
			w.Notify() // wake-ups do not shorten the pause
		}
		stop := running(t, w)
		defer stop()

		prev := <-q.dueCalls
		for i, least := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			w.Notify()
			at := <-q.dueCalls
			if gap := at.Sub(prev); gap < least {
				t.Errorf("read %d came %v after the failed one before, want at least %v", i+2, gap, least)
			}
			prev = at
		}
	})
}

// gatedSend is a Send that blocks each message until it is released, and
// notes which messages are being sent.
type gatedSend struct {
	mu       sync.Mutex
	sending  map[string]bool
	released map[string]chan struct{}
}

func newGatedSend(ids ...string) *gatedSend {
	g := &gatedSend{sending: map[string]bool{}, released: map[string]chan struct{}{}}
	for _, id := range ids {
		g.released[id] = make(chan struct{})
	}
	return g
}

func (g *gatedSend) send(_ context.Context, m link.Message) error {
	g.mu.Lock()
	g.sending[m.ID] = true
	gate := g.released[m.ID]
	g.mu.Unlock()
	<-gate
	g.mu.Lock()
	delete(g.sending, m.ID)
	g.mu.Unlock()
	return nil
}

// now returns the ids being sent, sorted.
func (g *gatedSend) now() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for id := range g.sending {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func TestMessagesOfOneKeyAreNeverSentAtOnce(t *testing.T) {
	for kind, newQueue := range queueKinds {
		t.Run(kind, func(t *testing.T) { checkMessagesOfOneKeyAreNeverSentAtOnce(t, newQueue) })
	}
}

func checkMessagesOfOneKeyAreNeverSentAtOnce(t *testing.T, newQueue func(...link.Message) (outbox.Queue, *memQueue)) {
	synctest.Test(t, func(t *testing.T) {
		g := newGatedSend("a1", "a2", "b1")
		queue, q := newQueue(message("a1", "acc_a", 0), message("a2", "acc_a", 0), message("b1", "acc_b", 0))
		w := &outbox.Worker{Queue: queue, Send: g.send, Log: zerolog.Nop()}
		stop := running(t, w)
		defer stop()

		synctest.Wait()
		if got, want := g.now(), []string{"a1", "b1"}; !slices.Equal(got, want) {
			t.Fatalf("sending %v, want %v: a2 waits for a1, b1 does not", got, want)
		}
		close(g.released["a1"])
		<-q.writes
		synctest.Wait()
		if got, want := g.now(), []string{"a2", "b1"}; !slices.Equal(got, want) {
			t.Errorf("after a1, sending %v, want %v", got, want)
		}
		close(g.released["a2"])
		close(g.released["b1"])
		<-q.writes
		<-q.writes
	})
}

func TestNoMoreThanMaxInFlightAreSentAtOnce(t *testing.T) {
	for kind, newQueue := range queueKinds {
		t.Run(kind, func(t *testing.T) { checkNoMoreThanMaxInFlightAreSentAtOnce(t, newQueue) })
	}
}

func checkNoMoreThanMaxInFlightAreSentAtOnce(t *testing.T, newQueue func(...link.Message) (outbox.Queue, *memQueue)) {
	synctest.Test(t, func(t *testing.T) {
		ids := []string{"m1", "m2", "m3", "m4", "m5"}
		g := newGatedSend(ids...)
		var msgs []link.Message
		for _, id := range ids {
			msgs = append(msgs, message(id, "key_"+id, 0))
		}
		queue, q := newQueue(msgs...)
		w := &outbox.Worker{Queue: queue, Send: g.send, MaxInFlight: 2, Log: zerolog.Nop()}
		stop := running(t, w)
		defer stop()

		for _, id := range ids {
			synctest.Wait()
			if n := len(g.now()); n > 2 {
				t.Fatalf("%d sends at once, want at most 2", n)
			}
			close(g.released[id])
		}
		for range ids {
			<-q.writes
		}
	})
}

func TestAWorkerLeavesWhatItHoldsOutOfASkippingQueuesDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGatedSend("m1", "m2", "m3")
		q := newSkippingMemQueue(message("m1", "k1", 0), message("m2", "k2", 0))
		w := &outbox.Worker{Queue: q, Send: g.send, MaxInFlight: 4, Log: zerolog.Nop()}
		stop := running(t, w)
		defer stop()
		synctest.Wait()
		if got := g.now(); !slices.Equal(got, []string{"m1", "m2"}) {
			t.Fatalf("sending %v, want m1 and m2", got)
		}
		for len(q.left) > 0 {
			<-q.left
		}

		q.put(message("m3", "k3", 0))
		w.Notify()
		synctest.Wait()
		select {
		case got := <-q.left:
			if !slices.Equal(got, []string{"m1", "m2"}) {
				t.Errorf("Due left out %v, want the two in flight", got)
			}
		default:
			t.Fatal("the worker did not read the queue through DueExcept")
		}
		if got := g.now(); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
			t.Errorf("sending %v, want m3 beside the two in flight", got)
		}
		for _, id := range []string{"m1", "m2", "m3"} {
			close(g.released[id])
			<-q.writes
		}
	})
}

func TestRunReturnsOnlyOnceTheSendsUnderWayAreRecorded(t *testing.T) {
	for kind, newQueue := range queueKinds {
		t.Run(kind, func(t *testing.T) { checkRunReturnsOnlyOnceTheSendsUnderWayAreRecorded(t, newQueue) })
	}
}

func checkRunReturnsOnlyOnceTheSendsUnderWayAreRecorded(t *testing.T, newQueue func(...link.Message) (outbox.Queue, *memQueue)) {
	synctest.Test(t, func(t *testing.T) {
		g := newGatedSend("m1")
		queue, q := newQueue(message("m1", "", 0))
		w := &outbox.Worker{Queue: queue, Send: g.send, Log: zerolog.Nop()}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		synctest.Wait()

		cancel()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Run returned with a send under way")
		default:
		}
		close(g.released["m1"])
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		select {
		case got := <-q.writes:
			if got.op != "delivered" {
				t.Errorf("recorded %+v, want delivered", got)
			}
		default:
			t.Error("the send finished during shutdown was not recorded")
		}
	})
}

func TestASettlingQueueRecordsEachDeliveryWithItsNextRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGatedSend("m1", "m2")
		var mu sync.Mutex
		sends := map[string]int{}
		send := func(ctx context.Context, m link.Message) error {
			mu.Lock()
			sends[m.ID]++
			mu.Unlock()
			return g.send(ctx, m)
		}
		q := newSettlingMemQueue(message("m1", "k", 0), message("m2", "k", 0))
		w := &outbox.Worker{Queue: q, Send: send, Backoff: time.Second, MaxBackoff: time.Minute, Log: zerolog.Nop()}
		stop := running(t, w)
		defer stop()
		synctest.Wait()
		if got := g.now(); !slices.Equal(got, []string{"m1"}) {
			t.Fatalf("sending %v, want m1 (m2 waits for it)", got)
		}
		// m1 is sent while the store fails: its delivery is held, m1 is not
		// sent again, and m2 still waits for it.
		q.mu.Lock()
		q.failDue = true
		q.mu.Unlock()
		close(g.released["m1"])
		synctest.Wait()
		if got, n := g.now(), len(q.writes); len(got) != 0 || n != 0 {
			t.Fatalf("with the store failing: sending %v, %d outcomes recorded; want nothing", got, n)
		}
		q.mu.Lock()
		q.failDue = false
		q.mu.Unlock()
		// Once the store answers, the next read records it, and hands m2 out.
		if got := <-q.writes; got.op != "delivered" || got.id != "m1" {
			t.Fatalf("recorded %+v, want m1 delivered", got)
		}
		synctest.Wait()
		if got := g.now(); !slices.Equal(got, []string{"m2"}) {
			t.Fatalf("sending %v after m1 was recorded, want m2", got)
		}
		close(g.released["m2"])
		if got := <-q.writes; got.op != "delivered" || got.id != "m2" {
			t.Fatalf("recorded %+v, want m2 delivered", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if sends["m1"] != 1 || sends["m2"] != 1 {
			t.Errorf("sent %v, want each once", sends)
		}
		if n := q.direct.Load(); n != 0 {
			t.Errorf("%d deliveries recorded one by one, want every one with a read", n)
		}
	})
}

// A settling queue hands back the messages a worker holds whose lease it
// renews, in the place of others due: the worker reads again rather than
// wait for its next poll with a message due and room to send it.
func TestMessagesHandedBackToRenewTheirLeaseDoNotHoldUpTheOthersDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGatedSend("m0", "m1", "m2")
		q := newSettlingMemQueue(message("m0", "k0", 0), message("m1", "k1", 0))
		w := &outbox.Worker{Queue: q, Send: g.send, MaxInFlight: 3, PollEvery: time.Hour, Log: zerolog.Nop()}
		stop := running(t, w)
		defer stop()
		synctest.Wait()
		if got := g.now(); !slices.Equal(got, []string{"m0", "m1"}) {
			t.Fatalf("sending %v, want m0 and m1", got)
		}
		q.renewOnce("m0", "m1")
		q.put(message("m2", "k2", 0))
		w.Notify()
		synctest.Wait()
		if got := g.now(); !slices.Equal(got, []string{"m0", "m1", "m2"}) {
			t.Errorf("sending %v, want m2 beside the two whose leases were renewed", got)
		}
		for _, id := range []string{"m0", "m1", "m2"} {
			close(g.released[id])
		}
	})
}

func TestRunRefusesAnIncompleteWorkerAndASecondRun(t *testing.T) {
	send := func(context.Context, link.Message) error { return nil }
	for name, w := range map[string]*outbox.Worker{
		"no queue": {Send: send},
		"no send":  {Queue: newMemQueue()},
	} {
		if err := w.Run(t.Context()); err == nil {
			t.Errorf("%s: Run = nil, want an error", name)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		w := &outbox.Worker{Queue: newMemQueue(), Send: send, Log: zerolog.Nop()}
		stop := running(t, w)
		defer stop()
		synctest.Wait()
		if err := w.Run(t.Context()); err == nil {
			t.Error("a second Run started")
		}
	})
}
