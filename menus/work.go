package menus

//go:generate go tool msgp -file=work.go -o=work_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc"

import (
	"context"
	"errors"
	"time"

	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/reqid"
)

// Kinds of Mono work a session waits for.
const (
	workLogin   = "login"   // open a Mono session if needed, log in with the login form
	workCommit  = "commit"  // answer a 102 with the challenge form
	workAccount = "account" // answer a 101 with the chosen account
	workReauth  = "reauth"  // start a reauthorisation of the account
	workRelogin = "relogin" // answer a reauthorisation that asked for the bank's login again
)

// onMonoSession reports whether work of kind acts on a Mono session
// already open: it cannot outlive that session.
func onMonoSession(kind string) bool { return answersStep(kind) || kind == workAccount }

// guessesSecret reports whether work of kind sends the bank a secret the
// user typed (a password, a code, an answer): a guess, reserved against
// the phone's lockout.
func guessesSecret(kind string) bool { return answersStep(kind) || kind == workLogin }

// answersStep reports whether work of kind answers, with what the user
// typed, a step Mono asked of an open session.
func answersStep(kind string) bool { return kind == workCommit || kind == workRelogin }

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
	chosen      mono.Account // the account at that index
	reauthOf    string       // the account a reauthorisation is for
	customer    *mono.Customer
	requestID   string // the hop's that started the work, for Mono's logs and ours
	// guess, when set, says whether the login's guess was reserved
	// against the phone's lockout (ReserveAttempt): the work opens its
	// Mono session meanwhile, and sends the login only on true.
	guess <-chan bool
}

// errGuessRefused is the result of a login whose guess the phone's
// lockout refused: nothing was sent to the bank.
var errGuessRefused = errors.New("the phone's guesses are spent: no login sent")

// opensSession reports whether work of kind must open a Mono session
// first: a login with no Mono session, or one expired at now.
func opensSession(kind, monoSession string, expires, now time.Time) bool {
	return kind == workLogin && (monoSession == "" || !now.Before(expires))
}

// guessStands waits until the login's guess is reserved (when the work
// was started before its reservation) and reports whether it was.
func (r *request) guessStands(ctx context.Context) bool {
	if r.guess == nil {
		return true
	}
	select {
	case ok := <-r.guess:
		r.guess = nil
		return ok
	case <-ctx.Done():
		return false
	}
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
	r := request{kind: p.Kind, account: p.Account, monoSession: t.s.MonoSession, monoExpires: t.s.MonoExpires, reauthOf: t.s.ReauthOf,
		requestID: reqid.From(t.ctx)}
	if t.s.Bank != nil {
		r.institution = t.s.Bank.ID
	}
	r.method = t.s.Method
	if p.Kind == workAccount && p.Account >= 0 && p.Account < len(t.s.Accounts) {
		r.chosen = t.s.Accounts[p.Account]
	}
	if p.Kind == workLogin {
		r.customer = t.customer()
	}
	r.fields = make(map[string]string, len(t.s.Answers))
	for k, v := range t.s.Answers {
		r.fields[k] = v
	}
	return r
}

// perform does the Mono work: login or commit, and on a 99 the code
// exchange and account details. It touches no session.
func (e *Engine) perform(ctx context.Context, r request, now time.Time) result {
	ctx = reqid.With(ctx, r.requestID)
	res := result{monoSession: r.monoSession, monoExpires: r.monoExpires}
	switch r.kind {
	case workLogin:
		reused := !opensSession(r.kind, r.monoSession, r.monoExpires, now)
		for attempt := 0; attempt < 2; attempt++ {
			if !reused {
				ms, err := e.mono.CreateSession(ctx, mono.SessionRequest{Institution: r.institution, AuthMethod: r.method, Customer: r.customer})
				if err != nil {
					res.err = err
					return res
				}
				res.monoSession, res.monoExpires = ms.ID, expiry(ms.ExpiresAt, now)
			}
			if !r.guessStands(ctx) {
				res.err = errGuessRefused
				return res
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
		res.step, res.err = e.mono.ChooseAccount(ctx, res.monoSession, r.account, r.chosen)
	case workRelogin:
		res.step, res.err = e.mono.Relogin(ctx, res.monoSession, r.fields)
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

// reauth starts a reauthorisation of the account. Mono tries the login
// in the background: 99 means done; 102 that the user must answer a form
// (an OTP, or the bank's login again after a changed password).
func (e *Engine) reauth(ctx context.Context, r request, now time.Time) result {
	var res result
	ra, err := e.mono.Reauthorise(ctx, r.reauthOf)
	if err != nil {
		res.err = err
		return res
	}
	res.monoSession, res.monoExpires, res.institution = ra.Session.ID, expiry(ra.Session.ExpiresAt, now), ra.Session.Institution
	step := ra.Step
	res.step = &step
	if step.ResponseCode == mono.CodeLinked {
		res.accountID = r.reauthOf
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
