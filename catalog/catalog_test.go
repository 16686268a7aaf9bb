package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests drive Cache with a fake clock and a fetch that blocks until the
// test hands it a result, so every ordering is forced by channels: nothing
// sleeps and nothing asserts on elapsed time. Whether a Get waited is seen
// through watchCtx, whose Done is only consulted by a Get that waits for a
// fetch.

const (
	ttl     = time.Minute
	backoff = 10 * time.Second
)

var (
	errDown  = errors.New("mono down")
	errAgain = errors.New("mono still down")
)

// fakeClock is a settable clock; Cache reads it from its fetch goroutine too.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// result is what the test hands a blocked fetch.
type result struct {
	list []string
	err  error
}

// fakeFetch announces each call on started (with the context it was given)
// and then blocks until the test sends it a result, or its context ends.
type fakeFetch struct {
	started chan context.Context
	results chan result
}

func newFetch() *fakeFetch {
	return &fakeFetch{started: make(chan context.Context), results: make(chan result)}
}

func (f *fakeFetch) fetch(ctx context.Context) ([]string, error) {
	f.started <- ctx
	select {
	case r := <-f.results:
		return r.list, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("fake fetch: %w", ctx.Err())
	}
}

// watchCtx reports, by closing waiting, the first time its Done is asked
// for: Get only asks when it waits for a fetch.
type watchCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func watch(parent context.Context) *watchCtx {
	return &watchCtx{Context: parent, waiting: make(chan struct{})}
}

func (w *watchCtx) Done() <-chan struct{} {
	w.once.Do(func() { close(w.waiting) })
	return w.Context.Done()
}

func (w *watchCtx) waited() bool {
	select {
	case <-w.waiting:
		return true
	default:
		return false
	}
}

// harness is one cache under test with its fakes.
type harness struct {
	c      *Cache[[]string]
	clock  *fakeClock
	fetch  *fakeFetch
	failed chan error
}

func newHarness(base context.Context) *harness {
	h := &harness{clock: newClock(), fetch: newFetch(), failed: make(chan error, 16)}
	h.c = New(base, h.fetch.fetch, ttl, backoff, h.clock.now, func(err error) { h.failed <- err })
	return h
}

// underWay returns the channel of the fetch under way, nil if none. A fetch
// is marked under way synchronously by the Get that starts it.
func (h *harness) underWay() chan struct{} {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.c.fetching
}

// settle waits for the fetch under way, if any, to be done. Call it only
// once that fetch has been given its result.
func (h *harness) settle() {
	if ch := h.underWay(); ch != nil {
		<-ch
	}
}

// checkFailed checks that failed was told of want (nil: of nothing) since
// the last check.
func (h *harness) checkFailed(t *testing.T, want error) {
	t.Helper()
	select {
	case err := <-h.failed:
		if want == nil {
			t.Fatalf("failed told of %v, want no failure", err)
		}
		if !errors.Is(err, want) {
			t.Fatalf("failed told of %v, want %v", err, want)
		}
	default:
		if want != nil {
			t.Fatalf("failed not told of %v", want)
		}
	}
}

// getAtOnce calls Get and fails the test if Get waited for a fetch. The
// context is already cancelled, so a Get that waits returns at once anyway
// instead of hanging the test.
func (h *harness) getAtOnce(t *testing.T) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := watch(ctx)
	list, err := h.c.Get(w)
	if w.waited() {
		t.Fatalf("Get waited for a fetch (got %v, %v), want it to return at once", list, err)
	}
	return list, err
}

// mode is how a step's Get is expected to behave.
type mode int

const (
	// served: Get returns at once and no fetch starts.
	served mode = iota
	// refreshed: Get returns the list it has at once, and a fetch starts in
	// the background; it is given the step's result and awaited.
	refreshed
	// fetched: Get waits for a fetch it starts, which is given the step's
	// result.
	fetched
)

func (m mode) String() string {
	return [...]string{"served", "refreshed", "fetched"}[m]
}

// step is one Get after the clock is advanced.
type step struct {
	advance    time.Duration
	mode       mode
	result     result   // for refreshed and fetched: what the fetch returns
	want       []string // what Get returns
	wantErr    error    // what Get's error must wrap
	wantFailed error    // what failed must be told of by this step
}

func (h *harness) run(t *testing.T, i int, s step) {
	t.Helper()
	h.clock.advance(s.advance)
	var list []string
	var err error
	switch s.mode {
	case served:
		list, err = h.getAtOnce(t)
		if h.underWay() != nil {
			t.Fatalf("step %d (%v): a fetch started", i, s.mode)
		}
	case refreshed:
		list, err = h.getAtOnce(t)
		if h.underWay() == nil {
			t.Fatalf("step %d (%v): no fetch started", i, s.mode)
		}
		<-h.fetch.started
		h.fetch.results <- s.result
		h.settle()
	case fetched:
		type got struct {
			list []string
			err  error
		}
		done := make(chan got, 1)
		go func() {
			list, err := h.c.Get(context.Background())
			done <- got{list, err}
		}()
		select {
		case <-h.fetch.started:
		case g := <-done:
			t.Fatalf("step %d (%v): Get returned %v, %v without fetching", i, s.mode, g.list, g.err)
		}
		h.fetch.results <- s.result
		g := <-done
		list, err = g.list, g.err
	}
	if !errors.Is(err, s.wantErr) || (s.wantErr == nil) != (err == nil) {
		t.Fatalf("step %d (%v): Get error %v, want %v", i, s.mode, err, s.wantErr)
	}
	if !slices.Equal(list, s.want) {
		t.Fatalf("step %d (%v): Get list %v, want %v", i, s.mode, list, s.want)
	}
	h.checkFailed(t, s.wantFailed)
	if h.underWay() != nil {
		t.Fatalf("step %d (%v): a fetch is still under way", i, s.mode)
	}
}

var (
	listA = []string{"gtbank", "access"}
	listB = []string{"gtbank", "access", "kuda"}
)

func TestGetFetchesWhenDueAndOtherwiseServesWhatItHas(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "fresh list is served without a fetch",
			steps: []step{
				{mode: fetched, result: result{list: listA}, want: listA},
				{mode: served, want: listA},
				{advance: ttl - time.Nanosecond, mode: served, want: listA},
			},
		},
		{
			name: "stale list is served at once while its refresh runs, then the new one",
			steps: []step{
				{mode: fetched, result: result{list: listA}, want: listA},
				{advance: ttl, mode: refreshed, result: result{list: listB}, want: listA},
				{mode: served, want: listB},
				{advance: ttl - time.Nanosecond, mode: served, want: listB},
				{advance: time.Nanosecond, mode: refreshed, result: result{list: listA}, want: listB},
			},
		},
		{
			name: "failed first fetch returns its error and backs off",
			steps: []step{
				{mode: fetched, result: result{err: errDown}, wantErr: errDown, wantFailed: errDown},
				{mode: served, wantErr: errDown},
				{advance: backoff - time.Nanosecond, mode: served, wantErr: errDown},
				{advance: time.Nanosecond, mode: fetched, result: result{err: errAgain}, wantErr: errAgain, wantFailed: errAgain},
				{advance: backoff - time.Nanosecond, mode: served, wantErr: errAgain},
				{advance: time.Nanosecond, mode: fetched, result: result{list: listA}, want: listA},
				{advance: ttl - time.Nanosecond, mode: served, want: listA},
			},
		},
		{
			name: "failed refresh keeps serving the stale list and backs off",
			steps: []step{
				{mode: fetched, result: result{list: listA}, want: listA},
				{advance: ttl, mode: refreshed, result: result{err: errDown}, want: listA, wantFailed: errDown},
				{advance: backoff - time.Nanosecond, mode: served, want: listA},
				{advance: time.Nanosecond, mode: refreshed, result: result{list: listB}, want: listA},
				{mode: served, want: listB},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(context.Background())
			for i, s := range tt.steps {
				h.run(t, i, s)
			}
		})
	}
}

func TestConcurrentGetsWithoutAListShareOneFetch(t *testing.T) {
	for _, n := range []int{1, 2, 16} {
		t.Run(fmt.Sprint(n, " callers"), func(t *testing.T) {
			var calls atomic.Int32
			release := make(chan struct{})
			fetch := func(context.Context) ([]string, error) {
				calls.Add(1)
				<-release
				return listA, nil
			}
			c := New(context.Background(), fetch, ttl, backoff, newClock().now, nil)

			type got struct {
				list []string
				err  error
			}
			results := make(chan got, n)
			ctxs := make([]*watchCtx, n)
			for i := range ctxs {
				ctxs[i] = watch(context.Background())
				go func(ctx context.Context) {
					list, err := c.Get(ctx)
					results <- got{list, err}
				}(ctxs[i])
			}
			// Every caller is waiting for a fetch before any fetch can end.
			for _, w := range ctxs {
				<-w.waiting
			}
			close(release)
			for range n {
				g := <-results
				if g.err != nil || !slices.Equal(g.list, listA) {
					t.Errorf("Get = %v, %v, want %v, nil", g.list, g.err, listA)
				}
			}
			// Each Get returned only after the fetch it waited for ran, so
			// every such fetch is counted.
			if got := calls.Load(); got != 1 {
				t.Errorf("fetched %d times, want 1", got)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.fetching != nil {
				t.Errorf("a fetch is still under way")
			}
		})
	}
}

func TestCancelledWaitReturnsCtxErrorWhileFetchGoesOnToFillTheCache(t *testing.T) {
	h := newHarness(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watch(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := h.c.Get(w)
		errc <- err
	}()
	fetchCtx := <-h.fetch.started
	<-w.waiting
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get error %v, want context.Canceled", err)
	}
	if err := fetchCtx.Err(); err != nil {
		t.Fatalf("fetch context ended with its caller's: %v", err)
	}
	// The fetch is still blocked; releasing it fills the cache.
	h.fetch.results <- result{list: listA}
	h.settle()
	h.checkFailed(t, nil)
	h.run(t, 0, step{mode: served, want: listA})
}

func TestPrefetchStartsAFetchWhenDueWithoutWaiting(t *testing.T) {
	tests := []struct {
		name      string
		setup     []step
		advance   time.Duration
		wantFetch bool
		want      []string // what Get serves once any fetch is done
		wantErr   error
	}{
		{
			name:      "no list yet",
			wantFetch: true,
			want:      listB,
		},
		{
			name:      "stale list",
			setup:     []step{{mode: fetched, result: result{list: listA}, want: listA}},
			advance:   ttl,
			wantFetch: true,
			want:      listB,
		},
		{
			name:    "fresh list",
			setup:   []step{{mode: fetched, result: result{list: listA}, want: listA}},
			advance: ttl - time.Nanosecond,
			want:    listA,
		},
		{
			name:    "backing off",
			setup:   []step{{mode: fetched, result: result{err: errDown}, wantErr: errDown, wantFailed: errDown}},
			advance: backoff - time.Nanosecond,
			wantErr: errDown,
		},
		{
			name:      "backoff over",
			setup:     []step{{mode: fetched, result: result{err: errDown}, wantErr: errDown, wantFailed: errDown}},
			advance:   backoff,
			wantFetch: true,
			want:      listB,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(context.Background())
			for i, s := range tt.setup {
				h.run(t, i, s)
			}
			h.clock.advance(tt.advance)
			// The fetch blocks until it is given a result below, so
			// Prefetch returning proves it did not wait.
			h.c.Prefetch()
			if got := h.underWay() != nil; got != tt.wantFetch {
				t.Fatalf("fetch under way after Prefetch = %v, want %v", got, tt.wantFetch)
			}
			if tt.wantFetch {
				<-h.fetch.started
				h.fetch.results <- result{list: listB}
				h.settle()
			}
			h.checkFailed(t, nil)
			h.run(t, 0, step{mode: served, want: tt.want, wantErr: tt.wantErr})
		})
	}
}

type ctxKey struct{}

func TestFetchRunsUnderTheBaseContext(t *testing.T) {
	base, stop := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "owner"))
	defer stop()
	h := newHarness(base)

	caller, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watch(caller)
	errc := make(chan error, 1)
	go func() {
		_, err := h.c.Get(w)
		errc <- err
	}()
	fetchCtx := <-h.fetch.started
	if fetchCtx != base {
		t.Errorf("fetch given %v, want the base context", fetchCtx)
	}
	if got := fetchCtx.Value(ctxKey{}); got != "owner" {
		t.Errorf("fetch context value %v, want the base's %q", got, "owner")
	}

	// The caller giving up does not end the fetch.
	<-w.waiting
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get error %v, want context.Canceled", err)
	}
	if err := fetchCtx.Err(); err != nil {
		t.Fatalf("fetch context ended with its caller's: %v", err)
	}

	// The owner ending does: the fetch sees it and fails with it.
	stop()
	if err := fetchCtx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("fetch context error after base cancelled = %v, want context.Canceled", err)
	}
	h.settle()
	h.checkFailed(t, context.Canceled)
	h.run(t, 0, step{mode: served, wantErr: context.Canceled})
}

// A fetch that takes longer than the backoff to fail is still followed by
// the backoff: it counts from the failure, not from the start.
func TestSlowFailedFetchIsStillFollowedByBackoff(t *testing.T) {
	h := newHarness(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.c.Get(context.Background())
		errc <- err
	}()
	<-h.fetch.started
	h.clock.advance(backoff + 1) // the remote is slow, then fails
	h.fetch.results <- result{err: errDown}
	<-errc
	h.checkFailed(t, errDown)
	h.run(t, 0, step{mode: served, wantErr: errDown})
}
