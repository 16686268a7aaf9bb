// Package sandbox is an in-process fake of Mono's Partners (Connect) API:
// the institution directory, connect sessions, login and commit steps, the
// code exchange, reauthorisation tokens and account details, answering with
// the same paths, headers and JSON shapes as api.withmono.com.
//
// `go run .` serves Mono from a Sandbox when no real Mono URL is configured,
// and tests point the gateway at one through httptest, so the gateway cannot
// tell it from Mono. Its banks are fixed (see Banks) and its test users (see
// Sandbox.Users) each walk one flow: a plain link, account selection, a
// security question, an OTP, a chain of steps, a slow login, an awkward
// password and a locked account. All state lives in memory; nothing is logged.
//
// With Options.Webhook.URL set, the sandbox also sends Mono's webhooks to
// that URL — account_connected and account_updated when a code is
// exchanged, account_reauthorized and account_updated when a
// reauthorisation completes, and reauthorisation_required on demand (see
// Sandbox.RequireReauth) — in the background, in order, retrying failures.
package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ussdlink/ussdlink/mono"
)

// Defaults for Options left zero, and lifetimes Mono documents.
const (
	DefaultSlowDelay  = 8 * time.Second  // how long user_slow's login takes
	DefaultSessionTTL = 10 * time.Minute // how long a connect session lives
	CodeTTL           = 10 * time.Minute // how long a code or reauth token is valid
)

// Operation names accepted by Sandbox.Calls, one per endpoint.
const (
	OpInstitutions = "institutions" // GET /v1/institutions
	OpSession      = "session"      // POST /v1/connect/session
	OpLogin        = "login"        // POST /v1/connect/login
	OpCommit       = "commit"       // POST /v1/connect/commit
	OpExchange     = "exchange"     // POST /account/auth
	OpReauthorise  = "reauthorise"  // POST /accounts/{id}/reauthorise
	OpAccount      = "account"      // GET /v2/accounts/{id}
)

// Messages Mono answers with.
const (
	msgUnauthorized   = "Unauthorized: invalid secret key"
	msgNoSession      = "Session not found or expired"
	msgNotAllowed     = "Invalid operation or the operation isn't allowed yet."
	msgBadCredentials = "Invalid login credentials"
	msgLocked         = "Your account has been locked by the bank"
	msgBadCode        = "Invalid or expired code"
	msgBadOTP         = "Invalid OTP Sent"
	msgBadAnswer      = "Invalid answer provided"
	msgBadAccount     = "Invalid account selected"
)

// maxBody bounds what the sandbox reads from a request body.
const maxBody = 64 << 10

// Options configures a Sandbox. The zero value is usable.
type Options struct {
	// SecretKey is the value the mono-sec-key header must carry. Empty means
	// any non-empty key is accepted.
	SecretKey string
	// SlowDelay is how long user_slow's login takes; DefaultSlowDelay if zero
	// or negative.
	SlowDelay time.Duration
	// SessionTTL is a connect session's lifetime; DefaultSessionTTL if zero
	// or negative.
	SessionTTL time.Duration
	// Now is the clock for expiries and webhook timestamps; time.Now if nil.
	// The slow login and webhook retries always wait in real time.
	Now func() time.Time
	// Webhook is where and how Mono's webhooks are sent; the zero value
	// sends none. See Sandbox.Close, Sandbox.WaitWebhooks.
	Webhook WebhookOptions
}

// Sandbox is a fake Mono Partners API. It implements http.Handler and is safe
// for concurrent use.
type Sandbox struct {
	key      string
	slow     time.Duration
	ttl      time.Duration
	now      func() time.Time
	banks    []bank
	bankAt   map[string]int // institution id → index in banks
	users    []testUser
	userAt   map[string]int // username → index in users
	instJSON []byte         // GET /v1/institutions, encoded once
	hooks    *hooks         // the webhook sender

	mu       sync.Mutex
	calls    map[string]int
	sessions map[string]*session
	codes    map[string]*grant
	tokens   map[string]*reauthToken
	accounts map[string]*linked
}

// sessionState is where a connect session stands.
type sessionState int

const (
	stateLogin sessionState = iota // waiting for login
	stateBusy                      // a login is in progress
	stateAwait                     // waiting for a commit
	stateDone                      // linked or reauthorised: nothing more to do
)

// session is a connect session.
type session struct {
	id          string
	app         string
	institution int // index in Sandbox.banks
	method      mono.AuthMethod
	expires     time.Time
	ui          mono.UI
	state       sessionState
	user        *testUser
	steps       []stepKind     // still to be committed; steps[0] is awaited
	offered     []mono.Account // the accounts this login found
	chosen      int            // index in offered
	reauth      string         // the account a reauthorisation session is for
}

// grant is an unexchanged code.
type grant struct {
	app         string
	institution int
	method      string
	user        *testUser
	account     mono.Account
	expires     time.Time
}

// reauthToken is an unused reauthorisation token.
type reauthToken struct {
	account string
	expires time.Time
}

// linked is an account id the exchange has issued.
type linked struct {
	id          string
	app         string
	institution int
	method      string
	user        *testUser
	account     mono.Account
}

// New returns a Sandbox with no sessions, codes or linked accounts.
func New(opts Options) *Sandbox {
	s := &Sandbox{
		key:      opts.SecretKey,
		slow:     opts.SlowDelay,
		ttl:      opts.SessionTTL,
		now:      opts.Now,
		banks:    catalogue(),
		bankAt:   map[string]int{},
		userAt:   map[string]int{},
		calls:    map[string]int{},
		sessions: map[string]*session{},
		codes:    map[string]*grant{},
		tokens:   map[string]*reauthToken{},
		accounts: map[string]*linked{},
		hooks:    newHooks(opts.Webhook),
	}
	if s.slow <= 0 {
		s.slow = DefaultSlowDelay
	}
	if s.ttl <= 0 {
		s.ttl = DefaultSessionTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	insts := make([]mono.Institution, len(s.banks))
	for i, b := range s.banks {
		s.bankAt[b.inst.ID] = i
		insts[i] = b.inst
	}
	s.instJSON = encode(insts)
	s.users = testUsers(s.slow)
	for i, u := range s.users {
		s.userAt[u.Username] = i
	}
	return s
}

// Users lists the sandbox's test logins, for documentation and tests.
func (s *Sandbox) Users() []User {
	out := make([]User, len(s.users))
	for i, u := range s.users {
		out[i] = u.User
	}
	return out
}

// Calls reports how many requests with a valid key reached the endpoint
// named op (one of the Op constants), whatever their outcome.
func (s *Sandbox) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// route is one endpoint.
type route struct {
	op     string
	method string
	id     string // the {id} path segment, if any
}

// match finds the endpoint for path.
func match(path string) (route, bool) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	switch path {
	case "/v1/institutions":
		return route{op: OpInstitutions, method: http.MethodGet}, true
	case "/v1/connect/session":
		return route{op: OpSession, method: http.MethodPost}, true
	case "/v1/connect/login":
		return route{op: OpLogin, method: http.MethodPost}, true
	case "/v1/connect/commit":
		return route{op: OpCommit, method: http.MethodPost}, true
	case "/account/auth":
		return route{op: OpExchange, method: http.MethodPost}, true
	}
	if rest, ok := strings.CutPrefix(path, "/accounts/"); ok {
		if id, ok := strings.CutSuffix(rest, "/reauthorise"); ok && id != "" && !strings.Contains(id, "/") {
			return route{op: OpReauthorise, method: http.MethodPost, id: id}, true
		}
	}
	if id, ok := strings.CutPrefix(path, "/v2/accounts/"); ok && id != "" && !strings.Contains(id, "/") {
		return route{op: OpAccount, method: http.MethodGet, id: id}, true
	}
	return route{}, false
}

// ServeHTTP answers one Mono API request.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(r.Header.Get("mono-sec-key")) {
		writeJSON(w, http.StatusUnauthorized, failure{Status: http.StatusUnauthorized, Message: msgUnauthorized})
		return
	}
	rt, ok := match(r.URL.Path)
	if !ok {
		writeJSON(w, http.StatusNotFound, failure{Status: http.StatusNotFound, Message: "Cannot " + r.Method + " " + r.URL.Path})
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", rt.method)
		writeJSON(w, http.StatusMethodNotAllowed, failure{Status: http.StatusMethodNotAllowed, Message: "Method not allowed"})
		return
	}
	s.mu.Lock()
	s.calls[rt.op]++
	s.mu.Unlock()

	switch rt.op {
	case OpInstitutions:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(s.instJSON)
	case OpSession:
		s.createSession(w, r)
	case OpLogin:
		s.login(w, r)
	case OpCommit:
		s.commit(w, r)
	case OpExchange:
		s.exchange(w, r)
	case OpReauthorise:
		s.reauthorise(w, rt.id)
	case OpAccount:
		s.account(w, rt.id)
	}
}

// authorised reports whether key is acceptable.
func (s *Sandbox) authorised(key string) bool {
	if key == "" {
		return false
	}
	if s.key == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(key), []byte(s.key)) == 1
}

// failure is an error answer. ResponseCode appears only on login and commit
// refusals.
type failure struct {
	Status       int    `json:"status"`
	ResponseCode int    `json:"responseCode,omitempty"`
	Message      string `json:"message"`
}

// step is a login or commit answer.
type step struct {
	Status       int    `json:"status"`
	ResponseCode int    `json:"responseCode"`
	Message      string `json:"message,omitempty"`
	Data         any    `json:"data,omitempty"`
}

// codeData is the data of a 99 step.
type codeData struct {
	Code string `json:"code"`
}

// reauthSession is a session created from a reauthorisation token.
type reauthSession struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	mono.Session
}

// badRequest answers 400 with message.
func badRequest(w http.ResponseWriter, message string) {
	writeJSON(w, http.StatusBadRequest, failure{Status: http.StatusBadRequest, Message: message})
}

// refused answers a login refusal: HTTP 400 with responseCode 400.
func refused(w http.ResponseWriter, message string) {
	writeJSON(w, http.StatusBadRequest, failure{Status: http.StatusBadRequest, ResponseCode: mono.CodeRejected, Message: message})
}

// rejectedStep answers a commit the bank refused: HTTP 200, responseCode 400.
func rejectedStep(w http.ResponseWriter, message string) {
	writeJSON(w, http.StatusOK, step{Status: http.StatusOK, ResponseCode: mono.CodeRejected, Message: message})
}

// noSession answers 404 for a missing, unknown or expired session.
func noSession(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, failure{Status: http.StatusNotFound, Message: msgNoSession})
}

// createSession serves POST /v1/connect/session.
func (s *Sandbox) createSession(w http.ResponseWriter, r *http.Request) {
	var req mono.SessionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ReauthToken != "" {
		s.reauthSession(w, req.ReauthToken)
		return
	}
	if strings.TrimSpace(req.App) == "" {
		badRequest(w, "app is required")
		return
	}
	bi, ok := s.bankAt[req.Institution]
	if !ok {
		badRequest(w, "Invalid institution")
		return
	}
	if req.AuthMethod == "" {
		badRequest(w, "auth_method is required")
		return
	}
	method, ok := s.banks[bi].inst.Method(req.AuthMethod)
	if !ok {
		badRequest(w, "Invalid auth method for this institution")
		return
	}
	now := s.now()
	sess := &session{
		id:          "session_" + randomString(10),
		app:         req.App,
		institution: bi,
		method:      method,
		expires:     now.Add(s.ttl),
		ui:          method.UI,
	}
	s.mu.Lock()
	s.sweep(now)
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.sessionView(sess))
}

// reauthSession creates a session from a reauthorisation token, logging in
// in the background: OTP users are asked for their OTP, everyone else is
// reauthorised at once.
func (s *Sandbox) reauthSession(w http.ResponseWriter, token string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[token]
	if !ok || !now.Before(t.expires) {
		badRequest(w, "Invalid or expired reauth token")
		return
	}
	delete(s.tokens, token)
	acct := s.accounts[t.account]
	b := s.banks[acct.institution].inst
	method, _ := b.Method(acct.method)
	sess := &session{
		id:          "session_" + randomString(10),
		app:         acct.app,
		institution: acct.institution,
		method:      method,
		expires:     now.Add(s.ttl),
		user:        acct.user,
		offered:     []mono.Account{acct.account},
		reauth:      acct.id,
	}
	reauth := &mono.Reauth{}
	if acct.user.reauth {
		title := b.Name + " is requesting you to enter your OTP to continue"
		sess.ui = mono.UI{Title: title, Form: []mono.Element{
			{Type: "elements.input", Name: "otp", Hint: "Enter OTP", ContentType: "password", MaxLength: 6},
		}}
		sess.state = stateAwait
		sess.steps = []stepKind{stepOTP}
		reauth.ResponseCode = mono.CodeUserInput
		reauth.Message = title
	} else {
		sess.ui = method.UI
		sess.state = stateDone
		reauth.ResponseCode = mono.CodeLinked
		reauth.Message = "Account reauthorised successfully"
		s.reauthorisedEvents(acct.id)
	}
	s.sweep(now)
	s.sessions[sess.id] = sess
	view := s.sessionView(sess)
	view.Reauth = reauth
	writeJSON(w, http.StatusOK, reauthSession{Status: "successful", Message: "Session created successfully", Session: view})
}

// sessionView is sess as Mono shows it.
func (s *Sandbox) sessionView(sess *session) mono.Session {
	return mono.Session{
		ID:          sess.id,
		App:         sess.app,
		Institution: s.banks[sess.institution].inst.ID,
		AuthMethod:  sess.method.Type,
		ExpiresAt:   sess.expires.UnixMilli(),
		UI:          sess.ui,
	}
}

// lookup returns the live session id names. The caller holds s.mu.
func (s *Sandbox) lookup(id string) (*session, bool) {
	sess, ok := s.sessions[id]
	if !ok {
		return nil, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.sessions, id)
		return nil, false
	}
	return sess, true
}

// login serves POST /v1/connect/login.
func (s *Sandbox) login(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("x-session-id")
	if id == "" {
		noSession(w)
		return
	}
	var body map[string]any
	if !decodeBody(w, r, &body) {
		return
	}

	s.mu.Lock()
	sess, ok := s.lookup(id)
	if !ok {
		s.mu.Unlock()
		noSession(w)
		return
	}
	if sess.state != stateLogin {
		s.mu.Unlock()
		badRequest(w, msgNotAllowed)
		return
	}
	user, message := s.check(sess.ui.Form, body)
	switch {
	case message != "":
		s.mu.Unlock()
		badRequest(w, message)
		return
	case user == nil:
		s.mu.Unlock()
		refused(w, msgBadCredentials)
		return
	case user.locked:
		s.mu.Unlock()
		refused(w, msgLocked)
		return
	}
	if !user.slow {
		defer s.mu.Unlock()
		s.loggedIn(w, sess, user)
		return
	}
	sess.state = stateBusy
	s.mu.Unlock()

	if err := wait(r.Context(), s.slow); err != nil {
		s.mu.Lock()
		if sess.state == stateBusy {
			sess.state = stateLogin
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, failure{Status: http.StatusServiceUnavailable, Message: "Login interrupted"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loggedIn(w, sess, user)
}

// wait sleeps for d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// check validates a login body against form. It returns a message for a
// malformed login, or the user the credentials belong to (nil if none).
func (s *Sandbox) check(form []mono.Element, body map[string]any) (*testUser, string) {
	values := map[string]string{}
	var first string
	for _, e := range form {
		if !e.IsInput() {
			continue
		}
		v, ok := text(body[e.Name])
		if !ok || v == "" {
			return nil, "Missing field: " + e.Name
		}
		values[e.Name] = v
		if first == "" {
			first = e.Name
		}
	}
	i, ok := s.userAt[strings.TrimSpace(values[first])]
	if !ok {
		return nil, ""
	}
	u := &s.users[i]
	if u.locked {
		return u, ""
	}
	for _, e := range form {
		if !e.IsInput() || e.Name == first {
			continue
		}
		switch {
		case e.Name == "pin":
			if values[e.Name] != PIN {
				return nil, ""
			}
		case strings.EqualFold(e.ContentType, "password"):
			if values[e.Name] != u.Password {
				return nil, ""
			}
		}
	}
	return u, ""
}

// loggedIn records a good login on sess and answers with the first step.
// The caller holds s.mu.
func (s *Sandbox) loggedIn(w http.ResponseWriter, sess *session, user *testUser) {
	sess.user = user
	sess.steps = user.steps
	sess.offered = user.accountsAt(s.banks[sess.institution].inst.ID)
	sess.chosen = 0
	sess.state = stateAwait
	s.next(w, sess)
}

// next answers with the step sess awaits, or links it when none is left.
// The caller holds s.mu.
func (s *Sandbox) next(w http.ResponseWriter, sess *session) {
	if len(sess.steps) == 0 {
		sess.state = stateDone
		code := "code_" + randomString(20)
		now := s.now()
		s.sweep(now)
		s.codes[code] = &grant{
			app:         sess.app,
			institution: sess.institution,
			method:      sess.method.Type,
			user:        sess.user,
			account:     sess.offered[sess.chosen],
			expires:     now.Add(CodeTTL),
		}
		writeJSON(w, http.StatusOK, step{Status: http.StatusOK, ResponseCode: mono.CodeLinked, Data: codeData{Code: code}})
		return
	}
	switch sess.steps[0] {
	case stepSelect:
		writeJSON(w, http.StatusOK, step{Status: http.StatusOK, ResponseCode: mono.CodeSelectAccount, Data: sess.offered})
	case stepAnswer:
		writeJSON(w, http.StatusOK, step{Status: http.StatusOK, ResponseCode: mono.CodeUserInput, Data: mono.UI{
			Title: "Kindly Answer Your Security Question",
			Form: []mono.Element{
				{Type: "elements.input", Name: "answer", Hint: "Which city were you born in?", ContentType: "string"},
			},
		}})
	case stepOTP:
		writeJSON(w, http.StatusOK, step{Status: http.StatusOK, ResponseCode: mono.CodeUserInput, Data: mono.UI{
			Title: "Enter OTP",
			Form: []mono.Element{
				{Type: "elements.input", Name: "otp", Hint: "Enter the OTP sent to 080****1234", ContentType: "password", MaxLength: 6},
			},
		}})
	}
}

// commit serves POST /v1/connect/commit.
func (s *Sandbox) commit(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("x-session-id")
	if id == "" {
		noSession(w)
		return
	}
	var body map[string]any
	if !decodeBody(w, r, &body) {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.lookup(id)
	if !ok {
		noSession(w)
		return
	}
	if sess.state != stateAwait || len(sess.steps) == 0 {
		badRequest(w, msgNotAllowed)
		return
	}
	switch sess.steps[0] {
	case stepSelect:
		raw, ok := body["account"]
		if !ok || raw == nil {
			badRequest(w, "Missing field: account")
			return
		}
		i, ok := index(raw)
		if !ok || i < 0 || i >= len(sess.offered) {
			rejectedStep(w, msgBadAccount)
			return
		}
		sess.chosen = i
	case stepAnswer:
		v, ok := text(body["answer"])
		if !ok || strings.TrimSpace(v) == "" {
			badRequest(w, "Missing field: answer")
			return
		}
		if !strings.EqualFold(strings.TrimSpace(v), Answer) {
			rejectedStep(w, msgBadAnswer)
			return
		}
	case stepOTP:
		v, ok := text(body["otp"])
		if !ok || strings.TrimSpace(v) == "" {
			badRequest(w, "Missing field: otp")
			return
		}
		if strings.TrimSpace(v) != OTP {
			rejectedStep(w, msgBadOTP)
			return
		}
	}
	sess.steps = sess.steps[1:]
	s.next(w, sess)
	if sess.state == stateDone && sess.reauth != "" {
		s.reauthorisedEvents(sess.reauth)
	}
}

// exchange serves POST /account/auth.
func (s *Sandbox) exchange(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code any `json:"code"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	code, _ := req.Code.(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.codes[code]
	if !ok || !s.now().Before(g.expires) {
		writeJSON(w, http.StatusBadRequest, struct {
			Message string `json:"message"`
		}{msgBadCode})
		return
	}
	delete(s.codes, code)
	id := accountID(s.banks[g.institution].inst.ID, g.user.Username, g.account.AccountNumber)
	a := &linked{
		id:          id,
		app:         g.app,
		institution: g.institution,
		method:      g.method,
		user:        g.user,
		account:     g.account,
	}
	s.accounts[id] = a
	s.linkedEvents(a)
	writeJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}

// accountID is the id of an account: the same whenever the same account at
// the same bank is linked again.
func accountID(institution, username, number string) string {
	sum := sha256.Sum256([]byte("mono-sandbox-account|" + institution + "|" + username + "|" + number))
	return hex.EncodeToString(sum[:12])
}

// reauthorise serves POST /accounts/{id}/reauthorise.
func (s *Sandbox) reauthorise(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[id]; !ok {
		writeJSON(w, http.StatusNotFound, failure{Status: http.StatusNotFound, Message: "Account not found"})
		return
	}
	now := s.now()
	s.sweep(now)
	token := randomString(20)
	s.tokens[token] = &reauthToken{account: id, expires: now.Add(CodeTTL)}
	writeJSON(w, http.StatusOK, struct {
		Token string `json:"token"`
	}{token})
}

// detailsAccount is data.account in GET /v2/accounts/{id}.
type detailsAccount struct {
	mono.AccountDetails
	BVN *string `json:"bvn"`
}

// detailsData is data in GET /v2/accounts/{id}, and in the account_updated
// webhook.
type detailsData struct {
	Account detailsAccount `json:"account"`
	Meta    struct {
		DataStatus string `json:"data_status"`
		AuthMethod string `json:"auth_method"`
	} `json:"meta"`
}

// details is GET /v2/accounts/{id}.
type details struct {
	Status    string      `json:"status"`
	Message   string      `json:"message"`
	Timestamp string      `json:"timestamp"`
	Data      detailsData `json:"data"`
}

// detailsData describes a as account details do. The caller holds s.mu.
func (s *Sandbox) detailsData(a *linked) detailsData {
	b := s.banks[a.institution]
	var d detailsData
	d.Account.AccountDetails = mono.AccountDetails{
		ID:            a.id,
		Name:          a.account.Name,
		AccountNumber: a.account.AccountNumber,
		Currency:      a.account.Currency,
		Balance:       a.account.Balance,
		Type:          a.account.Type,
		Institution:   mono.DetailInstitution{Name: b.inst.Name, BankCode: b.code, Type: b.inst.Type},
	}
	d.Meta.DataStatus = "AVAILABLE"
	d.Meta.AuthMethod = a.method
	return d
}

// account serves GET /v2/accounts/{id}.
func (s *Sandbox) account(w http.ResponseWriter, id string) {
	s.mu.Lock()
	a, ok := s.accounts[id]
	var d details
	if ok {
		d.Status = "successful"
		d.Message = "Request was succesfully completed"
		d.Timestamp = s.now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
		d.Data = s.detailsData(a)
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, failure{Status: http.StatusNotFound, Message: "Account not found"})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// sweep forgets expired sessions, codes and tokens. The caller holds s.mu.
func (s *Sandbox) sweep(now time.Time) {
	for id, sess := range s.sessions {
		if !now.Before(sess.expires) && sess.state != stateBusy {
			delete(s.sessions, id)
		}
	}
	for c, g := range s.codes {
		if !now.Before(g.expires) {
			delete(s.codes, c)
		}
	}
	for t, tok := range s.tokens {
		if !now.Before(tok.expires) {
			delete(s.tokens, t)
		}
	}
}

// decodeBody reads a JSON body into v, answering 400 and returning false if
// it is not one JSON value.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, failure{Status: http.StatusRequestEntityTooLarge, Message: "Request body too large"})
			return false
		}
		badRequest(w, "Could not read request body")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		badRequest(w, "Invalid JSON body")
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		badRequest(w, "Invalid JSON body")
		return false
	}
	return true
}

// text is a form value as a string: JSON strings as they are, numbers as
// written. Anything else is not a value.
func text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// index is an account index sent as a number or a numeric string.
func index(v any) (int, bool) {
	s, ok := text(v)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSpace(s))
	return i, err == nil
}

// encode marshals v without escaping HTML characters.
func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(`{"status":500,"message":"Internal server error"}` + "\n")
	}
	return buf.Bytes()
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(encode(v))
}

// alphabet is what random ids, codes and tokens are drawn from.
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters from alphabet, drawn with crypto/rand.
func randomString(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			// 248 is the largest multiple of 62 below 256: reject above it
			// so every character is equally likely.
			if b < 248 && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
