package menus

import (
	"context"
	"slices"
	"time"

	"github.com/ussdlink/ussdlink/screen"
)

// Inputs on the resume screen.
const (
	inputContinue  = "1"
	inputStartOver = "2"
)

// resumableStates are the states in which a dropped session is worth
// continuing: a bank was chosen and the link is under way.
var resumableStates = []string{StateMethods, StateCredentials, StateAccounts, StateChallenge, StateWaiting, StateReauth}

// resumable reports whether prev, the phone's latest session, can be
// continued by a new session now: a link was under way (or a background
// outcome is unseen) and it was last touched within the resume window.
func (e *Engine) resumable(prev *Session, now time.Time) bool {
	if now.Sub(prev.Updated) > e.cfg.ResumeWindow || prev.Bank == nil {
		return false
	}
	if prev.Done() {
		return prev.Unseen
	}
	// A session the aggregator closed mid-link is exactly what resuming is for.
	return slices.Contains(resumableStates, prev.State)
}

// onResume handles the offer to continue an unfinished link.
func (t *turn) onResume(input string) {
	switch input {
	case inputContinue, inputStartOver:
	case screen.InputBack:
		t.end(ReasonExit)
		return
	default:
		t.s.Notice = textInvalidChoice
		return
	}
	prev, ok := t.claim(t.s.ResumeOf)
	if !ok {
		t.s.Notice = textBusy // the other session is busy: the offer stays
		return
	}
	t.s.ResumeOf = ""
	if prev == nil || input == inputStartOver || !t.e.resumable(prev, t.now) {
		if prev != nil {
			// Mono may still link the account it was logging into: the
			// retired session keeps its pending work so the link is kept.
			t.retire(prev, ReasonRestarted, true)
		}
		t.s.Bank = nil
		t.fire(EventStartOver, args{})
		t.startOverInvite(prev)
		return
	}
	t.inherit(prev)
	t.retire(prev, ReasonResumed, false)
}

// claim locks and loads another session of the same phone, holding its lock
// until this turn is committed, so that background work cannot settle it in
// between. The lock is tried, never waited for without bound: this hop
// already holds its own, and waiting on a second could deadlock against a
// hop doing the same the other way round. ok is false when the lock could
// not be had before the hop's deadline; prev is nil when the session cannot
// be read.
func (t *turn) claim(id string) (prev *Session, ok bool) {
	read, waited := t.ctx, context.Context(nil)
	if id != t.s.ID {
		// Only the hop's deadline ends the wait: a hop already answering
		// carries on past its caller's cancellation, as every hop does.
		ctx, cancel := context.WithDeadline(context.WithoutCancel(t.ctx), t.deadline)
		defer cancel()
		locked, unlock, err := t.e.lockSession(ctx, id)
		if err != nil {
			return nil, false
		}
		t.held = unlock
		read, waited = locked, ctx // a store may take the lock with this read
	}
	prev, err := t.e.session(read, id)
	switch {
	case err != nil && waited != nil && waited.Err() != nil:
		return nil, false // the lock, taken with the read, was not had in time
	case err != nil:
		t.log.Warn().Err(err).Msg("resume: previous session unavailable")
		return nil, true
	}
	return prev, true
}

// inherit continues prev's conversation in this session. What was typed
// comes along only while still within its short lifetime; a form half
// typed with stale answers starts again from its first field.
func (t *turn) inherit(prev *Session) {
	s := t.s
	t.fire(resumeEvent(prev.State), args{})
	s.Notice, s.List, s.Filter = "", prev.List, prev.Filter
	s.Bank, s.Method = prev.Bank, prev.Method
	s.Form, s.FormKind, s.Field = prev.Form, prev.FormKind, prev.Field
	s.Answers, s.AnswersAt, s.SealedUntil = prev.Answers, prev.AnswersAt, prev.SealedUntil
	s.MonoSession, s.MonoExpires = prev.MonoSession, prev.MonoExpires
	s.Accounts, s.Chosen, s.Failures = prev.Accounts, prev.Chosen, prev.Failures
	s.Pending, s.Link, s.Reason = prev.Pending, prev.Link, prev.Reason
	s.Invite, s.InviteKind, s.Reference, s.ReauthOf = prev.Invite, prev.InviteKind, prev.Reference, prev.ReauthOf
	s.CustomerName, s.CustomerEmail = prev.CustomerName, prev.CustomerEmail
	s.Visits = mergeVisits(prev.Visits, s.Visits) // one conversation: counted once, when it ends
	t.keepInvite(prev)
	s.Unseen = false // this hop shows whatever the dropped session had not shown
	prev.Answers = nil
	if !t.fresh() {
		t.forget()
		if s.Field > 0 && (s.State == StateCredentials || s.State == StateChallenge) {
			s.Field = 0
			s.Notice = textRetype
		}
	}
	if s.Pending != nil {
		if j := t.e.jobs.get(s.Pending.Job); j != nil {
			// Once this turn is committed, the work settles this session.
			t.afterCommit = append(t.afterCommit, func() { j.retarget(s.ID) })
		}
	}
	t.log.Info().Str("from", prev.ID).Str("state", s.State).Msg("session resumed")
}

// retire ends a session that a new one resumed or replaced. keepPending
// leaves its Mono work pending, so that a link still being made is recorded
// when the work settles.
func (t *turn) retire(prev *Session, reason string, keepPending bool) {
	t.fireOn(prev, EventRetire, args{reason: reason, keepPending: keepPending})
	prev.Unseen = false
	clear(prev.Answers)
	prev.Answers, prev.AnswersAt, prev.SealedUntil = nil, time.Time{}, time.Time{}
	prev.Updated = t.now
	prev.Purge = prev.Expires
	t.retired = prev
}
