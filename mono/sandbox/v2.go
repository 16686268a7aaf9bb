package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/ussdlink/ussdlink/mono"
)

// maxCustomers bounds what SessionCustomers remembers, so a long-running
// sandbox does not grow without limit.
const maxCustomers = 1000

// Customer is whom a v2 connect session was opened for: the name and email
// of the customer object POST /v2/connect/session received, and the id the
// sandbox gives that customer (the same for the same email, in any case),
// which account details show as data.customer.id.
type Customer struct {
	ID    string
	Name  string
	Email string
}

// Customer reports the customer a linked account was linked for through a
// v2 session, so tests can check the gateway sent one. ok is false for an
// unknown account and for one only ever linked through v1, which names no
// customer.
func (s *Sandbox) Customer(accountID string) (name, email string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, found := s.accounts[accountID]
	if !found || a.customer == nil {
		return "", "", false
	}
	return a.customer.Name, a.customer.Email, true
}

// SessionCustomers lists the customers of the v2 sessions created so far,
// oldest first (at most the latest 1000), including sessions that never
// linked anything, so tests can check what the gateway sent even when the
// link went no further.
func (s *Sandbox) SessionCustomers() []Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Customer(nil), s.customers...)
}

// customerID is the id of the customer with email.
func customerID(email string) string {
	sum := sha256.Sum256([]byte("mono-sandbox-customer|" + strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:12])
}

// envelopeV2 is a v2 answer: {status, message, timestamp, responseCode?, data}.
// ResponseCode is top-level only on login and commit answers and on
// refusals of a step.
type envelopeV2 struct {
	Status       string `json:"status"`
	Message      string `json:"message"`
	Timestamp    string `json:"timestamp"`
	ResponseCode int    `json:"responseCode,omitempty"`
	Data         any    `json:"data"`
}

// okV2 answers 200 with a successful v2 envelope.
func (s *Sandbox) okV2(w http.ResponseWriter, message string, rc int, data any) {
	writeJSON(w, http.StatusOK, envelopeV2{Status: "successful", Message: message, Timestamp: s.stamp(), ResponseCode: rc, Data: data})
}

// failV2 answers status with a failed v2 envelope, data null; rc, if not
// zero, is its top-level responseCode.
func (s *Sandbox) failV2(w http.ResponseWriter, status, rc int, message string) {
	writeJSON(w, status, envelopeV2{Status: "failed", Message: message, Timestamp: s.stamp(), ResponseCode: rc, Data: nil})
}

// decodeV2 reads a JSON body into v, answering with a failed v2 envelope
// (with responseCode rc if the status is 400 and rc is not zero) and
// returning false if it is not one JSON value.
func (s *Sandbox) decodeV2(w http.ResponseWriter, r *http.Request, v any, rc int) bool {
	status, message := readBody(w, r, v)
	if status == 0 {
		return true
	}
	if status != http.StatusBadRequest {
		rc = 0
	}
	s.failV2(w, status, rc, message)
	return false
}

// serveV2 answers a v2 endpoint; the key and method have been checked.
func (s *Sandbox) serveV2(w http.ResponseWriter, r *http.Request, rt route) {
	switch rt.op {
	case OpInstitutions:
		s.institutionsV3(w, r)
	case OpSession:
		s.createSessionV2(w, r)
	case OpLogin:
		s.loginV2(w, r)
	case OpCommit:
		s.commitV2(w, r)
	case OpExchange:
		s.exchangeV2(w, r)
	case OpReauthSession:
		s.reauthSessionV2(w, r)
	case OpReauthLogin:
		s.reauthLoginV2(w, r)
	case OpSandboxCredentials:
		s.sandboxCredentials(w, r)
	case OpUnlink:
		s.unlinkV2(w, rt.id)
	}
}

// institutionV3 is one bank in GET /v3/institutions.
type institutionV3 struct {
	ID           string         `json:"_id"`
	Name         string         `json:"name"`
	Type         string         `json:"type"`
	Icon         string         `json:"icon"`
	Identifier   string         `json:"identifier"`
	NIPCode      string         `json:"nip_code"`
	Country      string         `json:"country"`
	PrimaryColor string         `json:"primary_color"`
	Scope        []scopeV3      `json:"scope"`
	AuthMethods  []authMethodV3 `json:"auth_methods"`
}

// scopeV3 is one entry of an institution's scope list.
type scopeV3 struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// authMethodV3 is an auth method as v3 lists it: no name or _id.
type authMethodV3 struct {
	Type string  `json:"type"`
	UI   mono.UI `json:"ui"`
}

// institutionsV3 serves GET /v3/institutions. scope, when given, must be
// financial_data; bank_code keeps the banks whose nip_code it is;
// auth_method keeps the banks offering it, each listing only that method.
func (s *Sandbox) institutionsV3(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if scope := q.Get("scope"); scope != "" && scope != mono.ScopeFinancialData {
		s.failV2(w, http.StatusBadRequest, 0, "Invalid scope: only "+mono.ScopeFinancialData+" is supported")
		return
	}
	code := strings.TrimSpace(q.Get("bank_code"))
	method := strings.TrimSpace(q.Get("auth_method"))
	out := make([]institutionV3, 0, len(s.banks))
	for _, b := range s.banks {
		if code != "" && b.code != code {
			continue
		}
		var methods []authMethodV3
		for _, m := range b.inst.AuthMethods {
			if method == "" || m.Type == method {
				methods = append(methods, authMethodV3{Type: m.Type, UI: *cloneUI(m.UI)})
			}
		}
		if len(methods) == 0 {
			continue
		}
		out = append(out, institutionV3{
			ID:           b.inst.ID,
			Name:         b.inst.Name,
			Type:         b.inst.Type,
			Icon:         b.inst.Icon,
			Identifier:   b.inst.Identifier,
			NIPCode:      b.code,
			Country:      b.inst.Country,
			PrimaryColor: b.inst.Color,
			Scope:        []scopeV3{{Name: "Financial Data", Type: mono.ScopeFinancialData}},
			AuthMethods:  methods,
		})
	}
	s.okV2(w, "Request completed successfully", 0, out)
}

// sessionV2 is data.session of a v2 session answer.
type sessionV2 struct {
	ID          string    `json:"id"`
	Scope       string    `json:"scope"`
	ExpiresAt   int64     `json:"expiresAt"` // epoch milliseconds
	Institution instRefV2 `json:"institution"`
}

// instRefV2 is an institution as a v2 session names it.
type instRefV2 struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Identifier string `json:"identifier"`
}

// sessionViewV2 is sess as a v2 answer shows it.
func (s *Sandbox) sessionViewV2(sess *session) *sessionV2 {
	b := s.banks[sess.institution].inst
	return &sessionV2{
		ID:          sess.id,
		Scope:       mono.ScopeFinancialData,
		ExpiresAt:   sess.expires.UnixMilli(),
		Institution: instRefV2{ID: b.ID, Name: b.Name, Identifier: b.Identifier},
	}
}

// sessionDataV2 is data of POST /v2/connect/session.
type sessionDataV2 struct {
	Session *sessionV2 `json:"session"`
	UI      *mono.UI   `json:"ui"`
}

// createSessionV2 serves POST /v2/connect/session.
func (s *Sandbox) createSessionV2(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Institution string `json:"institution"`
		AuthMethod  string `json:"auth_method"`
		Scope       string `json:"scope"`
		Customer    *struct {
			Name  string `json:"name"`
			Email string `json:"email"`
		} `json:"customer"`
	}
	if !s.decodeV2(w, r, &req, 0) {
		return
	}
	fail := func(message string) { s.failV2(w, http.StatusBadRequest, 0, message) }
	if req.Institution == "" {
		fail("institution is required")
		return
	}
	bi, ok := s.bankAt[req.Institution]
	if !ok {
		fail("Invalid institution")
		return
	}
	if req.AuthMethod == "" {
		fail("auth_method is required")
		return
	}
	method, ok := s.banks[bi].inst.Method(req.AuthMethod)
	if !ok {
		fail("Invalid auth method for this institution")
		return
	}
	if req.Scope != mono.ScopeFinancialData {
		fail("scope must be " + mono.ScopeFinancialData)
		return
	}
	if req.Customer == nil {
		fail("customer is required")
		return
	}
	name, email := strings.TrimSpace(req.Customer.Name), strings.TrimSpace(req.Customer.Email)
	if name == "" {
		fail("customer.name is required")
		return
	}
	if !strings.Contains(email, "@") {
		fail("customer.email must be an email address")
		return
	}
	now := s.now()
	c := Customer{ID: customerID(email), Name: name, Email: email}
	sess := &session{
		id:          newSessionID(2),
		version:     2,
		institution: bi,
		method:      method,
		expires:     now.Add(s.ttl),
		ui:          method.UI,
		customer:    &c,
	}
	s.mu.Lock()
	s.sweep(now)
	s.sessions[sess.id] = sess
	if len(s.customers) == maxCustomers {
		s.customers = append(s.customers[:0], s.customers[1:]...)
	}
	s.customers = append(s.customers, c)
	view := s.sessionViewV2(sess)
	s.mu.Unlock()
	s.okV2(w, "Request completed successfully", 0, sessionDataV2{Session: view, UI: cloneUI(method.UI)})
}

// accountV2 is an account in a v2 101 answer: the balance in kobo.
type accountV2 struct {
	AccountNumber string `json:"accountNumber"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	Currency      string `json:"currency"`
	Status        string `json:"status"`
	Balance       int64  `json:"balance"`
}

// stepDataV2 is data of a v2 step answer. ResponseCode is set only where
// the code sits inside data (reauthorisation answers); Session and UI only
// on reauthorisation sessions that await something.
type stepDataV2 struct {
	ResponseCode int         `json:"responseCode,omitempty"`
	Code         string      `json:"code,omitempty"`
	Accounts     []accountV2 `json:"accounts,omitempty"`
	Session      *sessionV2  `json:"session,omitempty"`
	UserInput    *mono.UI    `json:"userInput,omitempty"`
	UI           *mono.UI    `json:"ui,omitempty"`
}

// stepMessage is the message of a successful v2 step with response code rc.
func stepMessage(rc int) string {
	switch rc {
	case mono.CodeSelectAccount:
		return "Multiple accounts found"
	case mono.CodeUserInput:
		return "Additional input required"
	}
	return "Request completed successfully"
}

// writeStepV2 answers o in v2's shapes: a step with its responseCode at the
// top level, or inside data for a reauthorisation; any refusal as HTTP 400
// with a failed envelope and responseCode 400.
func (s *Sandbox) writeStepV2(w http.ResponseWriter, o outcome) {
	switch o.kind {
	case outStep:
	case outInterrupted:
		s.failV2(w, http.StatusServiceUnavailable, 0, o.message)
		return
	default:
		s.failV2(w, http.StatusBadRequest, mono.CodeRejected, o.message)
		return
	}
	var d stepDataV2
	switch o.rc {
	case mono.CodeLinked:
		d.Code = o.code
	case mono.CodeSelectAccount:
		d.Accounts = make([]accountV2, len(o.accounts))
		for i, a := range o.accounts {
			d.Accounts[i] = accountV2{AccountNumber: a.AccountNumber, Name: a.Name, Type: a.Type,
				Currency: a.Currency, Status: a.Status, Balance: kobo(a.Balance)}
		}
	case mono.CodeUserInput:
		d.UserInput = o.form
	}
	if o.reauth {
		d.ResponseCode = o.rc
		s.okV2(w, stepMessage(o.rc), 0, d)
		return
	}
	s.okV2(w, stepMessage(o.rc), o.rc, d)
}

// sessionHeader is the x-session-id of r, answering a failed envelope with
// responseCode 400 when there is none.
func (s *Sandbox) sessionHeader(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.Header.Get("x-session-id")
	if id == "" {
		s.failV2(w, http.StatusBadRequest, mono.CodeRejected, msgNoSession)
		return "", false
	}
	return id, true
}

// loginV2 serves POST /v2/connect/login.
func (s *Sandbox) loginV2(w http.ResponseWriter, r *http.Request) {
	if id, body, ok := s.stepRequest(w, r); ok {
		s.writeStepV2(w, s.doLogin(r.Context(), id, body))
	}
}

// stepRequest reads a v2 step's x-session-id and JSON body, answering the
// failed envelope when either is missing or unreadable.
func (s *Sandbox) stepRequest(w http.ResponseWriter, r *http.Request) (string, map[string]any, bool) {
	id, ok := s.sessionHeader(w, r)
	if !ok {
		return "", nil, false
	}
	var body map[string]any
	if !s.decodeV2(w, r, &body, mono.CodeRejected) {
		return "", nil, false
	}
	return id, body, true
}

// onSession runs step on the live session a v2 step names, under the
// sandbox's lock, and answers what it returns; a session unknown or
// expired is refused.
func (s *Sandbox) onSession(w http.ResponseWriter, r *http.Request, step func(sess *session, body map[string]any) outcome) {
	id, body, ok := s.stepRequest(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.lookup(id)
	if !ok {
		s.writeStepV2(w, failed(outNoSession, msgNoSession))
		return
	}
	s.writeStepV2(w, step(sess, body))
}

// commitV2 serves POST /v2/connect/commit, for link and reauthorisation
// sessions alike.
func (s *Sandbox) commitV2(w http.ResponseWriter, r *http.Request) {
	s.onSession(w, r, func(sess *session, body map[string]any) outcome { return s.commitStep(sess, body, 2) })
}

// exchangeV2 serves POST /v2/accounts/auth.
func (s *Sandbox) exchangeV2(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code any `json:"code"`
	}
	if !s.decodeV2(w, r, &req, 0) {
		return
	}
	code, _ := req.Code.(string)
	s.mu.Lock()
	id, ok := s.redeem(code)
	s.mu.Unlock()
	if !ok {
		s.failV2(w, http.StatusBadRequest, 0, msgBadCode)
		return
	}
	s.okV2(w, "Request completed successfully", 0, idRef{ID: id})
}

// reauthSessionV2 serves POST /v2/connect/reauth/session: Mono logs in
// again in the background (see startReauth). A 99 comes with a code that
// exchanges for the same account id, and the reauthorised webhooks go out;
// a 102 comes with the session to answer through, and the OTP form in
// userInput (answered by commit) or the bank's login form in ui (answered
// by reauth login).
func (s *Sandbox) reauthSessionV2(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Account any `json:"account"`
	}
	if !s.decodeV2(w, r, &req, 0) {
		return
	}
	id, _ := text(req.Account)
	if id = strings.TrimSpace(id); id == "" {
		s.failV2(w, http.StatusBadRequest, 0, "account is required")
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		s.failV2(w, http.StatusNotFound, 0, msgNoAccount)
		return
	}
	sess := s.startReauth(a, now, 2)
	if sess.state == stateDone {
		code := s.issue(sess)
		s.reauthorised(a.id)
		s.okV2(w, "Account reauthorised successfully", 0, stepDataV2{ResponseCode: mono.CodeLinked, Code: code})
		return
	}
	s.sweep(now)
	s.sessions[sess.id] = sess
	d := stepDataV2{ResponseCode: mono.CodeUserInput, Session: s.sessionViewV2(sess)}
	message := sess.ui.Title
	if sess.steps[0] == stepRelogin {
		d.UI = cloneUI(sess.ui)
		message = reloginMessage(s.banks[a.institution].inst.Name)
	} else {
		d.UserInput = cloneUI(sess.ui)
	}
	s.okV2(w, message, 0, d)
}

// reauthLoginV2 serves POST /v2/connect/reauth/login: the bank's login
// again, on a reauthorisation session that asked for it.
func (s *Sandbox) reauthLoginV2(w http.ResponseWriter, r *http.Request) {
	s.onSession(w, r, func(sess *session, body map[string]any) outcome {
		if sess.reauth == "" || sess.state != stateAwait || len(sess.steps) == 0 || sess.steps[0] != stepRelogin {
			return failed(outBadRequest, msgNotAllowed)
		}
		return s.commitStep(sess, body, 2)
	})
}

// sandboxCredential is one test login GET /v2/connect/sandbox offers.
type sandboxCredential struct {
	HasMultipleAccounts bool              `json:"hasMultipleAccounts"`
	Values              map[string]string `json:"values"`
}

// sandboxInput is a value for a 102 step GET /v2/connect/sandbox offers.
type sandboxInput struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// sandboxData is data of GET /v2/connect/sandbox.
type sandboxData struct {
	Credentials []sandboxCredential `json:"credentials"`
	Inputs      []sandboxInput      `json:"inputs"`
}

// sandboxCredentials serves GET /v2/connect/sandbox: logins for the
// session's own login form (its first input the username, a field named
// pin the PIN, a password field the password, any other input the PIN),
// for a single-account link, a multi-account one and the OTP, security
// question and OTP-then-account flows; and in inputs the values their 102
// steps take, by form field name.
func (s *Sandbox) sandboxCredentials(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("x-session-id")
	s.mu.Lock()
	sess, ok := s.lookup(id)
	var form []mono.Element
	if ok {
		form = sess.method.UI.Form
	}
	s.mu.Unlock()
	if id == "" || !ok {
		s.failV2(w, http.StatusNotFound, 0, msgNoSession)
		return
	}
	d := sandboxData{Inputs: []sandboxInput{{Name: "otp", Value: OTP}, {Name: "answer", Value: Answer}}}
	for _, name := range []string{"user_good", "user_multi", "user_otp", "user_question", "user_mfa"} {
		u := &s.users[s.userAt[name]]
		values := map[string]string{}
		first := true
		for _, e := range form {
			if !e.IsInput() {
				continue
			}
			switch {
			case first:
				values[e.Name] = u.Username
			case e.Name == "pin":
				values[e.Name] = PIN
			case strings.EqualFold(e.ContentType, "password"):
				values[e.Name] = u.Password
			default:
				values[e.Name] = PIN
			}
			first = false
		}
		d.Credentials = append(d.Credentials, sandboxCredential{HasMultipleAccounts: len(u.accounts) > 1, Values: values})
	}
	s.okV2(w, "Request completed successfully", 0, d)
}

// unlinkV2 serves POST /v2/accounts/{id}/unlink (see Sandbox.Unlink).
func (s *Sandbox) unlinkV2(w http.ResponseWriter, id string) {
	s.mu.Lock()
	err := s.unlink(id)
	s.mu.Unlock()
	if err != nil {
		s.failV2(w, http.StatusNotFound, 0, msgNoAccount)
		return
	}
	s.okV2(w, "Account unlinked successfully", 0, nil)
}
