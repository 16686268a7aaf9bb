package menus

import (
	"context"

	"github.com/looplab/fsm"

	"github.com/ussdlink/ussdlink/mono"
)

// States of a conversation, one per kind of screen.
const (
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
)

// Form kinds: whose answers a completed form is sent with.
const (
	formLogin     = "login"     // POST /v1/connect/login
	formChallenge = "challenge" // POST /v1/connect/commit
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
var transitions = fsm.Events{
	{Name: EventChooseBank, Src: []string{StateBanks, StateCredentials}, Dst: StateMethods},
	{Name: EventOpenForm, Src: []string{StateBanks, StateMethods}, Dst: StateCredentials},
	{Name: EventBack, Src: []string{StateMethods, StateCredentials}, Dst: StateBanks},
	{Name: EventLoginFailed, Src: inFlow, Dst: StateCredentials},
	{Name: EventAskAccount, Src: inFlow, Dst: StateAccounts},
	{Name: EventAskInput, Src: append(inFlow, StateReauth), Dst: StateChallenge},
	{Name: EventLink, Src: append(inFlow, StateReauth), Dst: StateLinked},
	{Name: EventWait, Src: []string{StateCredentials, StateAccounts, StateChallenge, StateReauth}, Dst: StateWaiting},
	{Name: EventStartOver, Src: []string{StateResume}, Dst: StateBanks},
	{Name: EventEnd, Src: []string{StateBanks, StateMethods, StateCredentials, StateAccounts, StateChallenge, StateWaiting, StateResume, StateReauth}, Dst: StateEnded},
}

// callbacks prepare the session for the screen its new state shows. Each
// receives the turn as its first argument. after_<event> callbacks are used
// rather than enter_<state> ones because they also run when an event leaves
// the state unchanged (a second OTP form after a first).
var callbacks = fsm.Callbacks{
	"enter_state": func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.s.State = e.Dst
		t.s.List = List{}
	},
	"after_" + EventChooseBank: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.s.Bank = e.Args[1].(*Bank)
		t.s.Method = ""
	},
	"after_" + EventOpenForm: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		if b, ok := e.Args[1].(*Bank); ok {
			t.s.Bank = b
		}
		t.s.Method = e.Args[2].(string)
		t.s.MonoSession = ""
		t.askForm(formLogin, t.loginForm())
	},
	"after_" + EventBack: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.s.Bank, t.s.Method, t.s.Filter = nil, "", ""
		t.askForm(formLogin, Form{})
	},
	"after_" + EventLoginFailed: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.s.MonoSession = "" // a refused login may spoil Mono's session: start a new one
		t.askForm(formLogin, t.loginForm())
		t.s.Notice = textLoginFailed
	},
	"after_" + EventAskAccount: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.s.Accounts = e.Args[1].([]mono.Account)
		t.s.List = List{}
	},
	"after_" + EventAskInput: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.askForm(formChallenge, e.Args[1].(Form))
	},
	"after_" + EventLink: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.s.Link = e.Args[1].(*Link)
		t.link = t.s.Link
		t.s.Reason = ReasonLinked
		t.forget()
		t.forgetLogin()
	},
	"after_" + EventEnd: func(_ context.Context, e *fsm.Event) {
		t := e.Args[0].(*turn)
		t.s.Reason = e.Args[1].(string)
		t.forget()
		t.forgetLogin()
	},
}

// newMachine builds a session's machine from the one definition, restored
// at the session's stored state.
func newMachine(state string) *fsm.FSM {
	return fsm.NewFSM(state, transitions, callbacks)
}
