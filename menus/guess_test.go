package menus

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// guessRig is an engine whose store's ReserveAttempt is held in the test's
// hands, and whose Mono tells the test what it is asked, as it is asked.
type guessRig struct {
	*rig
	reserve  func(ctx context.Context) bool // run inside ReserveAttempt; false refuses the guess
	mu       sync.Mutex
	asked    []string       // Mono's operations, in the order they came
	reserved bool           // ReserveAttempt has answered
	early    []string       // logins Mono was sent before their guess was reserved
	opened   chan struct{}  // closed once Mono has answered the first session
	once     sync.Once      // closes opened
	store    *guessingStore // the rig's store, gated
}

// guessingStore is the rig's memStore with ReserveAttempt gated by the test.
type guessingStore struct {
	*memStore
	g *guessRig
}

func (s *guessingStore) ReserveAttempt(ctx context.Context, phone string, since, at time.Time, max int) (string, bool, error) {
	if !s.g.reserve(ctx) {
		return "", false, nil
	}
	key, ok, err := s.memStore.ReserveAttempt(ctx, phone, since, at, max)
	s.g.mu.Lock()
	s.g.reserved = true
	s.g.mu.Unlock()
	return key, ok, err
}

func newGuessRig(t *testing.T, reserve func(g *guessRig, ctx context.Context) bool) *guessRig {
	t.Helper()
	g := &guessRig{opened: make(chan struct{})}
	g.reserve = func(ctx context.Context) bool { return reserve(g, ctx) }
	clock := &fakeClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_rig", Now: clock.Now})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		g.mu.Lock()
		g.asked = append(g.asked, op)
		if op == sandbox.OpLogin && !g.reserved {
			g.early = append(g.early, op)
		}
		g.mu.Unlock()
		sb.ServeHTTP(w, r)
		if op == sandbox.OpSession {
			g.once.Do(func() { close(g.opened) })
		}
	}))
	t.Cleanup(srv.Close)
	client := mono.NewClient("test_sk_rig", mono.WithBaseURL(srv.URL), mono.WithAppID("app"), mono.WithRetry(1, 0))
	g.store = &guessingStore{memStore: newMemStore(), g: g}
	g.rig = &rig{store: g.store.memStore, sb: sb, clock: clock, client: client, cfg: Config{TranscriptKey: []byte("k")}}
	g.engine = NewEngine(g.cfg, g.store, client, clock.Now, zerolog.Nop())
	return g
}

// logIn dials, picks the first bank and types the sandbox's good login,
// and returns the login's reply.
func (g *guessRig) logIn(t *testing.T) link.Reply {
	t.Helper()
	g.must(t, "s1", "+234801", "")
	g.must(t, "s1", "+234801", "1")
	g.must(t, "s1", "+234801", "1*user_good")
	return g.must(t, "s1", "+234801", "1*user_good*pass_good")
}

// monoAsked is what Mono was asked, in order, once the engine's work is done.
func (g *guessRig) monoAsked(t *testing.T) (asked, early []string) {
	t.Helper()
	g.drain(t)
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.asked...), append([]string(nil), g.early...)
}

func TestALoginOpensItsMonoSessionWhileItsGuessIsReserved(t *testing.T) {
	g := newGuessRig(t, func(g *guessRig, ctx context.Context) bool {
		// The reservation stands only once Mono has opened the session:
		// a login that reserved first and opened the session after would
		// wait here for ever, and fail.
		select {
		case <-g.opened:
			return true
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Second):
			return false
		}
	})
	got := g.logIn(t)
	if !strings.Contains(got.Text, "is linked") {
		t.Fatalf("reply = %+v, want the link made (the session was not opened while the guess was reserved)", got)
	}
	asked, early := g.monoAsked(t)
	if len(early) > 0 {
		t.Errorf("Mono was sent %v before the guess was reserved", early)
	}
	if i := indexOf(asked, sandbox.OpLogin); i < 0 || indexOf(asked, sandbox.OpSession) > i {
		t.Errorf("Mono was asked %v: want a session, then the login", asked)
	}
}

func TestALoginWhoseGuessIsRefusedSendsTheBankNothing(t *testing.T) {
	g := newGuessRig(t, func(g *guessRig, ctx context.Context) bool {
		// Refused once the session is open, as when another session of
		// the phone spent its last guess between its dial and this login.
		select {
		case <-g.opened:
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		return false
	})
	got := g.logIn(t)
	if want := en(textLocked); !strings.Contains(got.Text, firstLine(want)) || !got.End {
		t.Errorf("reply = %+v, want the locked-out screen", got)
	}
	asked, _ := g.monoAsked(t)
	if indexOf(asked, sandbox.OpLogin) >= 0 {
		t.Errorf("Mono was asked %v: a refused guess must not reach the bank", asked)
	}
	if s := g.store.stored(t, "s1"); s.Pending != nil || s.Reason != ReasonLocked {
		t.Errorf("stored session: pending %+v, reason %q; want no work, locked", s.Pending, s.Reason)
	}
}

// indexOf is the index of the first v in s, or -1.
func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// firstLine is text up to its first line break.
func firstLine(text string) string {
	line, _, _ := strings.Cut(text, "\n")
	return line
}

func TestALoginWhoseReservationPanicsSendsTheBankNothingAndLeavesNoWorkWaiting(t *testing.T) {
	g := newGuessRig(t, func(g *guessRig, ctx context.Context) bool {
		<-g.opened
		panic("the store broke")
	})
	g.must(t, "s1", "+234801", "")
	g.must(t, "s1", "+234801", "1")
	g.must(t, "s1", "+234801", "1*user_good")
	func() {
		defer func() { recover() }() // the server's recovery answers the callback
		g.at(t, "s1", "+234801", "1*user_good*pass_good")
	}()
	asked, _ := g.monoAsked(t) // drains the engine's work: none may wait on the reservation
	if indexOf(asked, sandbox.OpLogin) >= 0 {
		t.Errorf("Mono was asked %v: a guess whose reservation failed must not reach the bank", asked)
	}
}
