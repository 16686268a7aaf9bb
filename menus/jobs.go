package menus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/reqid"
)

// job is Mono work running for a session. The hop that started it waits for
// it within the hop budget; if the budget runs out first the job is
// detached, and settles the session itself when it finishes.
type job struct {
	id   string
	done chan struct{}

	mu       sync.Mutex
	session  string // the session to settle: changes when a session is resumed under a new id
	request  string // the id of the callback that started the work
	res      result
	detached bool
	leased   bool // its lease was taken: it outlived a hop (holdLease)
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

// forgetJob forgets a job whose result has been taken (or, at shutdown, left
// pending), and lets its lease go: another instance may take it over.
func (e *Engine) forgetJob(id string) {
	e.jobs.mu.Lock()
	j := e.jobs.live[id]
	delete(e.jobs.live, id)
	e.jobs.mu.Unlock()
	leased := j == nil // unknown here: let any lease go
	if j != nil {
		j.mu.Lock()
		leased = j.leased
		j.mu.Unlock()
	}
	if e.cfg.Leases != nil && leased {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.base), 5*time.Second)
		defer cancel()
		if err := e.cfg.Leases.Release(ctx, jobLease(id), e.owner); err != nil {
			e.log.Warn().Err(err).Msg("release work lease")
		}
	}
}

// jobLease is the lease key of a job.
func jobLease(id string) string { return "job:" + id }

// newOwner names this engine among the instances sharing leases.
func newOwner() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// keepLease renews the job's lease while it runs, until done closes.
func (e *Engine) keepLease(id string, done <-chan struct{}) {
	tick := time.NewTicker(e.cfg.LeaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.WithoutCancel(e.base), e.cfg.LeaseTTL/3)
			if _, err := e.cfg.Leases.Hold(ctx, jobLease(id), e.owner, e.cfg.LeaseTTL); err != nil {
				e.log.Warn().Err(err).Msg("renew work lease")
			}
			cancel()
		}
	}
}

// heldElsewhere reports whether another instance runs the job: its lease
// is live and not this engine's. When the lease has lapsed (that instance
// is gone), this engine takes it, and the work is its to run again.
func (e *Engine) heldElsewhere(ctx context.Context, id string) bool {
	if e.cfg.Leases == nil || e.jobs.get(id) != nil {
		return false
	}
	ours, err := e.cfg.Leases.Hold(ctx, jobLease(id), e.owner, e.cfg.LeaseTTL)
	if err != nil {
		e.log.Warn().Err(err).Msg("work lease")
		return true // unknown: never run the work twice at once
	}
	return !ours
}

// start runs work for a session in the background. It is bounded by the
// engine's lifetime context (and the Mono client's per-call timeout), not by
// the hop that started it.
func (e *Engine) start(session string, r request) *job {
	id := make([]byte, 8)
	rand.Read(id)
	j := &job{id: hex.EncodeToString(id), done: make(chan struct{}), session: session, request: r.requestID}
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

// holdLease takes the job's lease, once, and keeps renewing it while the
// job runs: called when the job outlives the hop that waits for it, before
// that hop commits the session as waiting, so that another instance
// reading it finds the work held. Work that ends within its hop needs no
// lease: the hop holds the session's lock throughout, and an instance that
// dies lets that lock go with it.
func (e *Engine) holdLease(j *job) {
	if e.cfg.Leases == nil {
		return
	}
	j.mu.Lock()
	taken := j.leased
	j.leased = true
	j.mu.Unlock()
	if taken {
		return
	}
	ctx, cancel := context.WithTimeout(e.base, e.cfg.LeaseTTL/3)
	if _, err := e.cfg.Leases.Hold(ctx, jobLease(j.id), e.owner, e.cfg.LeaseTTL); err != nil {
		e.log.Warn().Err(err).Msg("take work lease")
	}
	cancel()
	go e.keepLease(j.id, j.done)
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
	defer e.forgetJob(j.id)
	ctx, cancel := context.WithTimeout(reqid.With(context.Background(), j.request), 30*time.Second)
	defer cancel()
	for {
		id := j.target()
		locked, unlock, err := e.lockSession(ctx, id)
		if err != nil {
			e.log.Error().Err(err).Str("session", id).Msg("settle: lock session")
			return // the work stays pending: the next hop, here or elsewhere, runs it again
		}
		if j.target() != id { // resumed under another id meanwhile
			unlock()
			continue
		}
		e.settleLocked(locked, id, j)
		unlock()
		return
	}
}

// settleLocked is settle under the session's lock.
func (e *Engine) settleLocked(ctx context.Context, id string, j *job) {
	log := e.log.With().Str("session", id).Logger()
	s, err := e.session(ctx, id)
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
	t := e.newTurn(ctx, s, e.now(), time.Now(), ctx)
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
		if j.res.err == nil && j.res.accountID != "" && s.InviteKind != link.InviteReauth {
			t.link = t.newLink(j.res)
			s.Link = t.link
			t.settleInvite(link.StatusLinked, t.link)
			t.emit(link.TypeAccountLinked, linkedData(t.link))
		}
	}
	s.Updated = t.now
	if len(s.Answers) == 0 {
		s.SealedUntil = time.Time{}
	}
	if err := e.commit(ctx, t.change(), t.s, t.retired); err != nil {
		log.Error().Err(err).Msg("settle: commit")
		return
	}
	t.notify()
	t.observe()
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
