package mono

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ussdlink/ussdlink/wirejson"
)

// API is a version of Mono's Partners API. The two differ in paths,
// envelopes, the session request (v2 names a customer and a scope, and no
// app) and reauthorisation (a widget token on v1, API calls on v2); a
// Client hides all of it behind the same methods and types.
type API string

// The versions a Client speaks.
const (
	V1 API = "v1" // the seeds': /v1/connect/…, /account/auth, reauthorisation tokens
	V2 API = "v2" // Mono's current documentation: /v3/institutions, /v2/connect/…, envelopes
)

// ScopeFinancialData is the scope v2 institution lists and sessions ask
// for: account linking.
const ScopeFinancialData = "financial_data"

// ParseAPI reads a configured version, "v1" or "v2" in any case.
func ParseAPI(s string) (API, error) {
	switch v := API(strings.ToLower(strings.TrimSpace(s))); v {
	case V1, V2:
		return v, nil
	}
	return "", fmt.Errorf("mono api %q: want \"v1\" or \"v2\"", s)
}

// API returns the version of the Partners API the client speaks.
func (c *Client) API() API { return c.api }

// v2 reports whether the client speaks v2.
func (c *Client) v2() bool { return c.api == V2 }

// AppID returns the Mono app id the client fills into new v1 sessions, so
// other packages can report or check it.
func (c *Client) AppID() string { return c.appID }

// Institutions lists the banks Mono can connect to, with the login forms of
// their auth methods: GET /v1/institutions, or on v2 GET
// /v3/institutions?scope=financial_data.
func (c *Client) Institutions(ctx context.Context) ([]Institution, error) {
	const op = "institutions"
	path := "/v1/institutions"
	if c.v2() {
		path = "/v3/institutions?scope=" + ScopeFinancialData
	}
	status, data, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path})
	if err != nil {
		return nil, err
	}
	var list []institutionWire
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := wirejson.Unmarshal(trimmed, &list); err != nil {
			return nil, badResponse(op, status, err)
		}
	} else {
		var wrapped struct {
			Message string            `json:"message"`
			Data    []institutionWire `json:"data"`
		}
		if err := wirejson.Unmarshal(trimmed, &wrapped); err != nil {
			return nil, badResponse(op, status, err)
		}
		if wrapped.Data == nil {
			return nil, emptyResponse(op, status, wrapped.Message, "no institutions in response")
		}
		list = wrapped.Data
	}
	out := make([]Institution, len(list))
	for i, w := range list {
		out[i] = w.institution()
	}
	return out, nil
}

// institutionWire is an institution as either version lists it: v1 spells
// the colour primaryColor, v3 primary_color.
type institutionWire struct {
	Institution
	PrimaryColor string `json:"primary_color"`
}

// institution is w with the spellings merged.
func (w institutionWire) institution() Institution {
	inst := w.Institution
	if inst.Color == "" {
		inst.Color = w.PrimaryColor
	}
	return inst
}

// CreateSession opens a connect session for an institution and auth method
// (POST /v1/connect/session or /v2/connect/session). On v1, a request
// naming no app gets the client's app id, and a reauthorisation token opens
// a reauthorisation session; on v2 the session is for req.Customer, with
// the financial_data scope, and there are no tokens (see Reauthorise).
func (c *Client) CreateSession(ctx context.Context, req SessionRequest) (*Session, error) {
	const op = "session"
	var body any
	path := "/v1/connect/session"
	if c.v2() {
		if req.ReauthToken != "" {
			return nil, errors.New("mono session: v2 has no reauthorisation tokens: use Reauthorise")
		}
		path = "/v2/connect/session"
		body = sessionRequestV2{Institution: req.Institution, AuthMethod: req.AuthMethod, Scope: ScopeFinancialData, Customer: req.Customer}
	} else {
		if req.App == "" && req.ReauthToken == "" {
			req.App = c.appID
		}
		req.Customer = nil // v1 sessions name no customer
		body = req
	}
	status, data, err := c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: body})
	if err != nil {
		return nil, err
	}
	s, msg, err := decodeSession(data)
	if err != nil {
		return nil, badResponse(op, status, err)
	}
	if s.ID == "" {
		return nil, emptyResponse(op, status, msg, "no session id in response")
	}
	if s.Institution == "" {
		s.Institution = req.Institution
	}
	if s.AuthMethod == "" {
		s.AuthMethod = req.AuthMethod
	}
	return &s, nil
}

// sessionRequestV2 is the body of POST /v2/connect/session.
type sessionRequestV2 struct {
	Institution string    `json:"institution"`
	AuthMethod  string    `json:"auth_method"`
	Scope       string    `json:"scope"`
	Customer    *Customer `json:"customer,omitempty"`
}

// sessionWire is a session as either version answers it: flat on v1; on
// v2 inside data.session, with the form beside it in data.ui, and the
// institution an object.
type sessionWire struct {
	ID          string          `json:"id"`
	SessionID   string          `json:"session_id"`
	App         string          `json:"app"`
	Institution json.RawMessage `json:"institution"`
	AuthMethod  string          `json:"auth_method"`
	ExpiresAt   json.RawMessage `json:"expiresAt"`
	ExpiresAlt  json.RawMessage `json:"expires_at"`
	UI          *UI             `json:"ui"`
	Reauth      *Reauth         `json:"reauth"`
}

// id is the session's id, wherever it was given.
func (w *sessionWire) id() string {
	if w.ID != "" {
		return w.ID
	}
	return w.SessionID
}

// session is w as a Session.
func (w *sessionWire) session() Session {
	s := Session{ID: w.id(), App: w.App, AuthMethod: w.AuthMethod, Institution: idOf(w.Institution), Reauth: w.Reauth}
	if s.ExpiresAt = epochMillis(w.ExpiresAt); s.ExpiresAt == 0 {
		s.ExpiresAt = epochMillis(w.ExpiresAlt)
	}
	if w.UI != nil {
		s.UI = *w.UI
	}
	return s
}

// decodeSession reads a session answer of either version, with Mono's
// message.
func decodeSession(data []byte) (Session, string, error) {
	var top struct {
		sessionWire
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := wirejson.Unmarshal(data, &top); err != nil {
		return Session{}, "", err
	}
	w := top.sessionWire
	if w.id() == "" && isObject(top.Data) {
		var inner struct {
			sessionWire
			Session *sessionWire `json:"session"`
		}
		if err := wirejson.Unmarshal(top.Data, &inner); err != nil {
			return Session{}, top.Message, err
		}
		w = inner.sessionWire
		if nested := inner.Session; nested != nil && nested.id() != "" {
			if nested.UI == nil {
				nested.UI = w.UI // v2 puts the form beside the session
			}
			if nested.Reauth == nil {
				nested.Reauth = w.Reauth
			}
			w = *nested
		}
	}
	return w.session(), top.Message, nil
}

// Login submits the user's answers to the session's login form (POST
// /v1/connect/login or /v2/connect/login). fields is sent exactly as
// given, keyed by the form's element names; the returned Step says what
// Mono wants next.
func (c *Client) Login(ctx context.Context, sessionID string, fields map[string]string) (*Step, error) {
	return c.sendFields(ctx, "login", c.path("/v1/connect/login", "/v2/connect/login"), sessionID, fields)
}

// Relogin answers a reauthorisation that asked for the bank's login again
// (a Step with Relogin set): POST /v2/connect/reauth/login. v1 takes the
// answer as a commit.
func (c *Client) Relogin(ctx context.Context, sessionID string, fields map[string]string) (*Step, error) {
	if !c.v2() {
		return c.sendFields(ctx, "commit", "/v1/connect/commit", sessionID, fields)
	}
	return c.sendFields(ctx, "reauth login", "/v2/connect/reauth/login", sessionID, fields)
}

// sendFields posts typed form values to a step endpoint, scrubbing them
// from whatever Mono says back.
func (c *Client) sendFields(ctx context.Context, op, path, sessionID string, fields map[string]string) (*Step, error) {
	if sessionID == "" {
		return nil, fmt.Errorf("mono %s: empty session id", op)
	}
	if fields == nil {
		fields = map[string]string{}
	}
	redact := make([]string, 0, len(fields))
	for _, v := range fields {
		redact = append(redact, v)
	}
	return c.step(ctx, call{op: op, method: http.MethodPost, path: path,
		session: sessionID, body: fields, redact: redact, once: true})
}

// Commit answers a step Mono is waiting for (POST /v1/connect/commit or
// /v2/connect/commit): a security answer or an OTP, as body says, keyed by
// the names the step's form gave. To choose an account, use ChooseAccount.
func (c *Client) Commit(ctx context.Context, sessionID string, body map[string]any) (*Step, error) {
	const op = "commit"
	if sessionID == "" {
		return nil, errors.New("mono commit: empty session id")
	}
	if body == nil {
		body = map[string]any{}
	}
	var redact []string
	for _, v := range body {
		if s, ok := v.(string); ok {
			redact = append(redact, s)
		}
	}
	return c.step(ctx, call{op: op, method: http.MethodPost, path: c.path("/v1/connect/commit", "/v2/connect/commit"),
		session: sessionID, body: body, redact: redact, once: true})
}

// ChooseAccount answers a 101 with one of the accounts it offered: v1 takes
// its index in the list, v2 its account number.
func (c *Client) ChooseAccount(ctx context.Context, sessionID string, index int, a Account) (*Step, error) {
	if !c.v2() {
		return c.Commit(ctx, sessionID, map[string]any{"account": index})
	}
	if a.AccountNumber == "" {
		return nil, errors.New("mono commit: the chosen account has no number")
	}
	return c.Commit(ctx, sessionID, map[string]any{"accountNumber": a.AccountNumber})
}

// path is the v1 or the v2 path of an endpoint, as the client speaks.
func (c *Client) path(v1, v2 string) string {
	if c.v2() {
		return v2
	}
	return v1
}

// step performs a login or commit call and decodes its answer.
func (c *Client) step(ctx context.Context, cl call) (*Step, error) {
	status, data, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	step, err := decodeStep(cl.op, status, data, cl.redact)
	if err != nil {
		return nil, err
	}
	c.inMajorUnits(step.Accounts)
	return step, nil
}

// inMajorUnits turns v2's balances, in kobo, into the naira v1 answers in.
func (c *Client) inMajorUnits(accounts []Account) {
	if !c.v2() {
		return
	}
	for i := range accounts {
		accounts[i].Balance /= 100
	}
}

// Exchange trades the code from a linked step for the account id that every
// later call uses (POST /account/auth or /v2/accounts/auth). The code
// expires after 10 minutes. The id is read from data.id or from the top
// level: Mono's documents show both.
func (c *Client) Exchange(ctx context.Context, code string) (accountID string, err error) {
	const op = "exchange"
	if code == "" {
		return "", errors.New("mono exchange: empty code")
	}
	status, data, err := c.do(ctx, call{op: op, method: http.MethodPost, path: c.path("/account/auth", "/v2/accounts/auth"),
		body: map[string]string{"code": code}, once: true})
	if err != nil {
		return "", err
	}
	var w struct {
		ID      json.RawMessage `json:"id"`
		Message json.RawMessage `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := wirejson.Unmarshal(data, &w); err != nil {
		return "", badResponse(op, status, err)
	}
	id := textOf(w.ID)
	if isObject(w.Data) { // data.id first, as the v2 documents read
		var d struct {
			ID json.RawMessage `json:"id"`
		}
		if err := wirejson.Unmarshal(w.Data, &d); err != nil {
			return "", badResponse(op, status, err)
		}
		id = cmp.Or(textOf(d.ID), id)
	}
	if id == "" {
		return "", emptyResponse(op, status, textOf(w.Message), "no account id in response")
	}
	return id, nil
}

// Reauthorisation is what starting a reauthorisation found: Mono tried the
// account's saved login in the background. Step says what follows:
// CodeLinked, done; CodeUserInput, the user answers Step.Form through
// Session (with Relogin when Step.Relogin is set, with Commit otherwise);
// CodeSelectAccount, the user picks an account.
type Reauthorisation struct {
	Session Session
	Step    Step
}

// Reauthorise starts logging a linked account in again. On v1 it asks for
// a reauthorisation token (POST /accounts/{id}/reauthorise) and opens a
// session with it; on v2 it opens a reauthorisation session for the
// account (POST /v2/connect/reauth/session).
func (c *Client) Reauthorise(ctx context.Context, accountID string) (*Reauthorisation, error) {
	if accountID == "" {
		return nil, errors.New("mono reauthorise: empty account id")
	}
	if c.v2() {
		return c.reauthoriseV2(ctx, accountID)
	}
	token, err := c.ReauthToken(ctx, accountID)
	if err != nil {
		return nil, err
	}
	s, err := c.CreateSession(ctx, SessionRequest{ReauthToken: token})
	if err != nil {
		return nil, err
	}
	r := &Reauthorisation{Session: *s, Step: Step{ResponseCode: CodeLinked}}
	if s.Reauth == nil {
		return r, nil
	}
	r.Step.ResponseCode, r.Step.Message = s.Reauth.ResponseCode, s.Reauth.Message
	switch s.Reauth.ResponseCode {
	case CodeLinked:
	case CodeUserInput:
		ui := s.UI
		r.Step.Form = &ui
	default:
		return nil, &Error{Op: "reauth session", Status: http.StatusOK, ResponseCode: s.Reauth.ResponseCode, Message: clean(s.Reauth.Message, nil)}
	}
	return r, nil
}

// reauthoriseV2 opens a v2 reauthorisation session. Its responseCode sits
// inside data. A 99 needs nothing more; anything else comes with the
// session to answer through, whose id the documents leave unplaced: it is
// looked for in data.session.id, data.id and data.session_id. A 102 with
// data.userInput is a challenge (answered by commit); with data.ui, the
// bank's login form again (answered by the reauth login).
func (c *Client) reauthoriseV2(ctx context.Context, accountID string) (*Reauthorisation, error) {
	const op = "reauth session"
	status, data, err := c.do(ctx, call{op: op, method: http.MethodPost, path: "/v2/connect/reauth/session",
		body: map[string]string{"account": accountID}, once: true})
	if err != nil {
		return nil, err
	}
	var w stepWire
	if err := wirejson.Unmarshal(data, &w); err != nil {
		return nil, badResponse(op, status, err)
	}
	var d struct {
		sessionWire
		ResponseCode int          `json:"responseCode"`
		Code         string       `json:"code"`
		Message      string       `json:"message"`
		Session      *sessionWire `json:"session"`
		UserInput    *UI          `json:"userInput"`
		Accounts     []Account    `json:"accounts"`
	}
	if isObject(w.Data) {
		if err := wirejson.Unmarshal(w.Data, &d); err != nil {
			return nil, badResponse(op, status, err)
		}
	}
	rc := w.ResponseCode
	if rc == 0 {
		rc = d.ResponseCode
	}
	msg := w.Message
	if strings.TrimSpace(msg) == "" {
		msg = d.Message
	}
	fail := func(code int, fallback string) *Error {
		if strings.TrimSpace(msg) == "" {
			msg = fallback
		}
		return &Error{Op: op, Status: status, ResponseCode: code, Message: clean(msg, nil)}
	}
	if rc == CodeRejected || statusFailed(w.Status) {
		return nil, fail(CodeRejected, "rejected")
	}
	sess := d.sessionWire
	if d.Session != nil && d.Session.id() != "" {
		sess = *d.Session
	}
	r := &Reauthorisation{Session: sess.session(), Step: Step{ResponseCode: rc, Message: msg}}
	if r.Session.Institution == "" {
		r.Session.Institution = idOf(d.Institution)
	}
	switch rc {
	case CodeLinked:
		r.Step.Code = d.Code
		return r, nil
	case CodeUserInput:
		switch {
		case d.UserInput != nil && len(d.UserInput.Form) > 0:
			r.Step.Form = d.UserInput
		case d.UI != nil && len(d.UI.Form) > 0:
			r.Step.Form, r.Step.Relogin = d.UI, true
		case sess.UI != nil && len(sess.UI.Form) > 0:
			r.Step.Form, r.Step.Relogin = sess.UI, true
		default:
			return nil, fail(rc, "input requested without a form")
		}
	case CodeSelectAccount:
		if len(d.Accounts) == 0 {
			return nil, fail(rc, "no accounts to choose from")
		}
		r.Step.Accounts = d.Accounts
		c.inMajorUnits(r.Step.Accounts)
	default:
		return nil, fail(rc, fmt.Sprintf("unexpected responseCode %d", rc))
	}
	if r.Session.ID == "" {
		return nil, fail(rc, "no session id in response")
	}
	return r, nil
}

// ReauthToken gets a short-lived v1 reauthorisation token (POST
// /accounts/{id}/reauthorise) from which CreateSession opens a session that
// logs the account in again. v2 has none: use Reauthorise.
func (c *Client) ReauthToken(ctx context.Context, accountID string) (token string, err error) {
	const op = "reauthorise"
	if accountID == "" {
		return "", errors.New("mono reauthorise: empty account id")
	}
	if c.v2() {
		return "", errors.New("mono reauthorise: v2 has no reauthorisation tokens: use Reauthorise")
	}
	status, data, err := c.do(ctx, call{op: op, method: http.MethodPost,
		path: "/accounts/" + url.PathEscape(accountID) + "/reauthorise"})
	if err != nil {
		return "", err
	}
	token, msg, err := pick(data, "token")
	if err != nil {
		return "", badResponse(op, status, err)
	}
	if token == "" {
		return "", emptyResponse(op, status, msg, "no token in response")
	}
	return token, nil
}

// Account fetches a linked account's details (GET /v2/accounts/{id}, on
// both versions), including how fresh Mono's data is and how the account
// was linked. Fields Mono's pages spell two ways are read both ways.
func (c *Client) Account(ctx context.Context, id string) (*AccountDetails, error) {
	const op = "account"
	if id == "" {
		return nil, errors.New("mono account: empty account id")
	}
	status, data, err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/v2/accounts/" + url.PathEscape(id)})
	if err != nil {
		return nil, err
	}
	var w struct {
		Message string `json:"message"`
		Data    *struct {
			Account detailsWire `json:"account"`
			Meta    struct {
				DataStatus string `json:"data_status"`
				AuthMethod string `json:"auth_method"`
			} `json:"meta"`
		} `json:"data"`
	}
	if err := wirejson.Unmarshal(data, &w); err != nil {
		return nil, badResponse(op, status, err)
	}
	if w.Data == nil {
		return nil, emptyResponse(op, status, w.Message, "no account in response")
	}
	acct := w.Data.Account.details()
	if acct.ID == "" && acct.AccountNumber == "" {
		return nil, emptyResponse(op, status, w.Message, "no account in response")
	}
	acct.DataStatus = w.Data.Meta.DataStatus
	acct.AuthMethod = w.Data.Meta.AuthMethod
	return &acct, nil
}

// detailsWire is data.account of the details answer, in every spelling
// Mono's pages show.
type detailsWire struct {
	ID            string  `json:"id"`
	IDAlt         string  `json:"_id"`
	Name          string  `json:"name"`
	AccountNumber string  `json:"account_number"`
	NumberAlt     string  `json:"accountNumber"`
	Currency      string  `json:"currency"`
	Balance       float64 `json:"balance"`
	Type          string  `json:"type"`
	Institution   struct {
		Name     string `json:"name"`
		BankCode string `json:"bank_code"`
		CodeAlt  string `json:"bankCode"`
		Type     string `json:"type"`
	} `json:"institution"`
}

// details is w with the spellings merged.
func (w detailsWire) details() AccountDetails {
	return AccountDetails{
		ID: cmp.Or(w.ID, w.IDAlt), Name: w.Name, AccountNumber: cmp.Or(w.AccountNumber, w.NumberAlt),
		Currency: w.Currency, Balance: w.Balance, Type: w.Type,
		Institution: DetailInstitution{Name: w.Institution.Name, BankCode: cmp.Or(w.Institution.BankCode, w.Institution.CodeAlt), Type: w.Institution.Type},
	}
}

// idOf reads an id given as a string or as an object with id or _id.
func idOf(raw json.RawMessage) string {
	switch jsonKind(raw) {
	case '"':
		s, _ := stringOf(raw)
		return s
	case '{':
		var obj struct {
			ID    string `json:"id"`
			IDAlt string `json:"_id"`
		}
		if wirejson.Unmarshal(raw, &obj) == nil {
			return cmp.Or(obj.ID, obj.IDAlt)
		}
	}
	return ""
}

// epochMillis reads an expiry as Mono gives it: epoch milliseconds (a
// number or a numeric string; a value too small to be milliseconds is
// taken as seconds) or an RFC 3339 time. Anything else is 0.
func epochMillis(raw json.RawMessage) int64 {
	const secondsBelow = 100_000_000_000 // 1973 in milliseconds, 5138 in seconds
	var n float64
	if jsonKind(raw) == '"' {
		s, ok := stringOf(raw)
		if !ok {
			return 0
		}
		s = strings.TrimSpace(s)
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UnixMilli()
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0
		}
		n = v
	} else if wirejson.Unmarshal(raw, &n) != nil {
		return 0
	}
	if n <= 0 || n > 1e15 {
		return 0
	}
	if n < secondsBelow {
		n *= 1000
	}
	return int64(n)
}
