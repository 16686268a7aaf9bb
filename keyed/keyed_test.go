package keyed_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ussdlink/ussdlink/keyed"
)

// within fails the test unless done is closed within a generous bound: it
// catches a lock that never comes instead of hanging the run.
func within(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not finish", what)
	}
}

func TestOneKeyIsHeldByOneAtATime(t *testing.T) {
	tests := []struct {
		name       string
		goroutines int
		rounds     int
		lock       func(m *keyed.Mutex, key string) func()
	}{
		{name: "Lock", goroutines: 32, rounds: 200, lock: func(m *keyed.Mutex, key string) func() { return m.Lock(key) }},
		{name: "LockContext", goroutines: 32, rounds: 200, lock: func(m *keyed.Mutex, key string) func() {
			unlock, err := m.LockContext(context.Background(), key)
			if err != nil {
				panic(err)
			}
			return unlock
		}},
		{name: "TryLock until taken", goroutines: 8, rounds: 50, lock: func(m *keyed.Mutex, key string) func() {
			for {
				if unlock, ok := m.TryLock(key); ok {
					return unlock
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m keyed.Mutex
			var inside atomic.Int32
			counter := 0 // unsynchronised but for the lock: -race catches a breach
			var wg sync.WaitGroup
			for range tt.goroutines {
				wg.Go(func() {
					for range tt.rounds {
						unlock := tt.lock(&m, "session-1")
						if n := inside.Add(1); n != 1 {
							t.Errorf("%d holders of one key", n)
						}
						counter++
						inside.Add(-1)
						unlock()
					}
				})
			}
			wg.Wait()
			if want := tt.goroutines * tt.rounds; counter != want {
				t.Errorf("counter = %d, want %d", counter, want)
			}
			if n := m.Len(); n != 0 {
				t.Errorf("%d keys left after every lock was let go", n)
			}
		})
	}
}

func TestDifferentKeysNeverWaitOnEachOther(t *testing.T) {
	t.Run("one goroutine holds many keys at once", func(t *testing.T) {
		// With a fixed array of striped mutexes, two of these keys would
		// share a slot and the second Lock would deadlock.
		var m keyed.Mutex
		var unlocks []func()
		for i := range 1000 {
			unlocks = append(unlocks, m.Lock("phone-"+strconv.Itoa(i)))
		}
		if n := m.Len(); n != 1000 {
			t.Errorf("Len = %d while 1000 keys are held", n)
		}
		for _, unlock := range unlocks {
			unlock()
		}
		if n := m.Len(); n != 0 {
			t.Errorf("%d keys left after every lock was let go", n)
		}
	})
	t.Run("a held key does not hold up another goroutine's key", func(t *testing.T) {
		var m keyed.Mutex
		unlockA := m.Lock("A")
		defer unlockA()
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Lock("B")()
		}()
		within(t, done, "Lock(B) while A is held")
	})
}

func TestTryLock(t *testing.T) {
	tests := []struct {
		name   string
		held   string // a key held during the attempt; empty: none
		key    string
		wantOK bool
	}{
		{name: "a free key is taken", key: "A", wantOK: true},
		{name: "a held key is refused", held: "A", key: "A", wantOK: false},
		{name: "another key is taken while one is held", held: "A", key: "B", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m keyed.Mutex
			held := 0
			if tt.held != "" {
				defer m.Lock(tt.held)()
				held = 1
			}
			unlock, ok := m.TryLock(tt.key)
			if ok != tt.wantOK || (unlock != nil) != tt.wantOK {
				t.Fatalf("TryLock = (unlock set %v, %v), want ok %v", unlock != nil, ok, tt.wantOK)
			}
			if ok {
				if n := m.Len(); n != held+1 {
					t.Errorf("Len = %d while taken, want %d", n, held+1)
				}
				unlock()
			}
			if n := m.Len(); n != held {
				t.Errorf("Len = %d after the attempt, want %d", n, held)
			}
		})
	}
}

func TestLockContext(t *testing.T) {
	cancelled := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	expired := func() context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name    string
		held    bool // the key is held by another during the attempt
		ctx     func() context.Context
		wantErr error
	}{
		{name: "a free key is taken", ctx: context.Background},
		{name: "a free key is taken even with an ended context", ctx: cancelled},
		{name: "a held key is given up when the context is cancelled", held: true, ctx: cancelled, wantErr: context.Canceled},
		{name: "a held key is given up at the deadline", held: true, ctx: expired, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m keyed.Mutex
			held := 0
			if tt.held {
				defer m.Lock("session-1")()
				held = 1
			}
			unlock, err := m.LockContext(tt.ctx(), "session-1")
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("LockContext error = %v, want %v", err, tt.wantErr)
			}
			if (unlock != nil) != (err == nil) {
				t.Fatalf("unlock set %v with error %v", unlock != nil, err)
			}
			if unlock != nil {
				unlock()
			}
			if n := m.Len(); n != held {
				t.Errorf("Len = %d after the attempt, want %d", n, held)
			}
		})
	}
}

func TestLockContextCancelledWhileWaiting(t *testing.T) {
	var m keyed.Mutex
	unlock := m.Lock("session-1")
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		unlock, err := m.LockContext(ctx, "session-1")
		if err == nil {
			unlock()
		}
		errs <- err
	}()
	cancel()
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("LockContext error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LockContext did not return when its context was cancelled")
	}
	if n := m.Len(); n != 1 {
		t.Errorf("Len = %d with one holder left, want 1", n)
	}
}

func TestAWaiterGetsTheLockWhenItIsLetGo(t *testing.T) {
	var m keyed.Mutex
	unlock := m.Lock("session-1")
	got := make(chan struct{})
	go func() {
		unlock, err := m.LockContext(context.Background(), "session-1")
		if err != nil {
			t.Errorf("LockContext: %v", err)
			close(got)
			return
		}
		close(got)
		unlock()
	}()
	select {
	case <-got:
		t.Fatal("the waiter got the lock while it was held")
	default:
	}
	unlock()
	within(t, got, "the waiter")
}

func TestAKeyOverAReusedBufferIsKeptAsItWas(t *testing.T) {
	// Fiber's strings point into request buffers reused once the request is
	// answered, which may be while another holder still waits on the key.
	buf := []byte("session-A")
	var m keyed.Mutex
	unlock := m.Lock(unsafe.String(&buf[0], len(buf)))
	copy(buf, "session-B")
	if _, ok := m.TryLock("session-A"); ok {
		t.Error("session-A was taken while held")
	}
	unlockB, ok := m.TryLock("session-B")
	if !ok {
		t.Fatal("session-B was refused: the held key changed with its buffer")
	}
	unlockB()
	unlock()
	if n := m.Len(); n != 0 {
		t.Errorf("%d keys left after every lock was let go", n)
	}
}

func TestUnlockTwicePanics(t *testing.T) {
	var m keyed.Mutex
	unlock := m.Lock("A")
	unlock()
	defer func() {
		if recover() == nil {
			t.Error("a second unlock did not panic")
		}
	}()
	unlock()
}

func BenchmarkLock(b *testing.B) {
	b.Run("distinct keys in parallel", func(b *testing.B) {
		var m keyed.Mutex
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := "session-" + strconv.FormatInt(next.Add(1), 10)
			for pb.Next() {
				m.Lock(key)()
			}
		})
	})
	b.Run("one key in parallel", func(b *testing.B) {
		var m keyed.Mutex
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Lock("session-1")()
			}
		})
	})
	b.Run("striped array, distinct keys in parallel", func(b *testing.B) {
		// What keyed replaces, for comparison: cheaper, but two keys sharing
		// a slot wait out each other's whole turn.
		var locks [64]sync.Mutex
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			mu := &locks[next.Add(1)%int64(len(locks))]
			for pb.Next() {
				mu.Lock()
				mu.Unlock()
			}
		})
	})
}
