package menus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/ussdlink/ussdlink/mono"
)

// Kinds of Mono work a session waits for.
const (
	workLogin   = "login"   // open a Mono session if needed, log in with the login form
	workCommit  = "commit"  // answer a 102 with the challenge form
	workAccount = "account" // answer a 101 with the chosen account
	workReauth  = "reauth"  // get a reauth token, open a session with it
)

// Pending is the Mono work a session is waiting for. It is stored, so that
// after a restart the gateway knows what was under way.
type Pending struct {
	Job     string    `json:"job"`
	Kind    string    `json:"kind"`
	Account int       `json:"account,omitempty"`
	Started time.Time `json:"started"`
	// Attempt is the guess at a secret reserved against the phone's
	// lockout for this work (a login, an OTP or answer), if any.
	Attempt string `json:"attempt,omitempty"`
	// Resent marks a step sent again after a restart lost the first: Mono
	// may refuse it because it took the first, which is nobody's fault.
	Resent bool `json:"resent,omitempty"`
	// Recovery marks a fresh login made because Mono's answer to an
	// earlier step was lost: the bank may ask for a new code.
	Recovery bool `json:"recovery,omitempty"`
}

// request is everything a piece of Mono work needs, copied out of the
// session so the work can run while the session moves on.
type request struct {
	kind        string
	institution string
	method      string
	monoSession string
	monoExpires time.Time
	fields      map[string]string
	account     int
	reauthOf    string // the account a reauthorisation is for
}

// result is what the work found: Mono's step and, when it linked, the
// account id and details.
type result struct {
	institution string // the institution a reauth session is for
	monoSession string
	monoExpires time.Time
	step        *mono.Step
	err         error
	accountID   string
	details     *mono.AccountDetails
}

// request describes the work a session's pending step needs.
func (t *turn) request(p *Pending) request {
	r := request{kind: p.Kind, account: p.Account, monoSession: t.s.MonoSession, monoExpires: t.s.MonoExpires, reauthOf: t.s.ReauthOf}
	if t.s.Bank != nil {
		r.institution = t.s.Bank.ID
	}
	r.method = t.s.Method
	r.fields = make(map[string]string, len(t.s.Answers))
	for k, v := range t.s.Answers {
		r.fields[k] = v
	}
	return r
}

// perform does the Mono work: login or commit, and on a 99 the code
// exchange and account details. It touches no session.
func (e *Engine) perform(ctx context.Context, r request, now time.Time) result {
	res := result{monoSession: r.monoSession, monoExpires: r.monoExpires}
	switch r.kind {
	case workLogin:
		reused := res.monoSession != "" && now.Before(res.monoExpires)
		for attempt := 0; attempt < 2; attempt++ {
			if !reused {
				ms, err := e.mono.CreateSession(ctx, mono.SessionRequest{Institution: r.institution, AuthMethod: r.method})
				if err != nil {
					res.err = err
					return res
				}
				res.monoSession, res.monoExpires = ms.ID, expiry(ms.ExpiresAt, now)
			}
			res.step, res.err = e.mono.Login(ctx, res.monoSession, r.fields)
			if !reused || mono.KindOf(res.err) != mono.KindNotFound {
				break
			}
			reused = false // Mono no longer knows the session: open another, once
		}
	case workCommit:
		body := make(map[string]any, len(r.fields))
		for k, v := range r.fields {
			body[k] = v
		}
		res.step, res.err = e.mono.Commit(ctx, res.monoSession, body)
	case workAccount:
		res.step, res.err = e.mono.Commit(ctx, res.monoSession, map[string]any{"account": r.account})
	case workReauth:
		return e.reauth(ctx, r, now)
	default:
		res.err = errors.New("unknown work " + r.kind)
	}
	clear(r.fields)
	if res.err != nil || res.step.ResponseCode != mono.CodeLinked {
		return res
	}
	if r.reauthOf != "" {
		res.accountID = r.reauthOf // a reauthorisation: the account is known
		return res
	}
	if res.accountID, res.err = e.mono.Exchange(ctx, res.step.Code); res.err != nil {
		return res
	}
	details, err := e.mono.Account(ctx, res.accountID)
	if err != nil {
		// The link exists at Mono; only the details are missing.
		e.log.Warn().Err(err).Msg("account details unavailable")
	}
	res.details = details
	return res
}

// reauth asks Mono for a reauthorisation token and opens a session with
// it. Mono tries the login in the background: 99 means done, 102 that the
// user must answer the session's form (an OTP, a changed password).
func (e *Engine) reauth(ctx context.Context, r request, now time.Time) result {
	var res result
	token, err := e.mono.Reauthorise(ctx, r.reauthOf)
	if err != nil {
		res.err = err
		return res
	}
	ms, err := e.mono.CreateSession(ctx, mono.SessionRequest{ReauthToken: token})
	if err != nil {
		res.err = err
		return res
	}
	res.monoSession, res.monoExpires, res.institution = ms.ID, expiry(ms.ExpiresAt, now), ms.Institution
	code, msg := mono.CodeLinked, ""
	if ms.Reauth != nil {
		code, msg = ms.Reauth.ResponseCode, ms.Reauth.Message
	}
	switch code {
	case mono.CodeLinked:
		res.step, res.accountID = &mono.Step{ResponseCode: code}, r.reauthOf
	case mono.CodeUserInput:
		ui := ms.UI
		res.step = &mono.Step{ResponseCode: code, Form: &ui}
	default:
		res.err = &mono.Error{Op: "reauth session", Status: 200, ResponseCode: code, Message: msg}
	}
	return res
}

// expiry turns Mono's expiresAt (epoch ms) into a time, keeping a margin so a
// session is not used in its last seconds; without one, ten minutes.
func expiry(ms int64, now time.Time) time.Time {
	if ms <= 0 {
		return now.Add(10 * time.Minute)
	}
	return time.UnixMilli(ms).Add(-15 * time.Second)
}

// job is Mono work running for a session. The hop that started it waits for
// it within the hop budget; if the budget runs out first the job is
// detached, and settles the session itself when it finishes.
type job struct {
	id   string
	done chan struct{}

	mu       sync.Mutex
	session  string // the session to settle: changes when a session is resumed under a new id
	res      result
	detached bool
}

// jobs tracks the work in flight, so that a later hop can wait for it and
// shutdown can drain it.
type jobs struct {
	mu     sync.Mutex
	live   map[string]*job
	wg     sync.WaitGroup
	closed bool // draining: no new work starts
}

// errStopping is the result of work asked for while the gateway stops.
var errStopping = errors.New("the gateway is stopping")

// get returns the live job with id, or nil.
func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.live[id]
}

// remove forgets a job whose result has been taken.
func (js *jobs) remove(id string) {
	js.mu.Lock()
	delete(js.live, id)
	js.mu.Unlock()
}

// start runs work for a session in the background. It is bounded by the
// engine's lifetime context (and the Mono client's per-call timeout), not by
// the hop that started it.
func (e *Engine) start(session string, r request) *job {
	id := make([]byte, 8)
	rand.Read(id)
	j := &job{id: hex.EncodeToString(id), done: make(chan struct{}), session: session}
	e.jobs.mu.Lock()
	if e.jobs.closed {
		e.jobs.mu.Unlock()
		j.res = result{err: errStopping}
		close(j.done)
		return j
	}
	if e.jobs.live == nil {
		e.jobs.live = make(map[string]*job)
	}
	e.jobs.live[j.id] = j
	e.jobs.wg.Add(1)
	e.jobs.mu.Unlock()
	now := e.now()
	go func() {
		defer e.jobs.wg.Done()
		res := e.perform(e.base, r, now)
		j.mu.Lock()
		j.res = res
		close(j.done)
		detached := j.detached
		j.mu.Unlock()
		if detached {
			e.settle(j)
		}
	}()
	return j
}

// await waits for the job until deadline. If the job has not finished by
// then, it is detached: it will settle the session itself.
func (j *job) await(deadline time.Time) (result, bool) {
	if wait := time.Until(deadline); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-j.done:
		case <-timer.C:
		}
		timer.Stop()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case <-j.done:
		return j.res, true
	default:
		j.detached = true
		return result{}, false
	}
}

// retarget points a job at the session that now waits for it.
func (j *job) retarget(session string) {
	j.mu.Lock()
	j.session = session
	j.mu.Unlock()
}

// target is the session the job settles.
func (j *job) target() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.session
}

// settle applies a detached job's result to its session, durably, so that
// the next hop (or a resumed session) shows the outcome. A session that has
// moved on keeps its state; a link Mono made meanwhile is still recorded.
func (e *Engine) settle(j *job) {
	defer e.jobs.remove(j.id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		id := j.target()
		mu := e.lock(id)
		mu.Lock()
		if j.target() != id { // resumed under another id meanwhile
			mu.Unlock()
			continue
		}
		e.settleLocked(ctx, id, j)
		mu.Unlock()
		return
	}
}

// settleLocked is settle under the session's lock.
func (e *Engine) settleLocked(ctx context.Context, id string, j *job) {
	log := e.log.With().Str("session", id).Logger()
	s, err := e.store.Session(ctx, id)
	if err != nil {
		log.Error().Err(err).Msg("settle: load session")
		return
	}
	if s.Pending == nil || s.Pending.Job != j.id {
		return // a hop took the result already
	}
	if e.base.Err() != nil && errors.Is(j.res.err, context.Canceled) {
		// Shutdown cut the work short: the session stays as it was, so the
		// next hop after the restart runs the work again.
		log.Info().Msg("settle: work interrupted by shutdown, left pending")
		return
	}
	t := &turn{ctx: ctx, e: e, s: s, now: e.now(), log: log, bounded: ctx, deadline: time.Now()}
	if s.State == StateWaiting {
		t.apply(j.res)
		s.Unseen = true
		if s.Closed != "" || t.now.Sub(s.Updated) >= e.cfg.LateAfter {
			t.lateOutcome() // the user has left: tell them by text
		}
	} else {
		// The user left while the bank was answering; keep what Mono linked.
		s.Pending = nil
		t.forget()
		if j.res.err == nil && j.res.accountID != "" && s.InviteKind != InviteReauth {
			t.link = t.newLink(j.res)
			s.Link = t.link
			t.settleInvite(StatusLinked, t.link)
			t.emit(TypeAccountLinked, linkedData(t.link))
		}
	}
	s.Updated = t.now
	if len(s.Answers) == 0 {
		s.SealedUntil = time.Time{}
	}
	if err := e.store.Commit(ctx, t.change()); err != nil {
		log.Error().Err(err).Msg("settle: commit")
		return
	}
	t.notify()
	log.Info().Str("state", s.State).Bool("linked", t.link != nil).Msg("background step settled")
}

// Drain waits for background Mono work to finish and settle, or for ctx.
// The gateway calls it on shutdown, after the last hop has been answered;
// no work starts after it. Work still running when ctx ends is cancelled and
// left pending in its session (so it runs again after a restart), and Drain
// waits briefly for that to be recorded.
func (e *Engine) Drain(ctx context.Context) error {
	e.jobs.mu.Lock()
	e.jobs.closed = true
	e.jobs.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.jobs.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	e.stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return ctx.Err()
}
