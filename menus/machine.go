package menus

import (
	"context"

	"github.com/looplab/fsm"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
)

// States of a conversation, one per kind of screen.
const (
	StateLanguage    = "language"    // choose the language, on a phone's first dial (or 99 on the banks)
	StateBanks       = "banks"       // choose an institution (paged, filterable)
	StateMethods     = "methods"     // choose internet or mobile banking
	StateCredentials = "credentials" // one prompt per field of the login form
	StateAccounts    = "accounts"    // choose the account to link (101)
	StateChallenge   = "challenge"   // OTP, security answer, token (102)
	StateWaiting     = "waiting"     // the bank is still answering: check again
	StateResume      = "resume"      // continue a dropped session, or start over
	StateReauth      = "reauth"      // a reauthorisation: Mono is logging in with a reauth token
	StateLinked      = "linked"      // done: the account is linked
	StateEnded       = "ended"       // over without a link; Session.Reason says why
)

// Events move a conversation between states.
const (
	EventChooseBank  = "choose_bank"  // a bank with several auth methods was chosen
	EventOpenForm    = "open_form"    // a bank and method are known: ask for credentials
	EventBack        = "back"         // from the method choice (or a one-method bank's form) back to the banks
	EventLoginFailed = "login_failed" // the bank refused the credentials: ask again
	EventAskAccount  = "ask_account"  // Mono answered 101
	EventAskInput    = "ask_input"    // Mono answered 102
	EventLink        = "link"         // Mono answered 99 and the account id is known
	EventWait        = "wait"         // Mono outlived the hop budget: work goes on in the background
	EventStartOver   = "start_over"   // from the resume offer to the banks
	EventEnd         = "end"          // exit, failure or expiry
	EventOfferResume = "offer_resume" // a new session offers to continue a dropped one
	EventReauth      = "reauth"       // Mono is asked (again) for a reauthorisation login
	EventRetire      = "retire"       // another session resumed or replaced this one
	EventAskLanguage = "ask_language" // a first dial, or 99 on the banks: choose the language
	EventLanguage    = "language"     // a language was chosen: on to the banks
)

// resumeEvent names the event that continues a dropped session's
// conversation in the state it was left in.
func resumeEvent(state string) string { return "resume_" + state }

// Form kinds: whose answers a completed form is sent with.
const (
	formLogin     = "login"     // Mono's login
	formChallenge = "challenge" // Mono's commit: an OTP, a security answer
	formRelogin   = "relogin"   // a reauthorisation's request for the bank's login again
)

// Reasons a session ends, recorded for the drop-off funnel.
const (
	ReasonLinked       = "linked"
	ReasonExit         = "exit"
	ReasonTooManyTries = "too_many_tries"
	ReasonUnavailable  = "unavailable"
	ReasonFailed       = "failed"
	ReasonNoBanks      = "no_banks"
	ReasonExpired      = "expired"
	ReasonLocked       = "locked"      // too many refused logins from this phone recently
	ReasonBankLocked   = "bank_locked" // the bank says it locked or disabled the account
	ReasonReauthorised = "reauthorised"
	ReasonHandover     = "handover"  // an SMS conversation handed over to USSD for the credentials
	ReasonResumed      = "resumed"   // continued by a new session
	ReasonRestarted    = "restarted" // replaced by a new session that started over
)

// inFlow lists the states from which Mono work is sent or its outcome shown.
var inFlow = []string{StateCredentials, StateAccounts, StateChallenge, StateWaiting}

// transitions is the one definition every session's machine is built from.
var transitions = append(fsm.Events{
	{Name: EventChooseBank, Src: []string{StateBanks, StateCredentials}, Dst: StateMethods},
	{Name: EventOpenForm, Src: []string{StateBanks, StateMethods}, Dst: StateCredentials},
	{Name: EventBack, Src: []string{StateMethods, StateCredentials}, Dst: StateBanks},
	{Name: EventLoginFailed, Src: inFlow, Dst: StateCredentials},
	{Name: EventAskAccount, Src: inFlow, Dst: StateAccounts},
	{Name: EventAskInput, Src: append(inFlow, StateReauth), Dst: StateChallenge},
	{Name: EventLink, Src: append(inFlow, StateReauth), Dst: StateLinked},
	{Name: EventWait, Src: []string{StateCredentials, StateAccounts, StateChallenge, StateReauth}, Dst: StateWaiting},
	{Name: EventStartOver, Src: []string{StateResume}, Dst: StateBanks},
	{Name: EventEnd, Src: live, Dst: StateEnded},
	{Name: EventOfferResume, Src: []string{StateBanks}, Dst: StateResume},
	{Name: EventReauth, Src: []string{StateBanks, StateChallenge, StateWaiting, StateReauth}, Dst: StateReauth},
	{Name: EventRetire, Src: append(live, StateEnded, StateLinked), Dst: StateEnded},
	{Name: EventAskLanguage, Src: []string{StateBanks}, Dst: StateLanguage},
	{Name: EventLanguage, Src: []string{StateLanguage}, Dst: StateBanks},
}, resumes()...)

// live lists the states of a session not yet over.
var live = []string{StateLanguage, StateBanks, StateMethods, StateCredentials, StateAccounts, StateChallenge, StateWaiting, StateResume, StateReauth}

// resumes are the transitions from the resume offer into the state the
// dropped session was left in: any resumable state, or its end when its
// outcome is still unseen.
func resumes() fsm.Events {
	var out fsm.Events
	for _, st := range append(resumableStates, StateLinked, StateEnded) {
		out = append(out, fsm.EventDesc{Name: resumeEvent(st), Src: []string{StateResume}, Dst: st})
	}
	return out
}

// args are the values an event carries into the machine, typed: each
// event's callback reads the fields it names.
type args struct {
	bank     *Bank          // EventChooseBank, EventOpenForm (nil: keep the session's)
	method   string         // EventOpenForm
	form     Form           // EventAskInput
	relogin  bool           // EventAskInput: the form is the bank's login, for a reauthorisation
	accounts []mono.Account // EventAskAccount
	link     *link.Link     // EventLink
	reason   string         // EventEnd, EventRetire
	prev     *Session       // EventOfferResume: the dropped session offered
	// keepPending, on EventRetire, leaves the retired session's Mono work
	// pending, so that a link still being made is recorded when it settles.
	keepPending bool
}

// move is one event on one session's machine, as its callbacks see it: the
// turn firing it, the session it moves (the turn's own, or one it retires)
// and the event's arguments.
type move struct {
	t *turn
	s *Session
	args
}

// on adapts a callback on a move to the machine's callback type.
func on(f func(m *move)) fsm.Callback {
	return func(_ context.Context, e *fsm.Event) { f(e.Args[0].(*move)) }
}

// callbacks prepare the session for the screen its new state shows.
// after_<event> callbacks are used rather than enter_<state> ones because
// they also run when an event leaves the state unchanged (a second OTP
// form after a first). enter_state is the one place a state is set.
var callbacks = fsm.Callbacks{
	"enter_state": func(_ context.Context, e *fsm.Event) {
		m := e.Args[0].(*move)
		m.s.State = e.Dst
		m.s.List = List{}
		if m.s == m.t.s && m.s.Done() {
			m.t.endedOn = e.Src // the last screen the user reached
		}
	},
	"after_" + EventChooseBank: on(func(m *move) {
		m.s.Bank = m.bank
		m.s.Method = ""
	}),
	"after_" + EventOpenForm: on(func(m *move) {
		if m.bank != nil {
			m.s.Bank = m.bank
		}
		m.s.Method = m.method
		m.s.MonoSession = ""
		m.t.askForm(formLogin, m.t.loginForm())
	}),
	"after_" + EventBack: on(func(m *move) {
		m.s.Bank, m.s.Method, m.s.Filter = nil, "", ""
		m.t.askForm(formLogin, Form{})
	}),
	"after_" + EventLoginFailed: on(func(m *move) {
		m.s.MonoSession = "" // a refused login may spoil Mono's session: start a new one
		m.t.askForm(formLogin, m.t.loginForm())
		m.s.Notice = textLoginFailed
	}),
	"after_" + EventAskAccount: on(func(m *move) {
		m.s.Accounts = m.accounts
		m.s.List = List{}
	}),
	"after_" + EventAskInput: on(func(m *move) {
		kind := formChallenge
		if m.relogin {
			kind = formRelogin
		}
		m.t.askForm(kind, m.form)
	}),
	"after_" + EventLink: on(func(m *move) {
		m.t.linkedAt = m.link.Institution
		m.s.Link = m.link
		m.t.link = m.s.Link
		m.s.Reason = ReasonLinked
		m.t.forget()
		m.t.forgetLogin()
	}),
	"after_" + EventEnd: on(func(m *move) {
		m.s.Reason = m.reason
		m.t.forget()
		m.t.forgetLogin()
	}),
	"after_" + EventOfferResume: on(func(m *move) {
		m.s.ResumeOf = m.prev.ID
		m.s.Bank = m.prev.Bank
	}),
	"after_" + EventRetire: on(func(m *move) {
		m.s.Reason = m.reason
		if !m.keepPending {
			m.s.Pending = nil
		}
	}),
}

// newMachine builds a session's machine from the one definition, restored
// at the session's stored state.
func newMachine(state string) *fsm.FSM {
	return fsm.NewFSM(state, transitions, callbacks)
}

// machine is a session's machine at state: one from the engine's pool
// (built once, moved to the state), to be put back once its event ran.
func (e *Engine) machine(state string) *fsm.FSM {
	m, ok := e.machines.Get().(*fsm.FSM)
	if !ok {
		return newMachine(state)
	}
	m.SetState(state)
	return m
}
