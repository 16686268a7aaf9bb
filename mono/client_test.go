package mono

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testKey  = "test_sk_secret"
	testApp  = "app_123"
	password = `p*ss #"ü`
)

// seen is one request as the fake server received it.
type seen struct {
	method, path, escapedPath string
	key, accept, ctype        string
	session                   string
	body                      string
}

// fake is an httptest server that records requests and answers with respond,
// which gets the 1-based attempt number.
type fake struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newFake(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *fake {
	t.Helper()
	f := &fake{t: t}
	f.srv = httptest.NewServer(f.handler(respond))
	t.Cleanup(f.srv.Close)
	return f
}

// newFakeTLS is newFake over TLS, with a certificate of its own (see
// trusted).
func newFakeTLS(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *fake {
	t.Helper()
	f := &fake{t: t}
	f.srv = httptest.NewUnstartedServer(f.handler(respond))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests are about
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// trusted is the option that makes a client trust the fake's certificate.
func (f *fake) trusted() Option {
	roots := x509.NewCertPool()
	roots.AddCert(f.srv.Certificate())
	return WithRootCAs(roots)
}

// handler records each request and answers it with respond.
func (f *fake) handler(respond func(n int, w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{
			method: r.Method, path: r.URL.Path, escapedPath: r.URL.EscapedPath(),
			key: r.Header.Get("mono-sec-key"), accept: r.Header.Get("Accept"),
			ctype: r.Header.Get("Content-Type"), session: r.Header.Get("x-session-id"),
			body: string(body),
		})
		n := len(f.reqs)
		f.mu.Unlock()
		respond(n, w, r)
	})
}

// client returns a client for the fake with fast retries; opts come last so
// they can override.
func (f *fake) client(opts ...Option) *Client {
	base := []Option{WithBaseURL(f.srv.URL), WithAppID(testApp), WithRetry(3, time.Millisecond)}
	return NewClient(testKey, append(base, opts...)...)
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// only returns the single request the fake received.
func (f *fake) only() seen {
	f.t.Helper()
	reqs := f.requests()
	if len(reqs) != 1 {
		f.t.Fatalf("got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// check verifies method, path and the headers every call carries.
func (s seen) check(t *testing.T, method, path string, hasBody bool) {
	t.Helper()
	if s.method != method || s.path != path {
		t.Errorf("request %s %s, want %s %s", s.method, s.path, method, path)
	}
	if s.key != testKey {
		t.Errorf("mono-sec-key = %q, want %q", s.key, testKey)
	}
	if s.accept != "application/json" {
		t.Errorf("Accept = %q", s.accept)
	}
	switch {
	case hasBody && s.ctype != "application/json":
		t.Errorf("Content-Type = %q, want application/json", s.ctype)
	case !hasBody && (s.ctype != "" || s.body != ""):
		t.Errorf("unexpected body %q (Content-Type %q)", s.body, s.ctype)
	}
}

// reply writes a JSON body with the given status.
func reply(status int, body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// asError asserts err is a *Error and returns it.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *mono.Error", err, err)
	}
	return me
}

// wires are the two ways the client reaches Mono: the default (fasthttp)
// and net/http's (WithHTTPClient, or a proxy in the environment). What
// may be resent must not depend on which.
var wires = map[string]Option{
	"fasthttp": nil,
	"net/http": WithHTTPClient(&http.Client{Transport: newTransport(nil)}),
}

// eachWire runs test once per wire, with the option choosing it.
func eachWire(t *testing.T, test func(t *testing.T, wire Option)) {
	for name, wire := range wires {
		t.Run(name, func(t *testing.T) { test(t, wire) })
	}
}

func jsonEqual(t *testing.T, got string, want any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	b, _ := json.Marshal(want)
	json.Unmarshal(b, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body = %s, want %s", got, b)
	}
}

const gtbank = `{"_id":"5f2d08be60b92e2888287702","name":"GTBank","type":"PERSONAL_BANKING",
 "auth_methods":[{"type":"internet_banking","name":"Internet Banking","ui":{"title":"Log in to GTBank",
 "form":[{"type":"elements.input","name":"username","hint":"UserID","contentType":"string"},
 {"type":"elements.input","name":"password","hint":"Password","contentType":"password"}]},"_id":"60d0"}],
 "identifier":"mono.connections.gtbank","primaryColor":"#E24407","country":"ng"}`

func TestInstitutionsAcceptsBareAndWrappedLists(t *testing.T) {
	for name, body := range map[string]string{
		"bare":    "[" + gtbank + "]",
		"wrapped": `{"status":"successful","data":[` + gtbank + `]}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, reply(200, body))
			got, err := f.client().Institutions(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			f.only().check(t, "GET", "/v1/institutions", false)
			if len(got) != 1 || got[0].ID != "5f2d08be60b92e2888287702" || got[0].Name != "GTBank" {
				t.Fatalf("institutions = %+v", got)
			}
			m, ok := got[0].Method(InternetBanking)
			if !ok || len(m.UI.Form) != 2 || m.UI.Form[1].Name != "password" || !m.UI.Form[1].IsSecret() {
				t.Errorf("internet banking method = %+v, %v", m, ok)
			}
		})
	}
}

func TestCreateSessionFillsAppIDUnlessReauth(t *testing.T) {
	const sess = `{"id":"session_1","app":"app_123","institution":"inst","auth_method":"internet_banking",
		"expiresAt":1648193002017,"ui":{"title":"Log in","form":[{"type":"elements.input","name":"username"}]}}`
	const reauthSess = `{"status":"successful","message":"Session created successfully","id":"session_2",
		"ui":{"title":"OTP","form":[{"type":"elements.input","name":"otp","contentType":"password","maxLength":5}]},
		"reauth":{"response_code":102,"message":"enter OTP"}}`
	tests := []struct {
		name     string
		req      SessionRequest
		resp     string
		wantBody map[string]string
		wantID   string
	}{
		{"fills app id", SessionRequest{Institution: "inst", AuthMethod: InternetBanking}, sess,
			map[string]string{"app": testApp, "institution": "inst", "auth_method": InternetBanking}, "session_1"},
		{"keeps explicit app", SessionRequest{App: "other", Institution: "inst", AuthMethod: InternetBanking}, sess,
			map[string]string{"app": "other", "institution": "inst", "auth_method": InternetBanking}, "session_1"},
		{"wrapped in data", SessionRequest{Institution: "inst", AuthMethod: InternetBanking}, `{"data":` + sess + `}`,
			map[string]string{"app": testApp, "institution": "inst", "auth_method": InternetBanking}, "session_1"},
		{"reauth sends token only", SessionRequest{ReauthToken: "tok"}, reauthSess,
			map[string]string{"reauth_token": "tok"}, "session_2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, reply(200, tt.resp))
			s, err := f.client().CreateSession(t.Context(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			r := f.only()
			r.check(t, "POST", "/v1/connect/session", true)
			jsonEqual(t, r.body, tt.wantBody)
			if s.ID != tt.wantID || len(s.UI.Form) != 1 {
				t.Errorf("session = %+v", s)
			}
			if tt.req.ReauthToken != "" && (s.Reauth == nil || s.Reauth.ResponseCode != CodeUserInput) {
				t.Errorf("reauth = %+v", s.Reauth)
			}
			if tt.req.ReauthToken == "" && s.ExpiresAt != 1648193002017 {
				t.Errorf("expiresAt = %d", s.ExpiresAt)
			}
		})
	}
}

func TestCreateSessionWithoutIDIsAnError(t *testing.T) {
	f := newFake(t, reply(200, `{"status":"failed","message":"institution not supported"}`))
	_, err := f.client().CreateSession(t.Context(), SessionRequest{Institution: "x"})
	if me := asError(t, err); me.Op != "session" || me.Message != "institution not supported" {
		t.Errorf("error = %#v", me)
	}
}

func TestLoginSendsFieldsExactly(t *testing.T) {
	f := newFake(t, reply(200, `{"status":200,"responseCode":99,"data":{"code":"code_1"}}`))
	fields := map[string]string{"username": "user <good> & co", "password": password}
	step, err := f.client().Login(t.Context(), "session_1", fields)
	if err != nil {
		t.Fatal(err)
	}
	r := f.only()
	r.check(t, "POST", "/v1/connect/login", true)
	if r.session != "session_1" {
		t.Errorf("x-session-id = %q", r.session)
	}
	if want := `{"password":"p*ss #\"ü","username":"user <good> & co"}`; r.body != want {
		t.Errorf("body = %s, want %s", r.body, want)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || !reflect.DeepEqual(got, fields) {
		t.Errorf("decoded body = %v (%v), want %v", got, err, fields)
	}
	if step.Code != "code_1" {
		t.Errorf("step = %+v", step)
	}
}

func TestStepDecoding(t *testing.T) {
	accounts := `[{"accountNumber":"0001557338","name":"NAME","type":"CURRENT_ACCOUNT","currency":"NGN","status":"active","balance":14457}]`
	form := `{"title":"Security question","form":[{"type":"elements.input","name":"answer","hint":"City?","contentType":"string"}]}`
	tests := []struct {
		name    string
		resp    string
		code    string
		account string
		form    string
		rc      int
	}{
		{"linked", `{"status":200,"responseCode":99,"data":{"code":"code_a"}}`, "code_a", "", "", 99},
		{"linked with string status", `{"status":"successful","responseCode":99,"message":"ok","data":{"code":"code_b"}}`, "code_b", "", "", 99},
		{"linked with numeric string status", `{"status":"200","responseCode":99,"data":{"code":"code_c"}}`, "code_c", "", "", 99},
		{"accounts as bare array", `{"status":200,"responseCode":101,"data":` + accounts + `}`, "", "0001557338", "", 101},
		{"accounts under data.accounts", `{"status":"successful","responseCode":101,"data":{"accounts":` + accounts + `}}`, "", "0001557338", "", 101},
		{"form at data", `{"status":200,"responseCode":102,"data":` + form + `}`, "", "", "answer", 102},
		{"form under data.userInput", `{"status":"successful","responseCode":102,"data":{"userInput":` + form + `}}`, "", "", "answer", 102},
	}
	for _, tt := range tests {
		for _, op := range []string{"login", "commit"} {
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				f := newFake(t, reply(200, tt.resp))
				c := f.client()
				var step *Step
				var err error
				if op == "login" {
					step, err = c.Login(t.Context(), "s1", map[string]string{"username": "u"})
				} else {
					step, err = c.Commit(t.Context(), "s1", map[string]any{"account": 0})
				}
				if err != nil {
					t.Fatal(err)
				}
				r := f.only()
				r.check(t, "POST", "/v1/connect/"+op, true)
				if r.session != "s1" {
					t.Errorf("x-session-id = %q", r.session)
				}
				if step.ResponseCode != tt.rc || step.Code != tt.code {
					t.Errorf("step = %+v", step)
				}
				if tt.account != "" && (len(step.Accounts) != 1 || step.Accounts[0].AccountNumber != tt.account || step.Accounts[0].Balance != 14457) {
					t.Errorf("accounts = %+v", step.Accounts)
				}
				if tt.form != "" && (step.Form == nil || step.Form.Title != "Security question" || len(step.Form.Form) != 1 || step.Form.Form[0].Name != tt.form) {
					t.Errorf("form = %+v", step.Form)
				}
				if tt.name == "linked with string status" && step.Message != "ok" {
					t.Errorf("message = %q", step.Message)
				}
			})
		}
	}
}

func TestCommitSendsBody(t *testing.T) {
	f := newFake(t, reply(200, `{"status":200,"responseCode":99,"data":{"code":"c"}}`))
	if _, err := f.client().Commit(t.Context(), "s1", map[string]any{"account": 1}); err != nil {
		t.Fatal(err)
	}
	if r := f.only(); r.body != `{"account":1}` {
		t.Errorf("body = %s", r.body)
	}
}

func TestStepRefusalsAreErrors(t *testing.T) {
	tests := []struct {
		name string
		resp string
		kind Kind
		rc   int
		msg  string
	}{
		{"responseCode 400", `{"status":200,"responseCode":400,"message":"Invalid credentials"}`, KindRejected, 400, "Invalid credentials"},
		{"status failed", `{"status":"failed","message":"Invalid OTP Sent","responseCode":400}`, KindRejected, 400, "Invalid OTP Sent"},
		{"status failed without code", `{"status":"failed","message":"Wrong answer"}`, KindRejected, 400, "Wrong answer"},
		{"linked without code", `{"status":200,"responseCode":99,"data":{}}`, KindOther, 99, "linked without a code"},
		{"unknown responseCode", `{"status":200,"responseCode":105,"message":"Bank is down"}`, KindOther, 105, "Bank is down"},
		{"missing responseCode", `{"status":200}`, KindOther, 0, "unexpected responseCode 0"},
		{"not JSON", `<html>`, KindOther, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, reply(200, tt.resp))
			step, err := f.client().Commit(t.Context(), "s1", map[string]any{"otp": "12345"})
			if err == nil {
				t.Fatalf("step = %+v, want error", step)
			}
			me := asError(t, err)
			if me.Op != "commit" || me.Status != 200 || me.ResponseCode != tt.rc || me.Kind() != tt.kind {
				t.Errorf("error = %#v, kind %v", me, me.Kind())
			}
			if tt.msg != "" && me.Message != tt.msg {
				t.Errorf("message = %q, want %q", me.Message, tt.msg)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("attempts = %d, want 1", n)
			}
		})
	}
}

func TestHTTPErrorsAreClassifiedWithoutRetry(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name   string
		status int
		body   string
		kind   Kind
		msg    string
		rc     int
	}{
		{"400 keeps Mono's message", 400, `{"status":400,"message":"Invalid operation or the operation isn't allowed yet."}`, KindRejected, "Invalid operation or the operation isn't allowed yet.", 0},
		{"400 with responseCode", 400, `{"status":"failed","responseCode":400,"message":"Invalid OTP Sent"}`, KindRejected, "Invalid OTP Sent", 400},
		{"400 error field", 400, `{"error":"bad request body"}`, KindRejected, "bad request body", 0},
		{"401", 401, `{"message":"Unauthorized"}`, KindUnauthorized, "Unauthorized", 0},
		{"403", 403, `{"message":"You do not have access to this resource"}`, KindUnauthorized, "You do not have access to this resource", 0},
		{"404", 404, `{"message":"Session not found"}`, KindNotFound, "Session not found", 0},
		{"non-JSON body uses status text", 404, `<html>nope</html>`, KindNotFound, "Not Found", 0},
		{"long message trimmed", 409, `{"message":"` + long + `"}`, KindRejected, strings.Repeat("é", 200), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, reply(tt.status, tt.body))
			_, err := f.client().Login(t.Context(), "s1", map[string]string{"password": password})
			me := asError(t, err)
			if me.Op != "login" || me.Status != tt.status || me.Kind() != tt.kind || me.Message != tt.msg || me.ResponseCode != tt.rc {
				t.Errorf("error = %#v, kind %v", me, me.Kind())
			}
			if KindOf(err) != tt.kind {
				t.Errorf("KindOf = %v, want %v", KindOf(err), tt.kind)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("attempts = %d, want 1 (4xx must not be retried)", n)
			}
		})
	}
}

func TestRetriesServerErrorsThenSucceedsResendingBody(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n < 3 {
			reply(500, `{"message":"internal error"}`)(n, w, r)
			return
		}
		reply(200, `{"id":"sess_ok"}`)(n, w, r)
	})
	sess, err := f.client().CreateSession(t.Context(), SessionRequest{Institution: "inst_1", AuthMethod: InternetBanking})
	if err != nil {
		t.Fatal(err)
	}
	if sess.ID != "sess_ok" {
		t.Errorf("session = %+v", sess)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("attempts = %d, want 3", len(reqs))
	}
	for i, r := range reqs {
		r.check(t, "POST", "/v1/connect/session", true)
		if r.body != reqs[0].body || r.body == "" {
			t.Errorf("attempt %d: body %q, want %q", i+1, r.body, reqs[0].body)
		}
	}
}

// dropConnection answers nothing: the request was read, the reply is lost.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

func TestCallsMonoMustNotReceiveTwiceAreNeverResentAfterTheyMayHaveArrived(t *testing.T) {
	calls := map[string]func(*Client) error{
		"login": func(c *Client) error {
			_, err := c.Login(context.Background(), "s1", map[string]string{"password": password})
			return err
		},
		"commit": func(c *Client) error {
			_, err := c.Commit(context.Background(), "s1", map[string]any{"otp": "123456"})
			return err
		},
		"exchange": func(c *Client) error {
			_, err := c.Exchange(context.Background(), "code_1")
			return err
		},
	}
	answers := []struct {
		name    string
		respond func(n int, w http.ResponseWriter, r *http.Request)
		status  int
	}{
		{"connection dropped after the request", func(_ int, w http.ResponseWriter, _ *http.Request) { dropConnection(w) }, 0},
		{"500", reply(500, `{"message":"internal error"}`), 500},
		{"proxy 502", reply(502, `<html>Bad Gateway</html>`), 502},
		{"503 without Retry-After", reply(503, `{"message":"unavailable"}`), 503},
		{"504", reply(504, ``), 504},
	}
	eachWire(t, func(t *testing.T, wire Option) {
		for op, call := range calls {
			for _, a := range answers {
				t.Run(op+"/"+a.name, func(t *testing.T) {
					f := newFake(t, a.respond)
					err := call(f.client(wire))
					me := asError(t, err)
					if me.Kind() != KindUnknown || !me.Unknown || me.Status != a.status {
						t.Errorf("error = %#v, kind %v; want an unknown outcome", me, me.Kind())
					}
					if n := len(f.requests()); n != 1 {
						t.Errorf("attempts = %d, want 1: a second copy may be refused because the first was taken", n)
					}
					if strings.Contains(err.Error(), password) {
						t.Errorf("error %q leaks the password", err)
					}
				})
			}
		}
	})
}

func TestCallsMonoMustNotReceiveTwiceAreRetriedWhenMonoProvablyDidNothing(t *testing.T) {
	tests := []struct {
		name  string
		first func(n int, w http.ResponseWriter, r *http.Request)
	}{
		{"429", func(n int, w http.ResponseWriter, r *http.Request) { reply(429, `{"message":"slow down"}`)(n, w, r) }},
		{"503 with Retry-After", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0")
			reply(503, `{"message":"maintenance"}`)(n, w, r)
		}},
	}
	eachWire(t, func(t *testing.T, wire Option) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
					if n == 1 {
						tt.first(n, w, r)
						return
					}
					reply(200, `{"status":200,"responseCode":99,"data":{"code":"code_ok"}}`)(n, w, r)
				})
				step, err := f.client(wire).Login(t.Context(), "s1", map[string]string{"password": password})
				if err != nil || step.Code != "code_ok" {
					t.Fatalf("Login = %+v, %v", step, err)
				}
				if n := len(f.requests()); n != 2 {
					t.Errorf("attempts = %d, want 2", n)
				}
			})
		}
		t.Run("connection refused", func(t *testing.T) {
			f := newFake(t, reply(200, `[]`))
			c := f.client(wire, WithRetry(2, time.Millisecond))
			f.srv.Close()
			_, err := c.Login(t.Context(), "s1", map[string]string{"password": password})
			if me := asError(t, err); me.Kind() != KindTemporary || me.Unknown {
				t.Errorf("error = %#v: a refused connection never reached Mono", me)
			}
		})
		t.Run("kept connection closed by Mono while idle", func(t *testing.T) {
			if wire != nil || runtime.GOOS != "linux" {
				// net/http learns of the close from a reader goroutine,
				// which may not have run yet; other platforms have no
				// check before the write.
				t.Skip("only the default wire on Linux checks a kept connection before writing")
			}
			checkAKeptConnectionClosedWhileIdleIsDropped(t, newFake(t, listThenLogin), wire)
		})
	})
}

func TestRetriesTooManyRequests(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			reply(429, `{"message":"slow down"}`)(n, w, r)
			return
		}
		reply(200, `{"id":"acct_1"}`)(n, w, r)
	})
	id, err := f.client().Exchange(t.Context(), "code_1")
	if err != nil || id != "acct_1" {
		t.Fatalf("Exchange = %q, %v", id, err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("attempts = %d, want 2", n)
	}
}

func TestRetryAfterPastDeadlineFailsFast(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		reply(429, `{"message":"slow down"}`)(n, w, r)
	})
	start := time.Now()
	_, err := f.client(WithTimeout(80*time.Millisecond)).Exchange(t.Context(), "code_1")
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v; must not wait past the deadline", d)
	}
	me := asError(t, err)
	if me.Status != 429 || me.Kind() != KindTemporary || me.Message != "slow down" {
		t.Errorf("error = %#v", me)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

func TestRetriesExhaustedReturnTemporaryError(t *testing.T) {
	f := newFake(t, reply(503, `{"message":"bank unavailable"}`))
	_, err := f.client().Institutions(t.Context())
	me := asError(t, err)
	if me.Status != 503 || me.Kind() != KindTemporary || me.Message != "bank unavailable" || me.Op != "institutions" {
		t.Errorf("error = %#v", me)
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
}

func TestRetriesDisabledWithSingleAttempt(t *testing.T) {
	f := newFake(t, reply(500, `{"message":"boom"}`))
	_, err := f.client(WithRetry(1, 0)).Institutions(t.Context())
	if KindOf(err) != KindTemporary {
		t.Errorf("err = %v, kind %v", err, KindOf(err))
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

func TestRetriesNetworkErrors(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			dropConnection(w)
			return
		}
		reply(200, `{"id":"sess_2"}`)(n, w, r)
	})
	sess, err := f.client().CreateSession(t.Context(), SessionRequest{Institution: "inst_1", AuthMethod: InternetBanking})
	if err != nil || sess.ID != "sess_2" {
		t.Fatalf("CreateSession = %+v, %v", sess, err)
	}
	reqs := f.requests()
	if len(reqs) < 2 {
		t.Fatalf("attempts = %d, want at least 2", len(reqs))
	}
	for _, r := range reqs {
		if r.body != reqs[0].body {
			t.Errorf("body = %q, want %q", r.body, reqs[0].body)
		}
	}
}

func TestNetworkErrorIsTemporary(t *testing.T) {
	f := newFake(t, reply(200, `[]`))
	c := f.client(WithRetry(2, time.Millisecond))
	f.srv.Close()
	_, err := c.Login(t.Context(), "s1", map[string]string{"password": password})
	me := asError(t, err)
	if me.Status != 0 || me.Err == nil || me.Kind() != KindTemporary || me.Op != "login" {
		t.Errorf("error = %#v", me)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error %q leaks the password", err)
	}
}

func TestContextCancellationStopsRetriesPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		cancel()
		reply(500, `{"message":"boom"}`)(n, w, r)
	})
	start := time.Now()
	_, err := f.client(WithRetry(5, time.Second)).Institutions(ctx)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v after cancellation", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
	if me := asError(t, err); me.Status != 0 || me.Op != "institutions" {
		t.Errorf("error = %#v", me)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

func TestCancelledContextSendsNothing(t *testing.T) {
	f := newFake(t, reply(200, `[]`))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.client().Institutions(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("attempts = %d, want 0", n)
	}
}

func TestPerCallTimeoutOfALoginIsAnUnknownOutcome(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(100 * time.Millisecond):
		}
		reply(200, `{"status":200,"responseCode":99,"data":{"code":"late"}}`)(n, w, r)
	})
	start := time.Now()
	_, err := f.client(WithTimeout(20*time.Millisecond)).Login(t.Context(), "s1", map[string]string{"password": password})
	if d := time.Since(start); d > 90*time.Millisecond {
		t.Errorf("took %v with a 20ms timeout", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if me := asError(t, err); me.Status != 0 || me.Kind() != KindUnknown || me.Op != "login" {
		t.Errorf("error = %#v, kind %v: the login may have reached the bank", me, me.Kind())
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error %q leaks the password", err)
	}
}

func TestErrorsNeverContainThePassword(t *testing.T) {
	// Each server echoes what it was sent, as a careless API might.
	echo := func(status int, wrap func(string) string) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			msg, _ := json.Marshal("could not log in with " + string(body) + " raw " + password)
			w.WriteHeader(status)
			io.WriteString(w, wrap(string(msg)))
		}
	}
	plain := func(m string) string { return `{"message":` + m + `}` }
	tests := []struct {
		name    string
		respond func(int, http.ResponseWriter, *http.Request)
	}{
		{"400 echo", echo(400, plain)},
		{"401 echo in error field", echo(401, func(m string) string { return `{"error":` + m + `}` })},
		{"500 echo after retries", echo(500, plain)},
		{"200 responseCode 400 echo", echo(200, func(m string) string { return `{"status":200,"responseCode":400,"message":` + m + `}` })},
		{"200 failed echo", echo(200, func(m string) string { return `{"status":"failed","message":` + m + `}` })},
		{"200 unknown code echo", echo(200, func(m string) string { return `{"status":200,"responseCode":7,"message":` + m + `}` })},
	}
	escaped, _ := json.Marshal(password)
	leaks := []string{password, strings.Trim(string(escaped), `"`), "p*ss"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.respond)
			c := f.client()
			_, err := c.Login(t.Context(), "s1", map[string]string{"username": "user_good", "password": password})
			if err == nil {
				t.Fatal("want error")
			}
			_, cerr := c.Commit(t.Context(), "s1", map[string]any{"answer": password})
			if cerr == nil {
				t.Fatal("want commit error")
			}
			for _, e := range []error{err, cerr} {
				me := asError(t, e)
				for _, leak := range leaks {
					if strings.Contains(e.Error(), leak) || strings.Contains(me.Message, leak) {
						t.Errorf("error %q contains %q", e, leak)
					}
				}
			}
		})
	}
}

func TestExchangeAcceptsBothShapes(t *testing.T) {
	tests := []struct {
		name, resp, want string
		wantErr          bool
	}{
		{"top level", `{"id":"acct_top"}`, "acct_top", false},
		{"wrapped", `{"status":"successful","message":"ok","data":{"id":"acct_data"}}`, "acct_data", false},
		{"empty id", `{"id":""}`, "", true},
		{"failed", `{"status":"failed","message":"code expired"}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, reply(200, tt.resp))
			id, err := f.client().Exchange(t.Context(), "code_x")
			r := f.only()
			r.check(t, "POST", "/account/auth", true)
			jsonEqual(t, r.body, map[string]string{"code": "code_x"})
			if tt.wantErr {
				if me := asError(t, err); me.Op != "exchange" || me.Kind() != KindOther {
					t.Errorf("error = %#v", me)
				}
				if tt.name == "failed" && asError(t, err).Message != "code expired" {
					t.Errorf("message = %q", asError(t, err).Message)
				}
				return
			}
			if err != nil || id != tt.want {
				t.Errorf("Exchange = %q, %v; want %q", id, err, tt.want)
			}
		})
	}
}

func TestReauthTokenEscapesAccountID(t *testing.T) {
	for name, resp := range map[string]string{
		"top level": `{"token":"VwxcfeLRZvq1UlD5WiuN"}`,
		"wrapped":   `{"status":"successful","data":{"token":"VwxcfeLRZvq1UlD5WiuN"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, reply(200, resp))
			tok, err := f.client().ReauthToken(t.Context(), "acc/1 ?#x")
			if err != nil || tok != "VwxcfeLRZvq1UlD5WiuN" {
				t.Fatalf("ReauthToken = %q, %v", tok, err)
			}
			r := f.only()
			r.check(t, "POST", "/accounts/acc/1 ?#x/reauthorise", false)
			if want := "/accounts/acc%2F1%20%3F%23x/reauthorise"; r.escapedPath != want {
				t.Errorf("escaped path = %q, want %q", r.escapedPath, want)
			}
		})
	}
}

func TestReauthTokenWithoutTokenIsAnError(t *testing.T) {
	f := newFake(t, reply(200, `{}`))
	_, err := f.client().ReauthToken(t.Context(), "acc")
	if me := asError(t, err); me.Op != "reauthorise" || me.Kind() != KindOther {
		t.Errorf("error = %#v", me)
	}
}

func TestAccountDetailsIncludeMeta(t *testing.T) {
	const resp = `{"status":"successful","message":"Request was succesfully completed","data":{
		"account":{"id":"acct_1","name":"SAMUEL OLAMIDE","account_number":"0131883461","currency":"NGN",
			"balance":22644,"type":"Tier 1 Savings Account",
			"institution":{"name":"GTBank","bankCode":"058","type":"PERSONAL_BANKING"},"bvn":"1234"},
		"meta":{"data_status":"AVAILABLE","auth_method":"internet_banking"}}}`
	f := newFake(t, reply(200, resp))
	got, err := f.client().Account(t.Context(), "acct/1")
	if err != nil {
		t.Fatal(err)
	}
	r := f.only()
	r.check(t, "GET", "/v2/accounts/acct/1", false)
	if r.escapedPath != "/v2/accounts/acct%2F1" {
		t.Errorf("escaped path = %q", r.escapedPath)
	}
	want := AccountDetails{ID: "acct_1", Name: "SAMUEL OLAMIDE", AccountNumber: "0131883461", Currency: "NGN",
		Balance: 22644, Type: "Tier 1 Savings Account",
		Institution: DetailInstitution{Name: "GTBank", BankCode: "058", Type: "PERSONAL_BANKING"},
		DataStatus:  "AVAILABLE", AuthMethod: InternetBanking}
	if *got != want {
		t.Errorf("account = %+v\nwant %+v", *got, want)
	}
}

func TestAccountNotFound(t *testing.T) {
	f := newFake(t, reply(404, `{"status":"failed","message":"Account not found"}`))
	_, err := f.client().Account(t.Context(), "nope")
	if me := asError(t, err); me.Kind() != KindNotFound || me.Op != "account" || me.Message != "Account not found" {
		t.Errorf("error = %#v", me)
	}
}

func TestOptionsAndDefaults(t *testing.T) {
	c := NewClient("k")
	if c.baseURL != defaultBaseURL || c.timeout != 20*time.Second || c.attempts != 3 || c.backoff != 200*time.Millisecond || c.AppID() != "" {
		t.Errorf("defaults = %+v", c)
	}
	hc := &http.Client{}
	c = NewClient("k", WithBaseURL("http://x/"), WithHTTPClient(hc), WithTimeout(0), WithRetry(0, -1), WithAppID("a"))
	if c.baseURL != "http://x" || c.wire != (netHTTP{client: hc}) || c.timeout != 0 || c.attempts != 1 || c.backoff != 0 || c.AppID() != "a" {
		t.Errorf("options = %+v", c)
	}

	// A trailing slash on the base URL does not double the path separator.
	f := newFake(t, reply(200, `[]`))
	if _, err := NewClient(testKey, WithBaseURL(f.srv.URL+"/")).Institutions(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.only().check(t, "GET", "/v1/institutions", false)
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	c := NewClient("k", WithRetry(10, 200*time.Millisecond))
	for attempt := 1; attempt <= 10; attempt++ {
		limit := min(200*time.Millisecond<<(attempt-1), maxBackoff)
		for range 50 {
			if d := c.backoffFor(attempt); d < 0 || d > limit {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempt, d, limit)
			}
		}
	}
	if d := NewClient("k", WithRetry(3, 0)).backoffFor(2); d != 0 {
		t.Errorf("zero base backoff = %v", d)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		if got, ok := retryAfter(tt.in, now); got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestEmptyArgumentsAreRejectedLocally(t *testing.T) {
	f := newFake(t, reply(200, `{}`))
	c := f.client()
	ctx := t.Context()
	if _, err := c.Login(ctx, "", nil); err == nil {
		t.Error("Login with empty session id succeeded")
	}
	if _, err := c.Commit(ctx, "", nil); err == nil {
		t.Error("Commit with empty session id succeeded")
	}
	if _, err := c.Exchange(ctx, ""); err == nil {
		t.Error("Exchange with empty code succeeded")
	}
	if _, err := c.Reauthorise(ctx, ""); err == nil {
		t.Error("Reauthorise with empty id succeeded")
	}
	if _, err := c.Account(ctx, ""); err == nil {
		t.Error("Account with empty id succeeded")
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("requests = %d, want 0", n)
	}
}

func TestOversizedResponseIsAnError(t *testing.T) {
	big := `[` + strings.Repeat(" ", maxResponse) + `]`
	f := newFake(t, reply(200, big))
	_, err := f.client().Institutions(t.Context())
	if me := asError(t, err); me.Status != 200 || me.Kind() != KindOther {
		t.Errorf("error = %#v", me)
	}
}

func TestTheDefaultWireSpeaksTLSAndDropsAKeptConnectionMonoClosed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux's TCP state is read before a write")
	}
	f := newFakeTLS(t, listThenLogin)
	checkAKeptConnectionClosedWhileIdleIsDropped(t, f, f.trusted()) // a TLS peer closes with close_notify and its FIN
}

// listThenLogin answers the bank list and a login that links.
func listThenLogin(n int, w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/institutions" {
		reply(200, `[]`)(n, w, r)
		return
	}
	reply(200, `{"status":200,"responseCode":99,"data":{"code":"code_ok"}}`)(n, w, r)
}

// checkAKeptConnectionClosedWhileIdleIsDropped has f (listThenLogin)
// drop the connection a call kept, then logs in: the login must go once,
// on another connection, with no retry to hide behind.
func checkAKeptConnectionClosedWhileIdleIsDropped(t *testing.T, f *fake, opts ...Option) {
	t.Helper()
	c := f.client(append(opts, WithRetry(1, 0))...)
	if _, err := c.Institutions(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.srv.CloseClientConnections() // Mono drops the kept connection
	step, err := c.Login(t.Context(), "s1", map[string]string{"password": password})
	if err != nil || step.Code != "code_ok" {
		t.Fatalf("Login = %+v, %v: a closed idle connection must be found before the login is written", step, err)
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[1].path != "/v1/connect/login" {
		t.Errorf("requests = %+v, want the list and one login", reqs)
	}
}

func TestAFailedTLSHandshakeSendsNothingAndIsRetried(t *testing.T) {
	f := newFakeTLS(t, reply(200, `{"status":200,"responseCode":99,"data":{"code":"code_ok"}}`))
	c := f.client(WithRetry(2, time.Millisecond)) // the fake's certificate is not trusted
	_, err := c.Login(t.Context(), "s1", map[string]string{"password": password})
	me := asError(t, err)
	if me.Kind() != KindTemporary || me.Unknown {
		t.Errorf("error = %#v, kind %v: a refused handshake never carried the login", me, me.Kind())
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("requests = %d, want none", n)
	}
}

func TestAPeerThatNeverAnswersTheHandshakeDoesNotHoldTheCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	held := make(chan net.Conn, 16)
	go func() { // accepts, then says nothing
		for {
			conn, err := ln.Accept()
			if err != nil {
				close(held)
				return
			}
			held <- conn
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for conn := range held {
			conn.Close()
		}
	})
	c := NewClient(testKey, WithBaseURL("https://"+ln.Addr().String()), WithAppID(testApp), WithRetry(1, 0),
		WithTimeout(100*time.Millisecond))
	start := time.Now()
	_, err = c.Login(t.Context(), "s1", map[string]string{"password": password})
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v with a 100ms timeout", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the call's deadline", err)
	}
}

func TestTheProxiedWireTrustsTheRootsItIsGiven(t *testing.T) {
	f := newFakeTLS(t, reply(200, `{"status":200,"responseCode":99,"data":{"code":"code_ok"}}`))
	roots := x509.NewCertPool()
	roots.AddCert(f.srv.Certificate())
	tests := []struct {
		name  string
		roots *x509.CertPool
		sent  bool
	}{
		{"with the fake's roots", roots, true},
		{"with the system's", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(WithRetry(1, 0))
			c.wire = defaultWire(f.srv.URL, c.timeout, tt.roots, true) // as when the environment names a proxy
			_, err := c.Login(t.Context(), "s1", map[string]string{"password": password})
			if sent := err == nil; sent != tt.sent {
				t.Errorf("login error %v, want sent %v", err, tt.sent)
			}
		})
	}
}
