// Package sandbox is an in-process fake of Mono's Partners (Connect) API,
// both versions on one handler: the institution directory, connect sessions,
// login and commit steps, the code exchange, reauthorisation, sandbox
// credentials, unlinking and account details, answering with the same paths,
// headers and JSON shapes as api.withmono.com.
//
// v1 is the seeds' API: GET /v1/institutions, POST /v1/connect/session,
// /v1/connect/login and /v1/connect/commit, POST /account/auth and
// POST /accounts/{id}/reauthorise, with bare answers. v2 is Mono's current
// documentation: GET /v3/institutions, POST /v2/connect/session (with a
// customer and a scope), /v2/connect/login, /v2/connect/commit,
// POST /v2/accounts/auth, POST /v2/connect/reauth/session and
// /v2/connect/reauth/login, GET /v2/connect/sandbox and
// POST /v2/accounts/{id}/unlink, every answer in the v2 envelope
// {status:"successful"|"failed", message, timestamp, data}. GET
// /v2/accounts/{id} serves both. The two share users, banks, codes and
// accounts: a code from either exchanges on either, and an account linked
// through one is the same account, with the same id, through the other.
//
// `go run .` serves Mono from a Sandbox when no real Mono URL is configured,
// and tests point the gateway at one through httptest, so the gateway cannot
// tell it from Mono. Its banks are fixed (see Banks) and its test users (see
// Sandbox.Users) each walk one flow: a plain link, account selection, a
// security question, an OTP, a chain of steps, a slow login, an awkward
// password, a locked account and a reauthorisation that needs the bank login
// again. All state lives in memory; nothing is logged.
//
// With Options.Webhook.URL set, the sandbox also sends Mono's webhooks to
// that URL — account_connected and account_updated when a code is
// exchanged, account_reauthorized and account_updated when a
// reauthorisation completes, account_unlinked when an account is unlinked,
// and reauthorisation_required and sync_failed on demand (see
// Sandbox.RequireReauth, Sandbox.FailSync) — in the background, in order,
// retrying failures.
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
	"math"
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

// Operation names accepted by Sandbox.Calls, one per endpoint. A v2
// endpoint counts under the name of its v1 counterpart, so a test reads the
// same counts whichever version the gateway speaks.
const (
	OpInstitutions       = "institutions"        // GET /v1/institutions, GET /v3/institutions
	OpSession            = "session"             // POST /v1/connect/session, /v2/connect/session
	OpLogin              = "login"               // POST /v1/connect/login, /v2/connect/login
	OpCommit             = "commit"              // POST /v1/connect/commit, /v2/connect/commit
	OpExchange           = "exchange"            // POST /account/auth, /v2/accounts/auth
	OpReauthorise        = "reauthorise"         // POST /accounts/{id}/reauthorise (v1 only)
	OpAccount            = "account"             // GET /v2/accounts/{id} (both versions)
	OpReauthSession      = "reauth_session"      // POST /v2/connect/reauth/session (v2 only)
	OpReauthLogin        = "reauth_login"        // POST /v2/connect/reauth/login (v2 only)
	OpSandboxCredentials = "sandbox_credentials" // GET /v2/connect/sandbox (v2 only)
	OpUnlink             = "unlink"              // POST /v2/accounts/{id}/unlink (v2 only)
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
	msgNoAccount      = "Account not found"
	msgInterrupted    = "Login interrupted"
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

	mu        sync.Mutex
	calls     map[string]int
	sessions  map[string]*session
	codes     map[string]*grant
	tokens    map[string]*reauthToken
	accounts  map[string]*linked
	customers []Customer // of v2 sessions, oldest first, at most maxCustomers
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
	version     int // 1 or 2: the API that created it, which picks its codes' format
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
	customer    *Customer      // whom a v2 session is for; nil for v1
}

// grant is an unexchanged code.
type grant struct {
	app         string
	institution int
	method      string
	user        *testUser
	account     mono.Account
	customer    *Customer
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
	customer    *Customer // the v2 customer it was linked for, if any
	request     string    // meta.data_request_id: the latest data fetch
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
	v2     bool   // answers in the v2 envelope
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
	case "/v3/institutions":
		return route{op: OpInstitutions, method: http.MethodGet, v2: true}, true
	case "/v2/connect/session":
		return route{op: OpSession, method: http.MethodPost, v2: true}, true
	case "/v2/connect/login":
		return route{op: OpLogin, method: http.MethodPost, v2: true}, true
	case "/v2/connect/commit":
		return route{op: OpCommit, method: http.MethodPost, v2: true}, true
	case "/v2/accounts/auth":
		return route{op: OpExchange, method: http.MethodPost, v2: true}, true
	case "/v2/connect/reauth/session":
		return route{op: OpReauthSession, method: http.MethodPost, v2: true}, true
	case "/v2/connect/reauth/login":
		return route{op: OpReauthLogin, method: http.MethodPost, v2: true}, true
	case "/v2/connect/sandbox":
		return route{op: OpSandboxCredentials, method: http.MethodGet, v2: true}, true
	}
	if rest, ok := strings.CutPrefix(path, "/accounts/"); ok {
		if id, ok := strings.CutSuffix(rest, "/reauthorise"); ok && id != "" && !strings.Contains(id, "/") {
			return route{op: OpReauthorise, method: http.MethodPost, id: id}, true
		}
	}
	if rest, ok := strings.CutPrefix(path, "/v2/accounts/"); ok {
		if id, ok := strings.CutSuffix(rest, "/unlink"); ok && id != "" && !strings.Contains(id, "/") {
			return route{op: OpUnlink, method: http.MethodPost, id: id, v2: true}, true
		}
		// GET /v2/accounts/{id} keeps the failure shapes it has always had:
		// both versions use it.
		if rest != "" && !strings.Contains(rest, "/") {
			return route{op: OpAccount, method: http.MethodGet, id: rest}, true
		}
	}
	return route{}, false
}

// ServeHTTP answers one Mono API request.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, known := match(r.URL.Path)
	if !s.authorised(r.Header.Get("mono-sec-key")) {
		if rt.v2 {
			s.failV2(w, http.StatusUnauthorized, 0, msgUnauthorized)
			return
		}
		writeJSON(w, http.StatusUnauthorized, failure{Status: http.StatusUnauthorized, Message: msgUnauthorized})
		return
	}
	if !known {
		writeJSON(w, http.StatusNotFound, failure{Status: http.StatusNotFound, Message: "Cannot " + r.Method + " " + r.URL.Path})
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", rt.method)
		if rt.v2 {
			s.failV2(w, http.StatusMethodNotAllowed, 0, "Method not allowed")
			return
		}
		writeJSON(w, http.StatusMethodNotAllowed, failure{Status: http.StatusMethodNotAllowed, Message: "Method not allowed"})
		return
	}
	s.mu.Lock()
	s.calls[rt.op]++
	s.mu.Unlock()

	if rt.v2 {
		s.serveV2(w, r, rt)
		return
	}
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

// outcomeKind is what a login, commit or reauthorisation step came to,
// before a version's handler writes it in its own shape.
type outcomeKind int

const (
	outStep        outcomeKind = iota // a step: responseCode 99, 101 or 102
	outNoSession                      // the session is missing, unknown or expired
	outBadRequest                     // the body lacks what is awaited, or nothing is awaited
	outRefused                        // the bank refused the login
	outRejected                       // the bank refused a committed value
	outInterrupted                    // the caller gave up on a slow login
)

// outcome is the answer to a login, commit or reauthorisation step.
type outcome struct {
	kind     outcomeKind
	message  string         // why, for everything but outStep
	rc       int            // outStep: mono.CodeLinked, CodeSelectAccount or CodeUserInput
	code     string         // rc 99
	accounts []mono.Account // rc 101
	form     *mono.UI       // rc 102
	reauth   bool           // the session reauthorises a linked account
}

// failed is an outcome of kind with message.
func failed(kind outcomeKind, message string) outcome {
	return outcome{kind: kind, message: message}
}

// writeV1 answers o in v1's shapes.
func writeV1(w http.ResponseWriter, o outcome) {
	switch o.kind {
	case outNoSession:
		noSession(w)
	case outBadRequest:
		badRequest(w, o.message)
	case outRefused:
		refused(w, o.message)
	case outRejected:
		rejectedStep(w, o.message)
	case outInterrupted:
		writeJSON(w, http.StatusServiceUnavailable, failure{Status: http.StatusServiceUnavailable, Message: o.message})
	case outStep:
		var data any
		switch o.rc {
		case mono.CodeLinked:
			data = codeData{Code: o.code}
		case mono.CodeSelectAccount:
			data = o.accounts
		case mono.CodeUserInput:
			data = *o.form
		}
		writeJSON(w, http.StatusOK, step{Status: http.StatusOK, ResponseCode: o.rc, Data: data})
	}
}

// newSessionID returns a fresh session id in the format of API version v:
// "session_" and 10 mixed-case alphanumerics on v1, "sess_" and 24
// lowercase ones on v2.
func newSessionID(v int) string {
	if v == 2 {
		return "sess_" + randomFrom(lowerAlphabet, 24)
	}
	return "session_" + randomString(10)
}

// newCode returns a fresh code in the format of API version v: "code_" and
// 20 mixed-case alphanumerics on v1, 24 lowercase ones on v2.
func newCode(v int) string {
	if v == 2 {
		return "code_" + randomFrom(lowerAlphabet, 24)
	}
	return "code_" + randomString(20)
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
		id:          newSessionID(1),
		version:     1,
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

// startReauth opens a reauthorisation session of API version v for a,
// logging in in the background as Mono does: OTP users are asked for their
// OTP, relogin users for the bank's login form, and everyone else needs
// nothing (the session is then done). The caller holds s.mu and stores the
// session if it awaits anything.
func (s *Sandbox) startReauth(a *linked, now time.Time, v int) *session {
	b := s.banks[a.institution].inst
	method, _ := b.Method(a.method)
	sess := &session{
		id:          newSessionID(v),
		version:     v,
		app:         a.app,
		institution: a.institution,
		method:      method,
		expires:     now.Add(s.ttl),
		user:        a.user,
		offered:     []mono.Account{a.account},
		reauth:      a.id,
		customer:    a.customer,
	}
	switch {
	case a.user.reauth:
		sess.ui = mono.UI{Title: b.Name + " is requesting you to enter your OTP to continue", Form: []mono.Element{
			{Type: "elements.input", Name: "otp", Hint: "Enter OTP", ContentType: "password", MaxLength: 6},
		}}
		sess.state = stateAwait
		sess.steps = []stepKind{stepOTP}
	case a.user.relogin:
		sess.ui = method.UI
		sess.state = stateAwait
		sess.steps = []stepKind{stepRelogin}
	default:
		sess.ui = method.UI
		sess.state = stateDone
	}
	return sess
}

// reloginMessage is what a reauthorisation needing the bank login says.
func reloginMessage(bank string) string {
	return bank + " needs you to log in again to continue"
}

// reauthSession creates a session from a reauthorisation token, logging in
// in the background (see startReauth).
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
	acct, ok := s.accounts[t.account]
	if !ok { // unlinked since: Unlink drops its tokens, so this is a guard
		badRequest(w, "Invalid or expired reauth token")
		return
	}
	sess := s.startReauth(acct, now, 1)
	reauth := &mono.Reauth{}
	switch {
	case len(sess.steps) > 0 && sess.steps[0] == stepRelogin:
		reauth.ResponseCode = mono.CodeUserInput
		reauth.Message = reloginMessage(s.banks[acct.institution].inst.Name)
	case len(sess.steps) > 0:
		reauth.ResponseCode = mono.CodeUserInput
		reauth.Message = sess.ui.Title
	default:
		reauth.ResponseCode = mono.CodeLinked
		reauth.Message = "Account reauthorised successfully"
		s.reauthorised(acct.id)
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
	writeV1(w, s.doLogin(r.Context(), id, body))
}

// doLogin logs in to session id with body, whichever version asked. The
// slow user's login waits without holding s.mu, unless ctx ends first.
func (s *Sandbox) doLogin(ctx context.Context, id string, body map[string]any) outcome {
	s.mu.Lock()
	sess, ok := s.lookup(id)
	if !ok {
		s.mu.Unlock()
		return failed(outNoSession, msgNoSession)
	}
	if sess.state != stateLogin {
		s.mu.Unlock()
		return failed(outBadRequest, msgNotAllowed)
	}
	user, message := s.check(sess.ui.Form, body)
	switch {
	case message != "":
		s.mu.Unlock()
		return failed(outBadRequest, message)
	case user == nil:
		s.mu.Unlock()
		return failed(outRefused, msgBadCredentials)
	case user.locked:
		s.mu.Unlock()
		return failed(outRefused, msgLocked)
	}
	if !user.slow {
		defer s.mu.Unlock()
		return s.loggedIn(sess, user)
	}
	sess.state = stateBusy
	s.mu.Unlock()

	if err := wait(ctx, s.slow); err != nil {
		s.mu.Lock()
		if sess.state == stateBusy {
			sess.state = stateLogin
		}
		s.mu.Unlock()
		return failed(outInterrupted, msgInterrupted)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loggedIn(sess, user)
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
func (s *Sandbox) loggedIn(sess *session, user *testUser) outcome {
	sess.user = user
	sess.steps = user.steps
	sess.offered = user.accountsAt(s.banks[sess.institution].inst.ID)
	sess.chosen = 0
	sess.state = stateAwait
	return s.next(sess)
}

// answerForm is the security question the bank asks after a login.
func answerForm() *mono.UI {
	return &mono.UI{Title: "Kindly Answer Your Security Question", Form: []mono.Element{
		{Type: "elements.input", Name: "answer", Hint: "Which city were you born in?", ContentType: "string"},
	}}
}

// otpForm is the OTP the bank asks for after a login.
func otpForm() *mono.UI {
	return &mono.UI{Title: "Enter OTP", Form: []mono.Element{
		{Type: "elements.input", Name: "otp", Hint: "Enter the OTP sent to 080****1234", ContentType: "password", MaxLength: 6},
	}}
}

// next is the step sess awaits, or the code that links it when none is
// left. The caller holds s.mu.
func (s *Sandbox) next(sess *session) outcome {
	o := outcome{kind: outStep, reauth: sess.reauth != ""}
	if len(sess.steps) == 0 {
		sess.state = stateDone
		o.rc = mono.CodeLinked
		o.code = s.issue(sess)
		return o
	}
	switch sess.steps[0] {
	case stepSelect:
		o.rc, o.accounts = mono.CodeSelectAccount, sess.offered
	case stepAnswer:
		o.rc, o.form = mono.CodeUserInput, answerForm()
	case stepOTP:
		o.rc, o.form = mono.CodeUserInput, otpForm()
	case stepRelogin:
		o.rc, o.form = mono.CodeUserInput, cloneUI(sess.method.UI)
	}
	return o
}

// cloneUI is a copy of ui that shares no slice with it.
func cloneUI(ui mono.UI) *mono.UI {
	return &mono.UI{Title: ui.Title, Form: append([]mono.Element(nil), ui.Form...)}
}

// issue stores a code for the account sess chose, in the format of the
// version that created sess. The caller holds s.mu.
func (s *Sandbox) issue(sess *session) string {
	code := newCode(sess.version)
	now := s.now()
	s.sweep(now)
	s.codes[code] = &grant{
		app:         sess.app,
		institution: sess.institution,
		method:      sess.method.Type,
		user:        sess.user,
		account:     sess.offered[sess.chosen],
		customer:    sess.customer,
		expires:     now.Add(CodeTTL),
	}
	return code
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
	writeV1(w, s.commitStep(sess, body, 1))
}

// commitStep answers the step sess awaits with body, as API version v
// reads it: v2 also takes the account by accountNumber, and goes on to the
// next awaited step when body carries its field too (the documented sample
// sends an account number and an OTP at once). When the last step of a
// reauthorisation is answered, its webhooks go out. The caller holds s.mu.
func (s *Sandbox) commitStep(sess *session, body map[string]any, v int) outcome {
	if sess.state != stateAwait || len(sess.steps) == 0 {
		return failed(outBadRequest, msgNotAllowed)
	}
	for {
		if o, ok := s.take(sess, body, v); !ok {
			return o
		}
		sess.steps = sess.steps[1:]
		if v == 1 || len(sess.steps) == 0 || !carries(sess.steps[0], body) {
			break
		}
	}
	o := s.next(sess)
	if sess.state == stateDone && sess.reauth != "" {
		s.reauthorised(sess.reauth)
	}
	return o
}

// carries reports whether body holds a value for step k.
func carries(k stepKind, body map[string]any) bool {
	has := func(name string) bool { return body[name] != nil }
	switch k {
	case stepSelect:
		return has("account") || has("accountNumber")
	case stepAnswer:
		return has("answer")
	case stepOTP:
		return has("otp")
	}
	return false
}

// take checks body against the step sess awaits, recording an account
// choice. It returns the refusal and false if body does not answer it.
func (s *Sandbox) take(sess *session, body map[string]any, v int) (outcome, bool) {
	switch sess.steps[0] {
	case stepSelect:
		i, o, ok := s.chosenAccount(sess, body, v)
		if !ok {
			return o, false
		}
		sess.chosen = i
	case stepAnswer:
		val, ok := text(body["answer"])
		if !ok || strings.TrimSpace(val) == "" {
			return failed(outBadRequest, "Missing field: answer"), false
		}
		if !strings.EqualFold(strings.TrimSpace(val), Answer) {
			return failed(outRejected, msgBadAnswer), false
		}
	case stepOTP:
		val, ok := text(body["otp"])
		if !ok || strings.TrimSpace(val) == "" {
			return failed(outBadRequest, "Missing field: otp"), false
		}
		if strings.TrimSpace(val) != OTP {
			return failed(outRejected, msgBadOTP), false
		}
	case stepRelogin:
		user, message := s.check(sess.method.UI.Form, body)
		if message != "" {
			return failed(outBadRequest, message), false
		}
		if user == nil || user != sess.user {
			return failed(outRejected, msgBadCredentials), false
		}
	}
	return outcome{}, true
}

// chosenAccount is the index of the account body picks from those sess
// offered: by index in "account" on every version; on v2 also by number in
// "accountNumber", or in "account" when it is one of the numbers offered.
func (s *Sandbox) chosenAccount(sess *session, body map[string]any, v int) (int, outcome, bool) {
	byNumber := func(raw any) (int, bool) {
		n, ok := text(raw)
		if !ok {
			return 0, false
		}
		for i, a := range sess.offered {
			if a.AccountNumber == strings.TrimSpace(n) {
				return i, true
			}
		}
		return 0, false
	}
	if v == 2 {
		if raw := body["accountNumber"]; raw != nil {
			if i, ok := byNumber(raw); ok {
				return i, outcome{}, true
			}
			return 0, failed(outRejected, msgBadAccount), false
		}
	}
	raw, ok := body["account"]
	if !ok || raw == nil {
		if v == 2 {
			return 0, failed(outBadRequest, "Missing field: accountNumber"), false
		}
		return 0, failed(outBadRequest, "Missing field: account"), false
	}
	if v == 2 {
		if i, ok := byNumber(raw); ok {
			return i, outcome{}, true
		}
	}
	i, ok := index(raw)
	if !ok || i < 0 || i >= len(sess.offered) {
		return 0, failed(outRejected, msgBadAccount), false
	}
	return i, outcome{}, true
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
	id, ok := s.redeem(code)
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusBadRequest, struct {
			Message string `json:"message"`
		}{msgBadCode})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}

// redeem exchanges code for the account id it links, once, within CodeTTL,
// recording the account and queuing its webhooks. A relinked account keeps
// the customer it had when the new code names none. The caller holds s.mu.
func (s *Sandbox) redeem(code string) (string, bool) {
	g, ok := s.codes[code]
	if !ok || !s.now().Before(g.expires) {
		return "", false
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
		customer:    g.customer,
		request:     newDataRequestID(),
	}
	if prev, ok := s.accounts[id]; ok && a.customer == nil {
		a.customer = prev.customer
	}
	s.accounts[id] = a
	s.linkedEvents(a)
	return id, true
}

// newDataRequestID is a fresh meta.data_request_id: 12 uppercase
// alphanumerics, as Mono shows them.
func newDataRequestID() string {
	return randomFrom(upperAlphabet, 12)
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
		writeJSON(w, http.StatusNotFound, failure{Status: http.StatusNotFound, Message: msgNoAccount})
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

// reauthorised records that the account id names was logged in again —
// a fresh data fetch — and queues its webhooks. The caller holds s.mu.
func (s *Sandbox) reauthorised(id string) {
	if a, ok := s.accounts[id]; ok {
		a.request = newDataRequestID()
	}
	s.reauthorisedEvents(id)
}

// detailsAccount is data.account in GET /v2/accounts/{id}.
type detailsAccount struct {
	mono.AccountDetails
	BVN *string `json:"bvn"`
}

// idRef is an object naming something by id.
type idRef struct {
	ID string `json:"id"`
}

// detailsMeta is data.meta in GET /v2/accounts/{id}.
type detailsMeta struct {
	DataStatus    string   `json:"data_status"`
	AuthMethod    string   `json:"auth_method"`
	DataRequestID string   `json:"data_request_id"`
	RetrievedData []string `json:"retrieved_data"`
}

// detailsData is data in GET /v2/accounts/{id}, and in the account_updated
// webhook. Customer appears for accounts linked through a v2 session.
type detailsData struct {
	Account  detailsAccount `json:"account"`
	Customer *idRef         `json:"customer,omitempty"`
	Meta     detailsMeta    `json:"meta"`
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
	if a.customer != nil {
		d.Customer = &idRef{ID: a.customer.ID}
	}
	d.Meta = detailsMeta{
		DataStatus:    "AVAILABLE",
		AuthMethod:    a.method,
		DataRequestID: a.request,
		RetrievedData: []string{"identity", "balance", "transactions"},
	}
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
		d.Timestamp = s.stamp()
		d.Data = s.detailsData(a)
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, failure{Status: http.StatusNotFound, Message: msgNoAccount})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// stamp is the time now as Mono's answers and webhooks write it: ISO 8601
// in UTC with milliseconds.
func (s *Sandbox) stamp() string {
	return s.now().UTC().Format(webhookTimestampLayout)
}

// kobo is a balance in naira as an integer number of kobo, as v2 gives it.
func kobo(naira float64) int64 {
	return int64(math.Round(naira * 100))
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
	if status, message := readBody(w, r, v); status != 0 {
		writeJSON(w, status, failure{Status: status, Message: message})
		return false
	}
	return true
}

// readBody reads a JSON body into v. If it is not one JSON value, it
// returns the HTTP status and message to answer with; otherwise 0.
func readBody(w http.ResponseWriter, r *http.Request, v any) (int, string) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, "Request body too large"
		}
		return http.StatusBadRequest, "Could not read request body"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, "Invalid JSON body"
	}
	if _, err := dec.Token(); err != io.EOF {
		return http.StatusBadRequest, "Invalid JSON body"
	}
	return 0, ""
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

// Alphabets random ids, codes and tokens are drawn from.
const (
	alphabet      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	lowerAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	upperAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

// randomString returns n characters from alphabet, drawn with crypto/rand.
func randomString(n int) string {
	return randomFrom(alphabet, n)
}

// randomFrom returns n characters from chars (at most 256 of them), each
// equally likely, drawn with crypto/rand.
func randomFrom(chars string, n int) string {
	// The largest multiple of len(chars) up to 256: bytes at or above it
	// are rejected so every character is equally likely.
	limit := 256 - 256%len(chars)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, chars[int(b)%len(chars)])
			}
		}
	}
	return string(out)
}
