package menus

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// forgetfulRig is a rig whose client speaks api and whose Mono keeps its own
// clock, so Mono can forget a session before the expiresAt it gave.
func forgetfulRig(t *testing.T, api mono.API, monoClock *fakeClock) *rig {
	t.Helper()
	cfg := Config{TranscriptKey: []byte("k")}
	clock := &fakeClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_rig", Now: monoClock.Now})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	client := mono.NewClient("test_sk_rig", mono.WithBaseURL(srv.URL), mono.WithAppID("app"), mono.WithRetry(1, 0), mono.WithAPI(api))
	st := newMemStore()
	r := &rig{store: st, sb: sb, clock: clock, client: client, cfg: cfg}
	r.engine = r.restart(st)
	return r
}

// Mono's session lifetime is unstated (spec §3.1, §9): when Mono has
// forgotten a session, answering the bank's OTP on it is not the user's
// fault. v1 Mono says 404 and the user is sent to a new login; the v2 spec
// has Mono answer HTTP 400 / responseCode 400 ("Session not found or
// expired"), which the client classifies as the bank refusing the OTP:
// the correct OTP counts as a failure against the phone's lockout.
func TestAnOTPOnASessionMonoForgotIsNotAFailureOnEitherAPI(t *testing.T) {
	for _, api := range []mono.API{mono.V1, mono.V2} {
		t.Run(string(api), func(t *testing.T) {
			monoClock := &fakeClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
			r := forgetfulRig(t, api, monoClock)
			r.must(t, "a", "+234801", "")
			r.must(t, "a", "+234801", "1")
			r.must(t, "a", "+234801", "1*user_otp")
			if got := r.must(t, "a", "+234801", "1*user_otp*pass_good"); !strings.Contains(got.Text, "OTP") {
				t.Fatalf("reply = %+v, want the OTP prompt", got)
			}
			monoClock.Advance(11 * time.Minute) // Mono drops the session; the gateway's clock has not moved
			got := r.must(t, "a", "+234801", "1*user_otp*pass_good*123456")
			s := r.store.stored(t, "a")
			if s.Failures != 0 || strings.Contains(got.Text, en(textAnswerRejected)) {
				t.Errorf("the right OTP on a session Mono forgot: failures = %d, reply %q; want no failure", s.Failures, got.Text)
			}
			if n := len(r.store.failures["+234801"]); n != 0 {
				t.Errorf("lockout reservations kept = %d, want 0", n)
			}
		})
	}
}

// slowRelogin delays Mono's answer to a reauthorisation's login.
type slowRelogin struct {
	Mono
	delay time.Duration
}

func (s slowRelogin) Relogin(ctx context.Context, sessionID string, fields map[string]string) (*mono.Step, error) {
	time.Sleep(s.delay)
	return s.Mono.Relogin(context.WithoutCancel(ctx), sessionID, fields)
}

// A restart loses the answer to a reauthorisation's login, and by the time
// the user presses 1 the typed login has lapsed. Mono took the first
// relogin; the gateway asks for the login again and sends it on the same,
// spent reauthorisation session, and the bank's "not allowed" is counted
// as the user's wrong password. A reauthorisation needs nothing typed to
// start afresh (handlers.go: "a reauthorisation logs in afresh if it is
// lost"), so the lost relogin should open a new reauthorisation session.
func TestARestartLostReloginIsNotBlamedOnTheUser(t *testing.T) {
	monoClock := &fakeClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	r := forgetfulRig(t, mono.V2, monoClock)
	const phone = "+234801"
	r.must(t, "a", phone, "")
	r.must(t, "a", phone, "1")
	r.must(t, "a", phone, "1*user_relogin")
	if got := r.must(t, "a", phone, "1*user_relogin*pass_good"); !strings.Contains(got.Text, "is linked") {
		t.Fatalf("link = %+v", got)
	}
	account := r.store.links[0].AccountID
	now := r.clock.Now()
	r.store.invites["rea_1"] = &link.Invite{ID: "rea_1", Kind: link.InviteReauth, Phone: phone, AccountID: account,
		Status: link.StatusPending, Code: "4321", Created: now, Updated: now, Expires: now.Add(time.Hour)}

	r.cfg.HopBudget = 100 * time.Millisecond
	slow := NewEngine(r.cfg, r.store, slowRelogin{Mono: r.client, delay: 400 * time.Millisecond}, r.clock.Now, zerolog.Nop())
	r.engine = slow
	if got := r.must(t, "b", phone, ""); !strings.Contains(got.Text, "UserID") {
		t.Fatalf("reauth dial = %+v, want the bank's login again", got)
	}
	r.must(t, "b", phone, "user_relogin")
	r.must(t, "b", phone, "user_relogin*pass_good") // waiting on Mono's reauth login
	disk := r.store.snapshot()                      // with the invitations: what a killed process left on disk
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slow.Drain(ctx) // Mono takes the relogin; the killed process never records it
	r.store, r.engine = disk, r.restart(disk)
	r.clock.Advance(150 * time.Second) // past the 2m secret lifetime, within the session's
	monoClock.Advance(150 * time.Second)

	if got := r.must(t, "b", phone, "user_relogin*pass_good*1"); !strings.Contains(got.Text, "UserID") {
		t.Fatalf("after the restart = %+v, want the login asked again", got)
	}
	r.must(t, "b", phone, "user_relogin*pass_good*1*user_relogin")
	got := r.must(t, "b", phone, "user_relogin*pass_good*1*user_relogin*pass_good")
	if s := r.store.stored(t, "b"); s.Failures != 0 || strings.Contains(got.Text, en(textAnswerRejected)) {
		t.Errorf("the right login after a lost relogin: failures = %d, reply %q; want no failure", s.Failures, got.Text)
	}
	if n := r.sb.Calls(sandbox.OpReauthSession); n != 2 {
		t.Errorf("reauth sessions = %d, want 2: the relogin Mono may have taken needs a fresh one", n)
	}
}
