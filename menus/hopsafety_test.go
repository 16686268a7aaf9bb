package menus

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
)

func TestConcurrentDuplicateHopsMakeOneTransition(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_good")
	const copies = 8
	replies := make([]link.Reply, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = r.must(t, "s1", "+234801", "1*user_good*pass_good")
		}()
	}
	wg.Wait()
	for i, got := range replies {
		if shown(got) != shown(replies[0]) {
			t.Errorf("copy %d replied %+v, copy 0 %+v", i, got, replies[0])
		}
	}
	if got := r.sb.Calls("login"); got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
	if got := len(r.store.links); got != 1 {
		t.Errorf("links stored = %d, want 1", got)
	}
}

func TestSlowBankShowsWaitingScreenThenOutcome(t *testing.T) {
	r := newRig(t, slowBank(600*time.Millisecond, 150*time.Millisecond))
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_slow")
	start := time.Now()
	wait := r.must(t, "s1", "+234801", "1*user_slow*pass_good")
	if took := time.Since(start); took > 150*time.Millisecond+100*time.Millisecond {
		t.Errorf("hop took %v with a 150ms budget", took)
	}
	if wait.End || !strings.Contains(wait.Text, "still answering") || !strings.Contains(wait.Text, "1. Check again") {
		t.Fatalf("reply while the bank is slow = %+v, want the waiting screen", wait)
	}
	// Checking again while the bank is still answering shows the same screen.
	again := r.must(t, "s1", "+234801", "1*user_slow*pass_good*1")
	if again.End || !strings.Contains(again.Text, "still answering") {
		t.Fatalf("check while still slow = %+v", again)
	}
	r.drain(t)
	s := r.store.stored(t, "s1")
	if s.State != StateLinked || !s.Unseen || len(r.store.links) != 1 {
		t.Fatalf("after the bank answered: state %s unseen %v links %d; want the link stored durably", s.State, s.Unseen, len(r.store.links))
	}
	if len(s.Answers) != 0 {
		t.Errorf("answers kept after the background login: %v", s.Answers)
	}
	done := r.must(t, "s1", "+234801", "1*user_slow*pass_good*1*1")
	if !done.End || !strings.Contains(done.Text, "is linked") {
		t.Fatalf("next hop = %+v, want the success screen", done)
	}
	if got := r.sb.Calls("login"); got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
}

func TestSlowBankAnsweringWithinTheBudgetNeedsNoWaitingScreen(t *testing.T) {
	r := newRig(t, slowBank(50*time.Millisecond, 2*time.Second))
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_slow")
	got := r.must(t, "s1", "+234801", "1*user_slow*pass_good")
	if !strings.Contains(got.Text, "is linked") {
		t.Fatalf("reply = %+v, want linked straight away", got)
	}
}

func TestExitWhileWaitingStillKeepsALinkMonoMade(t *testing.T) {
	r := newRig(t, slowBank(300*time.Millisecond, 100*time.Millisecond))
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_slow")
	r.must(t, "s1", "+234801", "1*user_slow*pass_good")
	bye := r.must(t, "s1", "+234801", "1*user_slow*pass_good*0")
	if !bye.End || bye.Text != en(textGoodbye) {
		t.Fatalf("exit while waiting = %+v", bye)
	}
	r.drain(t)
	if got := len(r.store.links); got != 1 {
		t.Errorf("links = %d: the account Mono linked after the exit was lost", got)
	}
	if s := r.store.stored(t, "s1"); s.State != StateEnded || s.Reason != ReasonExit {
		t.Errorf("session = %s/%s, want it still ended by the exit", s.State, s.Reason)
	}
}

func TestRedialAfterADropOffersToContinue(t *testing.T) {
	r := newRig(t)
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1")
	r.must(t, "a", "+234801", "1*user_good")
	// The network drops the session; the user dials again a minute later.
	r.clock.Advance(time.Minute)
	offer := r.must(t, "b", "+234801", "")
	if !strings.Contains(offer.Text, "You were linking your GTBank account") || !strings.Contains(offer.Text, "1. Continue") || !strings.Contains(offer.Text, "2. Start over") {
		t.Fatalf("redial = %+v, want the offer to continue", offer)
	}
	next := r.must(t, "b", "+234801", "1")
	if !strings.Contains(next.Text, "Password") {
		t.Fatalf("continue = %+v, want the password prompt where the user stopped", next)
	}
	done := r.must(t, "b", "+234801", "1*pass_good")
	if !strings.Contains(done.Text, "is linked") {
		t.Fatalf("reply = %+v", done)
	}
	if a := r.store.stored(t, "a"); a.State != StateEnded || a.Reason != ReasonResumed || len(a.Answers) != 0 {
		t.Errorf("dropped session = %s/%s answers %v, want ended as resumed without answers", a.State, a.Reason, a.Answers)
	}
}

func TestResumeDropsSecretsPastTheirLifetime(t *testing.T) {
	r := newRig(t)
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1")
	r.must(t, "a", "+234801", "1*user_good")
	r.clock.Advance(3 * time.Minute) // past the 2m secret lifetime, within the 10m window
	r.must(t, "b", "+234801", "")
	next := r.must(t, "b", "+234801", "1")
	if !strings.Contains(next.Text, en(textRetype)) || !strings.Contains(next.Text, "UserID") {
		t.Fatalf("continue with stale secrets = %+v, want the form from its first field", next)
	}
	if s := r.store.stored(t, "b"); len(s.Answers) != 0 {
		t.Errorf("stale answers carried over: %v", s.Answers)
	}
}

func TestResumeOfferChoices(t *testing.T) {
	cases := []struct {
		name    string
		advance time.Duration
		input   string
		want    string
	}{
		{name: "start over shows the banks", advance: time.Minute, input: "2", want: "Choose bank"},
		{name: "0 on the offer ends politely", advance: time.Minute, input: "0", want: en(textGoodbye)},
		{name: "an invalid choice re-shows the offer", advance: time.Minute, input: "7", want: en(textInvalidChoice)},
		{name: "no offer after the resume window", advance: 11 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.must(t, "a", "+234801", "")
			r.must(t, "a", "+234801", "1")
			r.clock.Advance(tc.advance)
			first := r.must(t, "b", "+234801", "")
			if tc.input == "" {
				if !strings.Contains(first.Text, "Choose bank") {
					t.Fatalf("redial after the window = %+v, want the banks", first)
				}
				return
			}
			got := r.must(t, "b", "+234801", tc.input)
			if !strings.Contains(got.Text, tc.want) {
				t.Fatalf("reply = %+v, want %q", got, tc.want)
			}
		})
	}
}

func TestFinishedSessionIsNotOfferedAgain(t *testing.T) {
	r := newRig(t)
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1")
	r.must(t, "a", "+234801", "1*user_good")
	r.must(t, "a", "+234801", "1*user_good*pass_good")
	if got := r.must(t, "b", "+234801", ""); !strings.Contains(got.Text, "Choose bank") {
		t.Fatalf("dial after a link = %+v, want the banks", got)
	}
}

func TestOutcomeSettledAfterAHangUpIsShownOnRedial(t *testing.T) {
	r := newRig(t, slowBank(300*time.Millisecond, 100*time.Millisecond))
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1")
	r.must(t, "a", "+234801", "1*user_slow")
	r.must(t, "a", "+234801", "1*user_slow*pass_good") // waiting; then the user hangs up
	r.drain(t)
	r.must(t, "b", "+234801", "")
	got := r.must(t, "b", "+234801", "1")
	if !got.End || !strings.Contains(got.Text, "is linked") {
		t.Fatalf("continue = %+v, want the link made while away", got)
	}
	if got := r.sb.Calls("login"); got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
}

func TestRestartWhileWaiting(t *testing.T) {
	cases := []struct {
		name    string
		advance time.Duration
		want    string
		logins  int
	}{
		{name: "fresh secrets run the step again", want: "is linked", logins: 2},
		{name: "stale secrets ask again", advance: 150 * time.Second, want: en(textNoAnswer), logins: 1}, // past the 2m secret lifetime, within the 180s session TTL
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, slowBank(300*time.Millisecond, 100*time.Millisecond))
			r.must(t, "s1", "+234801", "")
			r.must(t, "s1", "+234801", "1")
			r.must(t, "s1", "+234801", "1*user_slow")
			r.must(t, "s1", "+234801", "1*user_slow*pass_good") // waiting
			// The process is killed: a new engine starts on what was on disk.
			old := r.engine
			disk := r.store.snapshot()
			r.store, r.engine = disk, r.restart(disk)
			r.clock.Advance(tc.advance)
			got := r.must(t, "s1", "+234801", "1*user_slow*pass_good*1")
			if strings.Contains(got.Text, "still answering") {
				r.drain(t)
				got = r.must(t, "s1", "+234801", "1*user_slow*pass_good*1*1")
			}
			if !strings.Contains(got.Text, tc.want) {
				t.Fatalf("after the restart = %+v, want %q", got, tc.want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			old.Drain(ctx)
			if got := r.sb.Calls("login"); got != tc.logins {
				t.Errorf("logins = %d, want %d", got, tc.logins)
			}
		})
	}
}

// refusingMono answers every call with Mono's 401.
type refusingMono struct{ Mono }

func (refusingMono) Institutions(context.Context) ([]mono.Institution, error) {
	return nil, &mono.Error{Op: "institutions", Status: 401, Message: "invalid secret key"}
}

func TestRefusedKeyIsLoggedLoudlyOnce(t *testing.T) {
	var logs bytes.Buffer
	e := NewEngine(Config{TranscriptKey: []byte("k")}, newMemStore(), refusingMono{}, time.Now, zerolog.New(&logs))
	for _, id := range []string{"a", "b", "c"} {
		got, err := e.Handle(context.Background(), link.Hop{SessionID: id, Phone: "+234801", Cumulative: true})
		if err != nil || !got.End || got.Text != en(textUnavailable) {
			t.Fatalf("hop = %+v, %v; want the service unavailable END", got, err)
		}
	}
	if n := strings.Count(logs.String(), `"level":"error"`); n != 1 || !strings.Contains(logs.String(), "Mono refused the secret key") {
		t.Errorf("loud 401 log lines = %d, want 1:\n%s", n, logs.String())
	}
}

func TestExpiredMonoSessionLeadsToANewLogin(t *testing.T) {
	r := newRig(t)
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1")
	r.must(t, "a", "+234801", "1*user_otp")
	if got := r.must(t, "a", "+234801", "1*user_otp*pass_good"); !strings.Contains(got.Text, "OTP") {
		t.Fatalf("reply = %+v, want the OTP prompt", got)
	}
	// The user drops and comes back near the end of the resume window:
	// Mono's session (ten minutes) has expired meanwhile.
	r.clock.Advance(9*time.Minute + 50*time.Second)
	r.must(t, "b", "+234801", "")
	r.must(t, "b", "+234801", "1")
	got := r.must(t, "b", "+234801", "1*123456")
	if !strings.Contains(got.Text, en(textBankSessionExpired)) || !strings.Contains(got.Text, "UserID") {
		t.Fatalf("OTP on an expired Mono session = %+v, want a new login", got)
	}
	if n := r.sb.Calls("commit"); n != 0 {
		t.Errorf("commits sent on an expired Mono session = %d", n)
	}
	r.must(t, "b", "+234801", "1*123456*user_otp")
	r.must(t, "b", "+234801", "1*123456*user_otp*pass_good")
	done := r.must(t, "b", "+234801", "1*123456*user_otp*pass_good*123456")
	if !strings.Contains(done.Text, "is linked") {
		t.Fatalf("reply = %+v", done)
	}
	if n := r.sb.Calls("session"); n != 2 {
		t.Errorf("mono sessions = %d, want 2 (a new one for the new login)", n)
	}
	if s := r.store.stored(t, "b"); s.Failures != 0 {
		t.Errorf("an expired bank session counted as %d failures", s.Failures)
	}
}

func TestCrossedResumesDoNotDeadlock(t *testing.T) {
	r := newRig(t, slowBank(time.Second, 500*time.Millisecond)) // a short hop budget bounds the claim
	// Phone 1 resumes session p from a new session a; phone 2 resumes d
	// from c, at the same moment. Loading the resuming sessions is slow, so
	// both hops hold their own lock while they claim another's: a claim
	// waits no longer than the hop budget.
	p, a, d, c := "p", "a", "d", "c"
	for _, pair := range [][2]string{{p, "+234801"}, {d, "+234802"}} {
		r.must(t, pair[0], pair[1], "")
		r.must(t, pair[0], pair[1], "1")
	}
	r.must(t, a, "+234801", "")
	r.must(t, c, "+234802", "")
	r.store.slow = map[string]time.Duration{a: 200 * time.Millisecond, c: 200 * time.Millisecond}
	done := make(chan link.Reply, 2)
	go func() { done <- r.must(t, a, "+234801", "1") }()
	go func() { done <- r.must(t, c, "+234802", "1") }()
	for range 2 {
		select {
		case rep := <-done:
			if !strings.Contains(rep.Text, "UserID") && !strings.Contains(rep.Text, en(textBusy)) {
				t.Errorf("resume = %+v, want the form or a busy notice", rep)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("crossed resumes deadlocked")
		}
	}
}

func TestResumedOutcomeDoesNotSwallowTheNextInput(t *testing.T) {
	r := newRig(t, slowBank(300*time.Millisecond, 100*time.Millisecond))
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1")
	r.must(t, "a", "+234801", "1*user_slow")
	r.must(t, "a", "+234801", "1*user_slow*pass_good") // waiting, then the user hangs up
	r.drain(t)
	r.must(t, "b", "+234801", "")
	linked := r.must(t, "b", "+234801", "1")
	if !strings.Contains(linked.Text, "is linked") {
		t.Fatalf("continue = %+v", linked)
	}
	// The outcome has been seen: the next dial is a fresh start.
	if got := r.must(t, "c", "+234801", ""); !strings.Contains(got.Text, "Choose bank") {
		t.Fatalf("dial after seeing the outcome = %+v, want the banks", got)
	}
}

func TestStartingOverKeepsALinkMonoIsStillMaking(t *testing.T) {
	r := newRig(t, slowBank(300*time.Millisecond, 100*time.Millisecond))
	r.must(t, "a", "+234801", "")
	r.must(t, "a", "+234801", "1")
	r.must(t, "a", "+234801", "1*user_slow")
	r.must(t, "a", "+234801", "1*user_slow*pass_good") // waiting; the user hangs up
	r.must(t, "b", "+234801", "")
	if got := r.must(t, "b", "+234801", "2"); !strings.Contains(got.Text, "Choose bank") {
		t.Fatalf("start over = %+v", got)
	}
	r.drain(t)
	if got := len(r.store.links); got != 1 {
		t.Errorf("links = %d: the account Mono linked after starting over was lost", got)
	}
}

// slowInstitutions delays the institution list.
type slowInstitutions struct {
	Mono
	delay time.Duration
	calls atomic.Int32
}

func (s *slowInstitutions) Institutions(ctx context.Context) ([]mono.Institution, error) {
	s.calls.Add(1)
	time.Sleep(s.delay)
	return s.Mono.Institutions(ctx)
}

func TestSlowBankListHoldsNoHopPastItsBudget(t *testing.T) {
	r := newRig(t)
	slow := &slowInstitutions{Mono: r.client, delay: 400 * time.Millisecond}
	r.cfg.HopBudget = 150 * time.Millisecond
	e := NewEngine(r.cfg, r.store, slow, r.clock.Now, zerolog.Nop())
	start := time.Now()
	first, err := e.Handle(context.Background(), link.Hop{SessionID: "a", Phone: "+234801", Cumulative: true})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("first hop took %v with a 150ms budget", took)
	}
	if !first.End || first.Text != en(textNoBanks) {
		t.Errorf("first hop = %+v, want the polite END", first)
	}
	// The fetch goes on and fills the cache: wait for it, as a hop without
	// a budget would.
	if _, err := e.banks.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
	second, err := e.Handle(context.Background(), link.Hop{SessionID: "b", Phone: "+234802", Cumulative: true})
	if err != nil || !strings.Contains(second.Text, "Choose bank") {
		t.Fatalf("second dial = %+v, %v; want the banks", second, err)
	}
	if n := slow.calls.Load(); n != 1 {
		t.Errorf("institution fetches = %d, want 1 (one at a time, then cached)", n)
	}
}

func TestDrainLeavesInterruptedWorkPendingForTheRestart(t *testing.T) {
	r := newRig(t, slowBank(1500*time.Millisecond, 100*time.Millisecond))
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_slow")
	r.must(t, "s1", "+234801", "1*user_slow*pass_good") // waiting on a 1.5s bank
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r.engine.Drain(ctx); err == nil {
		t.Fatal("Drain returned before the slow work ended")
	}
	s := r.store.stored(t, "s1")
	if s.State != StateWaiting || s.Pending == nil || s.Reason != "" {
		t.Fatalf("after an interrupted drain: %s/%s pending %v; want still waiting", s.State, s.Reason, s.Pending)
	}
	// After the restart the step runs again while what was typed is fresh.
	r.engine = r.restart(r.store)
	got := r.must(t, "s1", "+234801", "1*user_slow*pass_good*1")
	if !strings.Contains(got.Text, "still answering") {
		t.Fatalf("after the restart = %+v, want the step running again", got)
	}
	if n := r.sb.Calls("login"); n != 2 {
		t.Errorf("logins = %d, want 2 (the interrupted one, then again)", n)
	}
}

func TestNoWorkStartsOnceDraining(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_good")
	if err := r.engine.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := r.must(t, "s1", "+234801", "1*user_good*pass_good")
	if !got.End || r.sb.Calls("login") != 0 {
		t.Errorf("a hop while draining = %+v with %d logins; want a polite END and no Mono call", got, r.sb.Calls("login"))
	}
}

func TestAFormWhoseEarlierAnswersLapsedStartsAgain(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_good")
	if s := r.store.stored(t, "s1"); s.SealedUntil.IsZero() || !s.SealedUntil.Equal(s.AnswersAt.Add(2*time.Minute)) {
		t.Fatalf("sealed until %v, answers at %v: want the lifetime stamped", s.SealedUntil, s.AnswersAt)
	}
	r.store.answers["s1"] = nil // the sweeper erased them while the user was idle
	got := r.must(t, "s1", "+234801", "1*user_good*pass_good")
	if !strings.Contains(got.Text, en(textRetype)) || !strings.Contains(got.Text, "UserID") {
		t.Fatalf("reply = %+v, want the form from its first field", got)
	}
	if r.sb.Calls("login") != 0 {
		t.Errorf("a login was sent without the user name")
	}
}

func TestRepeatWindowCountsFromTheLastHop(t *testing.T) {
	r := newRig(t)
	hop := func(input string, first bool) link.Reply {
		t.Helper()
		rep, err := r.engine.Handle(context.Background(), link.Hop{SessionID: "lw", Phone: "233244000001", Input: input, New: first})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	hop("", true)
	page2 := hop("98", false)
	r.clock.Advance(time.Second)
	if got := hop("98", false); shown(got) != shown(page2) {
		t.Fatalf("the same input within the window = %q, want the repeat %q", got.Text, page2.Text)
	}
	// A background settle moves Updated; the window still counts from the hop.
	s := r.store.stored(t, "lw")
	r.clock.Advance(3 * time.Second)
	s.Updated = r.clock.Now()
	r.store.put(t, s)
	if got := hop("98", false); got == page2 {
		t.Fatalf("the same input after the window was taken for a repeat")
	}
}
