package menus

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// heldKey marks a context returned by lockRecorder.LockSession.
type heldKey struct{}

// lockRecorder is a SessionLocker that marks the contexts it returns with
// the session they lock.
type lockRecorder struct {
	mu    sync.Mutex
	taken []string
}

func (l *lockRecorder) LockContext(context.Context, string) (func(), error) { return func() {}, nil }

func (l *lockRecorder) LockSession(ctx context.Context, id string) (context.Context, func(), error) {
	l.mu.Lock()
	l.taken = append(l.taken, id)
	l.mu.Unlock()
	return context.WithValue(ctx, heldKey{}, id), func() {}, nil
}

// lockCheckingStore records every read and commit of a session made
// without the context its lock returned.
type lockCheckingStore struct {
	*memStore
	mu       sync.Mutex
	unlocked []string
}

func (s *lockCheckingStore) check(ctx context.Context, what, id string) {
	if held, _ := ctx.Value(heldKey{}).(string); held != id {
		s.mu.Lock()
		s.unlocked = append(s.unlocked, what+" "+id)
		s.mu.Unlock()
	}
}

func (s *lockCheckingStore) Session(ctx context.Context, id string) (*link.SessionRecord, error) {
	s.check(ctx, "read", id)
	return s.memStore.Session(ctx, id)
}

func (s *lockCheckingStore) Commit(ctx context.Context, c link.Change) error {
	s.check(ctx, "commit", c.Session.ID)
	return s.memStore.Commit(ctx, c)
}

func TestEverySessionReadAndCommitIsMadeWithItsLocksContext(t *testing.T) {
	locker := &lockRecorder{}
	r := newRig(t, slowBank(300*time.Millisecond, 50*time.Millisecond), func(c *Config, _ *sandbox.Options) { c.Locker = locker })
	st := &lockCheckingStore{memStore: r.store}
	r.engine = r.restart(st)
	for _, transcript := range []string{"", "1", "1*user_slow", "1*user_slow*pass_good"} {
		r.must(t, "s1", "+234801", transcript)
	}
	r.drain(t) // the login settles in the background, under the lock
	r.must(t, "s1", "+234801", "1*user_slow*pass_good*1")
	if err := r.engine.Close(context.Background(), link.Hop{SessionID: "s1", Phone: "+234801", Closing: "closed"}, ""); err != nil {
		t.Fatal(err)
	}
	if len(st.unlocked) > 0 {
		t.Errorf("made without the lock's context: %v", st.unlocked)
	}
	if n := len(locker.taken); n < 7 || slices.ContainsFunc(locker.taken, func(id string) bool { return id != "s1" }) {
		t.Errorf("locks taken: %v; want s1's for each of 5 hops, the settling and the close", locker.taken)
	}
}

// lockWaitingStore is a store that takes a session's lock with its read,
// as PostgreSQL's does, and finds the lock of the sessions in held taken
// by someone else: their read waits until its context ends.
type lockWaitingStore struct {
	*memStore
	held map[string]bool
}

func (s *lockWaitingStore) Session(ctx context.Context, id string) (*link.SessionRecord, error) {
	if locked, _ := ctx.Value(heldKey{}).(string); locked == id && s.held[id] {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.memStore.Session(ctx, id)
}

func TestContinuingASessionWhoseLockIsHeldElsewhereSaysBusyAndKeepsTheOffer(t *testing.T) {
	r := newRig(t, func(c *Config, _ *sandbox.Options) {
		c.Locker = &lockRecorder{}
		c.HopBudget = 100 * time.Millisecond
	})
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1") // a bank chosen: resumable
	r.clock.Advance(time.Minute)
	r.must(t, "b", "+234801", "") // the offer to continue
	st := &lockWaitingStore{memStore: r.store, held: map[string]bool{"a": true}}
	r.engine = r.restart(st) // another instance holds a's lock (settling its work, say)
	if got := r.must(t, "b", "+234801", inputContinue); !strings.Contains(got.Text, en(textBusy)) {
		t.Fatalf("continue while a's lock is held elsewhere = %q, want %q", got.Text, en(textBusy))
	}
	st.held["a"] = false
	if got := r.must(t, "b", "+234801", inputContinue+"*"+inputContinue); strings.Contains(got.Text, en(textBusy)) {
		t.Fatalf("continue once the lock is free = %q, still busy", got.Text)
	}
}

// leaseLog is a Leases that records what is asked of it.
type leaseLog struct {
	mu              sync.Mutex
	holds, releases int
}

func (l *leaseLog) Hold(context.Context, string, string, time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds++
	return true, nil
}

func (l *leaseLog) Release(context.Context, string, string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releases++
	return nil
}

func TestWorkTakesALeaseOnlyWhenItOutlivesItsHop(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		leased bool
	}{
		{"a login answered within the hop", "user_good", false},
		{"a login that outlives the hop", "user_slow", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leases := &leaseLog{}
			r := newRig(t, slowBank(300*time.Millisecond, 50*time.Millisecond), func(c *Config, _ *sandbox.Options) {
				c.Leases, c.LeaseTTL = leases, time.Minute
			})
			for _, transcript := range []string{"", "1", "1*" + tt.user, "1*" + tt.user + "*pass_good"} {
				r.must(t, "s1", "+234801", transcript)
			}
			r.drain(t)
			leases.mu.Lock()
			defer leases.mu.Unlock()
			if got := leases.holds > 0; got != tt.leased {
				t.Fatalf("lease taken %d times, want taken: %v", leases.holds, tt.leased)
			}
			if tt.leased && leases.releases == 0 {
				t.Error("the lease of the settled work was never let go")
			}
			if !tt.leased && leases.releases != 0 {
				t.Errorf("%d releases of a lease never taken", leases.releases)
			}
		})
	}
}
