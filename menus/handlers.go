package menus

import (
	"strconv"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/screen"
)

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
	case screen.InputMore:
		if l.Offset+l.Shown >= total {
			return 0, invalid
		}
		l.Prev = append(l.Prev, l.Offset)
		l.Offset += l.Shown
		return 0, paged
	case screen.InputBack:
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
	banks, err := t.e.banks.Get(t.bounded)
	if err != nil {
		t.log.Warn().Err(err).Msg("institutions unavailable")
		t.end(ReasonNoBanks)
		return
	}
	if input == inputLanguage && t.s.Filter == "" && len(t.e.languages()) > 1 {
		t.fire(EventAskLanguage, args{})
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
		t.emit(link.TypeInstitutionSelected, nil)
		t.s.Bank = prev
	}
	switch len(b.Methods) {
	case 0:
		t.s.Notice = textBankUnavailable
	case 1:
		t.fire(EventOpenForm, args{bank: b, method: b.Methods[0].Type})
	default:
		t.fire(EventChooseBank, args{bank: b})
	}
}

// onMethods handles the choice between internet and mobile banking.
func (t *turn) onMethods(input string) {
	methods := t.s.Bank.Methods
	i, res := t.pick(input, len(methods))
	switch res {
	case picked:
		t.fire(EventOpenForm, args{method: methods[i].Type})
		if methods[i].Type != methods[0].Type {
			t.emit(link.TypeAuthMethodSwitched, map[string]any{"prevAuthMethod": methods[0].Type})
		}
	case leaving:
		t.fire(EventBack, args{}) // a bank picked by mistake: choose another
	case typed, invalid:
		t.s.Notice = textInvalidChoice
	}
}

// onField takes the value of one form field; the last one sends the form.
// The value is kept exactly as typed: it may contain "*", "#" or spaces.
func (t *turn) onField(input string) {
	if input == screen.InputBack {
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
	switch t.s.FormKind {
	case formChallenge:
		kind = workCommit
		t.emit(link.TypeSubmitMFA, map[string]any{"mfaType": mfaType(t.s.Form)})
	case formRelogin:
		kind = workRelogin // a reauthorisation logs in afresh if it is lost: nothing to keep
		t.emit(link.TypeSubmitCredentials, nil)
	default:
		t.keepLogin()
		t.emit(link.TypeSubmitCredentials, nil)
	}
	t.submit(&Pending{Kind: kind})
}

// leaveForm handles 0 on a form: a login form goes back to the choice of
// method (or of bank, when it has one), so a bank or method picked by
// mistake can be left; a bank's challenge ends the session.
func (t *turn) leaveForm() {
	switch {
	case t.s.State != StateCredentials || t.s.Bank == nil || t.s.InviteKind == link.InviteReauth:
		t.end(ReasonExit)
	case len(t.s.Bank.Methods) > 1:
		t.forget()
		t.fire(EventChooseBank, args{bank: t.s.Bank})
	default:
		t.forget()
		t.fire(EventBack, args{})
	}
}

// onAccounts handles the choice of account after a 101.
func (t *turn) onAccounts(input string) {
	i, res := t.pick(input, len(t.s.Accounts))
	switch res {
	case picked:
		chosen := t.s.Accounts[i]
		t.s.Chosen = &chosen
		t.emit(link.TypeAccountSelected, map[string]any{"selectedAccountsCount": 1})
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
	if onMonoSession(p.Kind) && !t.now.Before(t.s.MonoExpires) {
		// Mono's session has expired: only a new login can open another.
		t.bankSessionExpired()
		return
	}
	var j *job // the work, when it starts before its guess is reserved
	switch {
	case p.Attempt != "":
		// A guess carried over from a step whose answer was lost.
	case guessesSecret(p.Kind):
		// A guess at a secret: reserved against the phone's lockout before
		// the bank sees it, so concurrent sessions cannot guess past it.
		// A login that must open a Mono session first opens it while the
		// reservation commits, and sends the password only once it stands.
		var guess chan bool
		if opensSession(p.Kind, t.s.MonoSession, t.s.MonoExpires, t.now) {
			guess = make(chan bool, 1)
			j = t.startWork(p, guess)
		}
		key, ok := t.reserveFor(guess)
		if !ok {
			if j != nil {
				t.e.forgetJob(j.id)
			}
			t.end(ReasonLocked)
			return
		}
		p.Attempt = key
	case t.lockedOut():
		t.end(ReasonLocked)
		return
	}
	p.Started = t.now
	t.s.Pending = p
	if j == nil {
		j = t.startWork(p, nil)
	}
	p.Job = j.id
	t.wait(j)
}

// startWork starts the Mono work p needs; guess, when set, holds the
// login back until its reservation answers.
func (t *turn) startWork(p *Pending, guess <-chan bool) *job {
	r := t.request(p)
	r.guess = guess
	return t.e.start(t.s.ID, r)
}

// reserveFor reserves the session's guess, and tells guess (when not
// nil) whether it stands: always, so that the work waiting on it never
// waits on a reservation that failed, even by a panic.
func (t *turn) reserveFor(guess chan<- bool) (key string, ok bool) {
	if guess != nil {
		defer func() { guess <- ok }()
	}
	return t.e.reserve(t.ctx, t.s.Phone, t.now)
}

// wait takes a job's result if it comes within the hop's deadline.
func (t *turn) wait(j *job) {
	res, ok := j.await(t.deadline)
	if ok {
		t.e.forgetJob(j.id)
		t.apply(res)
		return
	}
	t.e.holdLease(j) // before the session is committed as waiting
	if t.s.State != StateWaiting {
		t.fire(EventWait, args{})
	}
}

// onWaiting handles the waiting screen: 0 leaves (a link Mono still makes
// is kept), anything else checks on the bank again.
func (t *turn) onWaiting(input string) {
	if input == screen.InputBack {
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
	if t.e.heldElsewhere(t.ctx, p.Job) {
		return // another instance is still at it: the waiting screen stays
	}
	t.e.forgetJob(p.Job) // a lease taken over from a lapsed instance is not needed
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
	case p.Kind == workAccount || p.Kind == workReauth || (answersStep(p.Kind) && t.fresh()):
		t.submit(&Pending{Kind: p.Kind, Account: p.Account, Resent: true})
		return
	case p.Kind == workCommit && t.loginFresh():
		t.forget()
		t.recover("")
		return
	case t.s.InviteKind == link.InviteReauth && answersStep(p.Kind):
		// Mono may have used the reauthorisation session the lost step was
		// sent on: a fresh one is opened rather than asking again on it.
		t.forget()
		t.recover("")
		return
	}
	t.forget()
	t.retry(p.Kind)
	t.s.Notice = textNoAnswer
}
