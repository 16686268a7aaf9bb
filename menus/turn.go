package menus

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/looplab/fsm"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/mono"
)

// turn is one hop's work on one session.
type turn struct {
	ctx      context.Context
	e        *Engine
	s        *Session
	now      time.Time
	deadline time.Time       // Mono work not done by then continues in the background
	bounded  context.Context // t.ctx bounded by the deadline, for waits on Mono
	log      zerolog.Logger

	link     *Link       // set when this turn linked an account
	retired  *Session    // a session this turn ended by resuming or restarting it
	held     *sync.Mutex // the retired session's lock, held until the commit
	refused  bool        // the bank refused a login or answer no reservation stood for
	released []string    // reserved attempts whose outcome was not a refusal

	afterCommit  []func() // run once the turn's change is durable
	code         string   // the deep-dial code of a new session, if any
	events       []Event  // for the partner, committed with the turn
	invite       *Invite  // the session's invitation, once loaded or changed
	inviteEvents []Event  // sent only if the invitation's change is committed
	texts        []Text   // text messages, committed with the turn
	// inviteChanged marks an invitation updated while still pending.
	inviteChanged bool
}

// change is what the turn commits.
func (t *turn) change() Change {
	c := Change{Session: t.s, Link: t.link, Retired: t.retired, LoginFailure: t.refused, Release: t.released,
		Events: t.events, Texts: t.texts}
	if t.invite != nil && (t.invite.Status != StatusPending || t.inviteChanged) {
		c.Invite, c.InviteEvents = t.invite, t.inviteEvents
	}
	return c
}

// release lets go of a second session's lock, once the turn is committed.
func (t *turn) release() {
	if t.held != nil {
		t.held.Unlock()
		t.held = nil
	}
}

// fire sends an event to the session's machine. An event the state does not
// accept is a bug in the engine: it is logged and the session ends.
func (t *turn) fire(event string, args ...any) {
	m := newMachine(t.s.State)
	err := m.Event(t.ctx, event, append([]any{t}, args...)...)
	var none fsm.NoTransitionError
	if err != nil && !errors.As(err, &none) {
		t.log.Error().Err(err).Str("state", t.s.State).Str("event", event).Msg("invalid transition")
		if event != EventEnd {
			t.fire(EventEnd, ReasonFailed)
		}
	}
}

// end finishes the conversation for a reason, telling the partner how.
func (t *turn) end(reason string) {
	page := pageNames[t.s.State]
	t.fire(EventEnd, reason)
	switch reason {
	case ReasonExit:
		t.emit(TypeExit, map[string]any{"pageName": page})
	case ReasonExpired:
		t.emit(TypeExit, map[string]any{"pageName": page, "reason": "TIMEOUT"})
	default:
		if et, ok := errorTypes[reason]; ok {
			t.emit(TypeError, map[string]any{"errorType": et, "errorMessage": endTexts[reason]})
		}
		if reason == ReasonTooManyTries {
			// Only the bank refusing the customer fails an invitation; an
			// outage or a lockout passes, and the code can be dialled again.
			t.settleInvite(StatusFailed, nil)
		}
	}
}

// start shows the first screen: the banks, or the offer to continue a link
// a dropped session left unfinished.
func (t *turn) start() {
	if t.e.locked(t.ctx, t.s.Phone, t.now) {
		t.end(ReasonLocked)
		return
	}
	if _, err := t.e.banks.get(t.bounded, t.e, t.now); err != nil {
		if mono.KindOf(err) == mono.KindUnauthorized {
			t.e.reportUnauthorized(err)
			t.end(ReasonUnavailable)
			return
		}
		t.log.Warn().Err(err).Msg("institutions unavailable")
		t.end(ReasonNoBanks)
		return
	}
	decided := t.attachInvite()
	t.emit(TypeOpened, nil)
	if decided || t.shortcut() {
		return
	}
	if t.s.Channel == ChannelSMS && !t.e.cfg.SMSCredentials {
		return // continuing a link may mean typing a secret: that is for USSD
	}
	prev, err := t.e.store.Latest(t.ctx, t.s.Phone)
	if err == nil && prev.ID != t.s.ID && t.e.resumable(prev, t.now) {
		t.s.State = StateResume
		t.s.ResumeOf = prev.ID
		t.s.Bank = prev.Bank
	} else if err != nil && !errors.Is(err, ErrNoSession) {
		t.log.Warn().Err(err).Msg("latest session unavailable")
	}
}

// shortcut opens the institution a deep-dial code names, if it names one.
func (t *turn) shortcut() bool {
	sc, ok := t.e.cfg.Shortcuts[t.code]
	return ok && t.openInstitution(sc.Institution, sc.AuthMethod)
}

// advance applies one input to the screen the user was shown.
func (t *turn) advance(input string) {
	if t.s.Unseen {
		// The outcome of a background step has not been shown yet: this hop
		// shows it, whatever was typed on the waiting screen.
		t.s.Unseen = false
		return
	}
	if t.s.State != StateCredentials && t.s.State != StateChallenge {
		input = strings.TrimSpace(input)
	}
	switch t.s.State {
	case StateBanks:
		t.onBanks(input)
	case StateMethods:
		t.onMethods(input)
	case StateCredentials, StateChallenge:
		t.onField(input)
	case StateAccounts:
		t.onAccounts(input)
	case StateWaiting:
		t.onWaiting(input)
	case StateResume:
		t.onResume(input)
	}
}

// forget erases everything typed into the current form.
func (t *turn) forget() {
	clear(t.s.Answers)
	t.s.Answers = nil
	t.s.AnswersAt = time.Time{}
	t.s.SealedUntil = time.Time{}
}

// keepLogin holds the login form's answers, sealed, for a fresh login
// should Mono's answer to a later step be lost.
func (t *turn) keepLogin() {
	t.forgetLogin()
	t.s.Login = maps.Clone(t.s.Answers)
	t.s.LoginAt = t.now
}

// forgetLogin erases the kept login answers.
func (t *turn) forgetLogin() {
	clear(t.s.Login)
	t.s.Login = nil
	t.s.LoginAt = time.Time{}
}

// loginFresh reports whether the kept login answers are within their
// lifetime.
func (t *turn) loginFresh() bool {
	return len(t.s.Login) > 0 && t.now.Sub(t.s.LoginAt) < t.e.cfg.SecretTTL
}

// askForm starts collecting a form from its first field. A new login form
// also drops the login answers kept from before.
func (t *turn) askForm(kind string, f Form) {
	t.s.FormKind = kind
	t.s.Form = f
	t.s.Field = 0
	t.forget()
	if kind == formLogin {
		t.forgetLogin()
	}
}

// loginForm is the form of the chosen bank's chosen auth method.
func (t *turn) loginForm() Form {
	if t.s.Bank == nil {
		return Form{}
	}
	for _, m := range t.s.Bank.Methods {
		if m.Type == t.s.Method {
			return Flatten(m.UI)
		}
	}
	return Form{}
}

// pickResult says what an input did on a list screen.
type pickResult int

const (
	picked  pickResult = iota // an option was chosen
	paged                     // 98 or 0 moved between pages
	leaving                   // 0 on the first page
	typed                     // not a number: text for the screen to interpret
	invalid                   // a number that is no option
)

// pick interprets an input on a paged list of total options.
func (t *turn) pick(input string, total int) (int, pickResult) {
	l := &t.s.List
	switch input {
	case InputMore:
		if l.Offset+l.Shown >= total {
			return 0, invalid
		}
		l.Prev = append(l.Prev, l.Offset)
		l.Offset += l.Shown
		return 0, paged
	case InputBack:
		if len(l.Prev) == 0 {
			return 0, leaving
		}
		l.Offset = l.Prev[len(l.Prev)-1]
		l.Prev = l.Prev[:len(l.Prev)-1]
		return 0, paged
	}
	n, err := strconv.Atoi(input)
	switch {
	case err != nil && !isDigits(input):
		return 0, typed
	case err != nil || n < 1 || n > l.Shown || l.Offset+n-1 >= total:
		return 0, invalid
	}
	return l.Offset + n - 1, picked
}

// onBanks handles the bank list: a number, paging, or letters to filter by.
func (t *turn) onBanks(input string) {
	banks, err := t.e.banks.get(t.bounded, t.e, t.now)
	if err != nil {
		t.log.Warn().Err(err).Msg("institutions unavailable")
		t.end(ReasonNoBanks)
		return
	}
	shown := filterBanks(banks, t.s.Filter)
	i, res := t.pick(input, len(shown))
	switch res {
	case picked:
		t.chooseBank(shown[i])
	case leaving:
		if t.s.Filter != "" {
			t.s.Filter = ""
			t.s.List = List{}
			return
		}
		t.end(ReasonExit)
	case typed:
		switch matches := filterBanks(banks, input); len(matches) {
		case 0:
			t.s.Notice = textNoMatch
		case 1:
			t.chooseBank(matches[0]) // the one bank the search found
		default:
			t.s.Filter = input
			t.s.List = List{}
		}
	case invalid:
		t.s.Notice = textInvalidChoice
	}
}

// chooseBank moves on from the bank list: straight to the form when the bank
// has one auth method, to the choice of method otherwise.
func (t *turn) chooseBank(b *Bank) {
	if len(b.Methods) > 0 {
		prev := t.s.Bank
		t.s.Bank = b
		t.emit(TypeInstitutionSelected, nil)
		t.s.Bank = prev
	}
	switch len(b.Methods) {
	case 0:
		t.s.Notice = textBankUnavailable
	case 1:
		t.fire(EventOpenForm, b, b.Methods[0].Type)
	default:
		t.fire(EventChooseBank, b)
	}
}

// onMethods handles the choice between internet and mobile banking.
func (t *turn) onMethods(input string) {
	methods := t.s.Bank.Methods
	i, res := t.pick(input, len(methods))
	switch res {
	case picked:
		t.fire(EventOpenForm, nil, methods[i].Type)
		if methods[i].Type != methods[0].Type {
			t.emit(TypeAuthMethodSwitched, map[string]any{"prevAuthMethod": methods[0].Type})
		}
	case leaving:
		t.fire(EventBack) // a bank picked by mistake: choose another
	case typed, invalid:
		t.s.Notice = textInvalidChoice
	}
}

// onField takes the value of one form field; the last one sends the form.
// The value is kept exactly as typed: it may contain "*", "#" or spaces.
func (t *turn) onField(input string) {
	if input == InputBack {
		t.leaveForm()
		return
	}
	if t.s.Field >= len(t.s.Form.Fields) {
		t.end(ReasonFailed)
		return
	}
	field := t.s.Form.Fields[t.s.Field]
	if reason := field.Check(input); reason != "" {
		t.s.Notice = reason
		return
	}
	if t.s.Field > 0 && len(t.s.Answers) == 0 {
		// The earlier answers lapsed and were erased while the user was idle.
		t.s.Field = 0
		t.s.Notice = textRetype
		return
	}
	if t.s.Answers == nil {
		t.s.Answers = make(map[string]string, len(t.s.Form.Fields))
	}
	t.s.Answers[field.Name] = input
	t.s.AnswersAt = t.now
	t.s.Field++
	if t.s.Field < len(t.s.Form.Fields) {
		return
	}
	kind := workLogin
	if t.s.FormKind == formChallenge {
		kind = workCommit
		t.emit(TypeSubmitMFA, map[string]any{"mfaType": mfaType(t.s.Form)})
	} else {
		t.keepLogin()
		t.emit(TypeSubmitCredentials, nil)
	}
	t.submit(&Pending{Kind: kind})
}

// leaveForm handles 0 on a form: a login form goes back to the choice of
// method (or of bank, when it has one), so a bank or method picked by
// mistake can be left; a bank's challenge ends the session.
func (t *turn) leaveForm() {
	switch {
	case t.s.State != StateCredentials || t.s.Bank == nil || t.s.InviteKind == InviteReauth:
		t.end(ReasonExit)
	case len(t.s.Bank.Methods) > 1:
		t.forget()
		t.fire(EventChooseBank, t.s.Bank)
	default:
		t.forget()
		t.fire(EventBack)
	}
}

// onAccounts handles the choice of account after a 101.
func (t *turn) onAccounts(input string) {
	i, res := t.pick(input, len(t.s.Accounts))
	switch res {
	case picked:
		chosen := t.s.Accounts[i]
		t.s.Chosen = &chosen
		t.emit(TypeAccountSelected, map[string]any{"selectedAccountsCount": 1})
		t.submit(&Pending{Kind: workAccount, Account: i})
	case leaving:
		t.end(ReasonExit)
	case typed, invalid:
		t.s.Notice = textInvalidChoice
	}
}

// submit starts the Mono work a completed screen needs and waits for it
// within the hop budget; past it, the user is shown the waiting screen and
// the work goes on in the background.
func (t *turn) submit(p *Pending) {
	if (p.Kind == workCommit || p.Kind == workAccount) && !t.now.Before(t.s.MonoExpires) {
		// Mono's session has expired: only a new login can open another.
		t.bankSessionExpired()
		return
	}
	switch {
	case p.Attempt != "":
		// A guess carried over from a step whose answer was lost.
	case p.Kind == workLogin || p.Kind == workCommit:
		// A guess at a secret: reserved against the phone's lockout before
		// the bank sees it, so concurrent sessions cannot guess past it.
		key, ok := t.e.reserve(t.ctx, t.s.Phone, t.now)
		if !ok {
			t.end(ReasonLocked)
			return
		}
		p.Attempt = key
	case t.e.locked(t.ctx, t.s.Phone, t.now):
		t.end(ReasonLocked)
		return
	}
	p.Started = t.now
	t.s.Pending = p
	j := t.e.start(t.s.ID, t.request(p))
	p.Job = j.id
	t.wait(j)
}

// wait takes a job's result if it comes within the hop's deadline.
func (t *turn) wait(j *job) {
	res, ok := j.await(t.deadline)
	if ok {
		t.e.jobs.remove(j.id)
		t.apply(res)
		return
	}
	if t.s.State != StateWaiting {
		t.fire(EventWait)
	}
}

// onWaiting handles the waiting screen: 0 leaves (a link Mono still makes
// is kept), anything else checks on the bank again.
func (t *turn) onWaiting(input string) {
	if input == InputBack {
		t.end(ReasonExit)
		return
	}
	p := t.s.Pending
	if p == nil {
		t.end(ReasonFailed)
		return
	}
	if j := t.e.jobs.get(p.Job); j != nil {
		t.wait(j)
		return
	}
	// The gateway restarted while the bank was answering: the work is lost,
	// and whether Mono took it is unknown, so nothing of it counts against
	// the user. Run it again while what was typed is still fresh (a login
	// on a fresh Mono session; a step on the same one, marked as resent),
	// or log in afresh with the kept login answers; otherwise ask again.
	t.s.Pending = nil
	t.releaseAttempt(p)
	switch {
	case p.Kind == workLogin && t.fresh():
		t.s.MonoSession = ""
		t.submit(&Pending{Kind: workLogin})
		return
	case p.Kind == workAccount || p.Kind == workReauth || (p.Kind == workCommit && t.fresh()):
		t.submit(&Pending{Kind: p.Kind, Account: p.Account, Resent: true})
		return
	case p.Kind == workCommit && t.loginFresh():
		t.forget()
		t.recover("")
		return
	}
	t.forget()
	t.retry(p.Kind)
	t.s.Notice = textNoAnswer
}

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
		t.fire(EventAskInput, t.s.Form)
	case workAccount:
		t.fire(EventAskAccount, t.s.Accounts)
	default:
		t.fire(EventLoginFailed)
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
		if t.s.InviteKind == InviteReauth {
			t.reauthorised(res)
			return
		}
		link := t.newLink(res)
		t.fire(EventLink, link)
		t.settleInvite(StatusLinked, link)
		t.emit(TypeAccountLinked, linkedData(link))
		t.text(TextReceipt, map[string]string{"bank": link.Bank, "masked": link.Masked})
	case mono.CodeSelectAccount:
		if len(step.Accounts) == 0 {
			t.log.Warn().Msg("mono offered no accounts")
			t.end(ReasonFailed)
			return
		}
		t.fire(EventAskAccount, step.Accounts)
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
		t.fire(EventAskInput, form)
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
	t.emit(TypeError, map[string]any{"errorType": "AUTHENTICATION_FAILED", "errorMessage": "The bank did not accept what was typed."})
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
	case t.s.InviteKind == InviteReauth:
		// A reauthorisation has no login form: a fresh token opens another.
		t.s.Recoveries++
		t.releaseAttempt(unused)
		t.s.State = StateReauth
		t.submit(&Pending{Kind: workReauth, Recovery: true})
	case !t.loginFresh():
		t.releaseAttempt(unused)
		t.fire(EventLoginFailed)
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
	if t.s.InviteKind == InviteReauth {
		// A reauthorisation has no login form: a fresh token opens another.
		t.s.Pending = nil
		t.forget()
		t.s.State = StateReauth
		t.submit(&Pending{Kind: workReauth})
		return
	}
	t.s.Pending = nil
	t.forget()
	t.fire(EventLoginFailed)
	t.s.Notice = textBankSessionExpired
}

// newLink records the account Mono linked.
func (t *turn) newLink(res result) *Link {
	l := &Link{
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
