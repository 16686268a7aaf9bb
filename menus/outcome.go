package menus

import (
	"maps"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
)

// releaseAttempt returns a work's reserved attempt to the phone: its
// outcome was not a refusal.
func (t *turn) releaseAttempt(p *Pending) {
	if p != nil && p.Attempt != "" {
		t.released = append(t.released, p.Attempt)
		p.Attempt = ""
	}
}

// refusal reports whether a Mono error is the bank refusing what was typed.
func refusal(err error) bool {
	k := mono.KindOf(err)
	return k == mono.KindRejected || k == mono.KindAccountLocked
}

// fresh reports whether the sealed answers are within their lifetime.
func (t *turn) fresh() bool {
	return len(t.s.Answers) > 0 && t.now.Sub(t.s.AnswersAt) < t.e.cfg.SecretTTL
}

// retry shows again the screen whose answer Mono did not take.
func (t *turn) retry(kind string) {
	switch kind {
	case workCommit:
		t.fire(EventAskInput, args{form: t.s.Form})
	case workRelogin:
		t.fire(EventAskInput, args{form: t.s.Form, relogin: true})
	case workAccount:
		t.fire(EventAskAccount, args{accounts: t.s.Accounts})
	default:
		t.fire(EventLoginFailed, args{})
	}
}

// apply moves the conversation on from the result of Mono work. What was
// typed has been used by now and is erased whatever the answer.
func (t *turn) apply(res result) {
	p := t.s.Pending
	if p == nil {
		p = &Pending{Kind: workLogin}
	}
	t.s.Pending = nil
	t.forget()
	t.s.MonoSession, t.s.MonoExpires = res.monoSession, res.monoExpires
	if res.err != nil {
		t.failed(p, res.err)
		return
	}
	t.releaseAttempt(p)
	t.e.unauthorized.Store(false)
	step := res.step
	if res.institution != "" && t.s.Bank == nil {
		t.s.Bank = t.bankByID(res.institution)
	}
	switch step.ResponseCode {
	case mono.CodeLinked:
		if t.s.InviteKind == link.InviteReauth {
			t.reauthorised(res)
			return
		}
		made := t.newLink(res)
		t.fire(EventLink, args{link: made})
		t.settleInvite(link.StatusLinked, made)
		t.emit(link.TypeAccountLinked, linkedData(made))
		t.text(link.TextReceipt, map[string]string{"bank": made.Bank, "masked": made.Masked})
	case mono.CodeSelectAccount:
		if len(step.Accounts) == 0 {
			t.log.Warn().Msg("mono offered no accounts")
			t.end(ReasonFailed)
			return
		}
		t.fire(EventAskAccount, args{accounts: step.Accounts})
	case mono.CodeUserInput:
		var form Form
		if step.Form != nil {
			form = Flatten(*step.Form)
		}
		if len(form.Fields) == 0 {
			t.log.Warn().Msg("mono asked for input with no input fields")
			t.end(ReasonFailed)
			return
		}
		t.fire(EventAskInput, args{form: form, relogin: step.Relogin})
		if p.Recovery {
			t.s.Notice = textNewCode // the fresh login made the bank send another
		}
	default:
		t.log.Warn().Int("response_code", step.ResponseCode).Msg("unexpected mono step")
		t.end(ReasonFailed)
	}
}

// failed decides what a failed step means for the user: try again, or an
// END screen that says nothing of Mono's internals. Only the bank refusing
// what was typed counts against the user; a lost answer, a refusal of a
// step resent after a restart and the gateway's own misconfiguration never
// do.
func (t *turn) failed(p *Pending, err error) {
	kind, mk := p.Kind, mono.KindOf(err)
	refused := refusal(err)
	lost := mk == mono.KindUnknown || (p.Resent && (refused || mk == mono.KindNotFound))
	if lost {
		t.log.Warn().Err(err).Str("work", kind).Bool("resent", p.Resent).Msg("mono's answer was lost, or it refused a resent step: logging in afresh")
		t.recover(p.Attempt) // the guess is still in flight: it carries over
		return
	}
	if !refused {
		t.releaseAttempt(p)
	}
	switch {
	case mk == mono.KindUnauthorized || mk == mono.KindMisconfigured:
		t.e.reportUnauthorized(err)
		t.end(ReasonUnavailable)
		return
	case kind == workReauth:
		t.log.Warn().Err(err).Str("work", kind).Msg("mono step failed")
		t.end(ReasonFailed) // nothing the user typed was refused: nothing to ask again
		return
	}
	t.log.Warn().Err(err).Str("work", kind).Msg("mono step failed")
	if mk == mono.KindNotFound && kind != workLogin {
		t.bankSessionExpired()
		return
	}
	if !refused {
		t.end(ReasonFailed)
		return
	}
	t.refused = p.Attempt == "" // a kept reservation already counts it
	t.s.Failures++
	t.emit(link.TypeError, map[string]any{"errorType": "AUTHENTICATION_FAILED", "errorMessage": "The bank did not accept what was typed."})
	if mk == mono.KindAccountLocked {
		t.end(ReasonBankLocked) // trying again cannot help: the bank must unlock it
		return
	}
	if t.s.Failures >= t.e.cfg.MaxTries {
		t.end(ReasonTooManyTries)
		return
	}
	t.retry(kind)
	if kind != workLogin {
		t.s.Notice = textAnswerRejected
	}
}

// maxRecoveries is how many fresh logins one session makes after Mono's
// answers were lost before it gives up: a Mono that keeps failing to answer
// is an outage, not something to retry forever.
const maxRecoveries = 2

// recover carries on after Mono's answer to a step was lost, or Mono
// refused a step resent after a restart: whether it took the step is
// unknown. A fresh Mono session is logged in with the login answers still
// kept sealed (the bank may then send a new code, and the screen says so);
// without them the user is asked to type them again, and told why.
//
// attempt is the lockout reservation of the lost step: the fresh login
// takes it over, and it is released when no login follows.
func (t *turn) recover(attempt string) {
	t.s.MonoSession, t.s.MonoExpires = "", time.Time{}
	unused := &Pending{Attempt: attempt}
	switch {
	case t.s.Recoveries >= maxRecoveries:
		t.log.Warn().Msg("mono keeps losing its answers: giving up")
		t.releaseAttempt(unused)
		t.end(ReasonFailed)
	case t.s.InviteKind == link.InviteReauth:
		// A reauthorisation has no login form: a fresh token opens another.
		t.s.Recoveries++
		t.releaseAttempt(unused)
		t.fire(EventReauth, args{})
		t.submit(&Pending{Kind: workReauth, Recovery: true})
	case !t.loginFresh():
		t.releaseAttempt(unused)
		t.fire(EventLoginFailed, args{})
		t.s.Notice = textNoAnswerRetype
	default:
		t.s.Recoveries++
		form := t.loginForm()
		t.s.FormKind, t.s.Form, t.s.Field = formLogin, form, len(form.Fields)
		t.s.Answers, t.s.AnswersAt = maps.Clone(t.s.Login), t.s.LoginAt
		t.submit(&Pending{Kind: workLogin, Recovery: true, Attempt: attempt})
	}
}

// bankSessionExpired sends the user back to the login form: Mono's session
// is gone, and a new login opens a new one. It is not counted as a failure.
func (t *turn) bankSessionExpired() {
	if t.s.InviteKind == link.InviteReauth {
		// A reauthorisation has no login form: a fresh token opens another.
		t.s.Pending = nil
		t.forget()
		t.fire(EventReauth, args{})
		t.submit(&Pending{Kind: workReauth})
		return
	}
	t.s.Pending = nil
	t.forget()
	t.fire(EventLoginFailed, args{})
	t.s.Notice = textBankSessionExpired
}

// newLink records the account Mono linked.
func (t *turn) newLink(res result) *link.Link {
	l := &link.Link{
		AccountID:  res.accountID,
		Phone:      t.s.Phone,
		AuthMethod: t.s.Method,
		SessionID:  t.s.ID,
		Reference:  t.s.Reference,
		Linked:     t.now,
	}
	if t.s.Bank != nil {
		l.Institution, l.Bank = t.s.Bank.ID, t.s.Bank.Name
	}
	if t.s.Chosen != nil {
		l.Masked, l.Currency = mono.Mask(t.s.Chosen.AccountNumber), t.s.Chosen.Currency
	}
	if d := res.details; d != nil {
		l.Masked, l.Currency = mono.Mask(d.AccountNumber), d.Currency
		if d.AuthMethod != "" {
			l.AuthMethod = d.AuthMethod
		}
	}
	return l
}
