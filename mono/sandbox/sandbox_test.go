package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

const (
	gtbankID = "5f2d08be60b92e2888287702"
	key      = "test_sk_sandbox"
)

var hex24 = regexp.MustCompile(`^[0-9a-f]{24}$`)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// api speaks raw HTTP to a sandbox.
type api struct {
	t   *testing.T
	sb  *sandbox.Sandbox
	url string
	key string
}

func start(t *testing.T, opts sandbox.Options) *api {
	t.Helper()
	if opts.SlowDelay == 0 {
		opts.SlowDelay = 20 * time.Millisecond
	}
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return &api{t: t, sb: sb, url: srv.URL, key: key}
}

// reply is a decoded answer.
type reply struct {
	status int
	raw    []byte
	body   map[string]any
}

func (r reply) num(k string) float64 {
	v, _ := r.body[k].(float64)
	return v
}

func (r reply) str(k string) string {
	v, _ := r.body[k].(string)
	return v
}

func (r reply) obj(k string) map[string]any {
	v, _ := r.body[k].(map[string]any)
	return v
}

// send makes one request; body is sent as is if it is a string, as JSON
// otherwise, and not at all if nil.
func (a *api) send(ctx context.Context, method, path, session string, body any) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.key != "" {
		req.Header.Set("mono-sec-key", a.key)
	}
	if session != "" {
		req.Header.Set("x-session-id", session)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, raw: raw}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		a.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	_ = json.Unmarshal(raw, &r.body)
	return r, nil
}

func (a *api) do(method, path, session string, body any) reply {
	a.t.Helper()
	r, err := a.send(context.Background(), method, path, session, body)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (a *api) want(r reply, status int, what string) {
	a.t.Helper()
	if r.status != status {
		a.t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.raw)
	}
}

func (a *api) session(institution, method string) string {
	a.t.Helper()
	r := a.do("POST", "/v1/connect/session", "", map[string]any{"app": "app_test", "institution": institution, "auth_method": method})
	a.want(r, 200, "create session")
	id := r.str("id")
	if !strings.HasPrefix(id, "session_") {
		a.t.Fatalf("session id %q lacks session_ prefix", id)
	}
	return id
}

func (a *api) login(session string, body map[string]any) reply {
	a.t.Helper()
	return a.do("POST", "/v1/connect/login", session, body)
}

func (a *api) commit(session string, body any) reply {
	a.t.Helper()
	return a.do("POST", "/v1/connect/commit", session, body)
}

func (a *api) exchange(code string) reply {
	a.t.Helper()
	return a.do("POST", "/account/auth", "", map[string]any{"code": code})
}

func code(t *testing.T, r reply) string {
	t.Helper()
	if r.status != 200 || r.num("responseCode") != 99 {
		t.Fatalf("want 99, got status %d: %s", r.status, r.raw)
	}
	c, _ := r.obj("data")["code"].(string)
	if !strings.HasPrefix(c, "code_") {
		t.Fatalf("code %q lacks code_ prefix", c)
	}
	return c
}

func creds(user, password string) map[string]any {
	return map[string]any{"username": user, "password": password}
}

// link logs in at institution with login, answers every step (choosing
// account pick when offered several) and returns the exchanged account id.
func (a *api) link(institution, method string, login map[string]any, pick int) string {
	a.t.Helper()
	sess := a.session(institution, method)
	r := a.login(sess, login)
	for range 5 {
		if r.status != 200 {
			a.t.Fatalf("link: status %d: %s", r.status, r.raw)
		}
		switch r.num("responseCode") {
		case 99:
			x := a.exchange(code(a.t, r))
			a.want(x, 200, "exchange")
			return x.str("id")
		case 101:
			r = a.commit(sess, map[string]any{"account": pick})
		case 102:
			form, _ := r.obj("data")["form"].([]any)
			name, _ := form[0].(map[string]any)["name"].(string)
			answers := map[string]string{"otp": sandbox.OTP, "answer": sandbox.Answer}
			r = a.commit(sess, map[string]any{name: answers[name]})
		default:
			a.t.Fatalf("link: unexpected %s", r.raw)
		}
	}
	a.t.Fatal("link: too many steps")
	return ""
}

func TestInstitutionsListShape(t *testing.T) {
	a := start(t, sandbox.Options{})
	first := a.do("GET", "/v1/institutions", "", nil)
	a.want(first, 200, "institutions")
	second := a.do("GET", "/v1/institutions", "", nil)
	if !bytes.Equal(first.raw, second.raw) {
		t.Error("institutions list differs between calls")
	}
	var banks []mono.Institution
	if err := json.Unmarshal(first.raw, &banks); err != nil {
		t.Fatalf("institutions is not a bare array of institutions: %v", err)
	}
	if got := len(banks); got <= 20 {
		t.Fatalf("got %d institutions, want more than 20", got)
	}
	direct := sandbox.Banks()
	if len(direct) != len(banks) {
		t.Fatalf("Banks() has %d, endpoint %d", len(direct), len(banks))
	}

	seen := map[string]bool{}
	var twoMethods, threeFields, nonInput, nonASCII int
	for i, b := range banks {
		if b.ID != direct[i].ID {
			t.Errorf("entry %d: endpoint %s, Banks() %s", i, b.ID, direct[i].ID)
		}
		if !hex24.MatchString(b.ID) || seen[b.ID] {
			t.Errorf("%s: _id %q not a unique 24-hex id", b.Name, b.ID)
		}
		seen[b.ID] = true
		if n := utf8.RuneCountInString(b.Name); n == 0 || n > 30 {
			t.Errorf("%q: name length %d", b.Name, n)
		}
		if b.Type != "PERSONAL_BANKING" && b.Type != "BUSINESS_BANKING" {
			t.Errorf("%s: type %q", b.Name, b.Type)
		}
		if !strings.HasPrefix(b.Identifier, "mono.connections.") || b.Country != "ng" ||
			!strings.HasPrefix(b.Icon, "https://") || !strings.HasPrefix(b.Color, "#") {
			t.Errorf("%s: identifier %q country %q icon %q colour %q", b.Name, b.Identifier, b.Country, b.Icon, b.Color)
		}
		if len(b.AuthMethods) == 0 || b.UI == nil {
			t.Fatalf("%s: no auth methods or top-level ui", b.Name)
		}
		if got, want := mustJSON(t, *b.UI), mustJSON(t, b.AuthMethods[0].UI); got != want {
			t.Errorf("%s: top-level ui %s, want first method's %s", b.Name, got, want)
		}
		if len(b.AuthMethods) >= 2 {
			twoMethods++
		}
		for _, m := range b.AuthMethods {
			if m.Type != mono.InternetBanking && m.Type != mono.MobileBanking {
				t.Errorf("%s: auth method type %q", b.Name, m.Type)
			}
			if !strings.HasPrefix(m.UI.Title, "Log in to ") {
				t.Errorf("%s: title %q", b.Name, m.UI.Title)
			}
			inputs := 0
			for _, e := range m.UI.Form {
				if e.IsInput() {
					inputs++
				} else {
					nonInput++
				}
			}
			if inputs == 3 {
				threeFields++
			}
		}
		for _, r := range b.Name {
			if r > 127 {
				nonASCII++
				break
			}
		}
	}
	gtb := banks[0]
	if gtb.ID != gtbankID || gtb.Name != "GTBank" || gtb.AuthMethods[0].UI.Title != "Log in to GTBank" ||
		gtb.Identifier != "mono.connections.gtbank" {
		t.Errorf("GTBank entry differs from the seed: %+v", gtb)
	}
	for what, n := range map[string]int{"two auth methods": twoMethods, "three-field forms": threeFields,
		"non-input elements": nonInput, "names with non-ASCII characters": nonASCII} {
		if n == 0 {
			t.Errorf("no institution with %s", what)
		}
	}
	if threeFields < 2 {
		t.Errorf("%d three-field forms, want at least 2", threeFields)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEachUserFlowLinksEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		login    map[string]any
		commits  []any
		codes    []float64 // responseCode of login, then of each commit
		accounts int       // length of the 101 list, if any
		pick     int       // the account chosen
	}{
		{name: "user_good links at once", login: creds("user_good", sandbox.Password), codes: []float64{99}},
		{name: "user_multi links the chosen account", login: creds("user_multi", sandbox.Password),
			commits: []any{map[string]any{"account": 2}}, codes: []float64{101, 99}, accounts: 3, pick: 2},
		{name: "user_multi accepts a numeric string index", login: creds("user_multi", sandbox.Password),
			commits: []any{map[string]any{"account": "1"}}, codes: []float64{101, 99}, accounts: 3, pick: 1},
		{name: "user_question accepts the answer in any case", login: creds("user_question", sandbox.Password),
			commits: []any{map[string]any{"answer": "  LaGos "}}, codes: []float64{102, 99}},
		{name: "user_otp accepts the OTP as a number", login: creds("user_otp", sandbox.Password),
			commits: []any{map[string]any{"otp": 123456}}, codes: []float64{102, 99}},
		{name: "user_mfa chains OTP then account choice", login: creds("user_mfa", sandbox.Password),
			commits: []any{map[string]any{"otp": "123456"}, map[string]any{"account": 1}}, codes: []float64{102, 101, 99}, accounts: 2, pick: 1},
		{name: "user_slow links after its delay", login: creds("user_slow", sandbox.Password), codes: []float64{99}},
		{name: "user_star links with * # and space in the password", login: creds("user_star", "p*ss #good"), codes: []float64{99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			sess := a.session(gtbankID, mono.InternetBanking)
			r := a.login(sess, tt.login)
			var offered []mono.Account
			for i, want := range tt.codes {
				if r.status != 200 || r.num("responseCode") != want || r.num("status") != 200 {
					t.Fatalf("step %d: want status 200 responseCode %v, got %d %s", i, want, r.status, r.raw)
				}
				switch want {
				case 101:
					var body struct{ Data []mono.Account }
					if err := json.Unmarshal(r.raw, &body); err != nil {
						t.Fatal(err)
					}
					offered = body.Data
					if len(offered) != tt.accounts {
						t.Fatalf("offered %d accounts, want %d", len(offered), tt.accounts)
					}
					for _, acc := range offered {
						if !regexp.MustCompile(`^\d{10}$`).MatchString(acc.AccountNumber) || acc.Status != "active" || acc.Name == "" {
							t.Errorf("bad account %+v", acc)
						}
					}
				case 102:
					var body struct{ Data mono.UI }
					if err := json.Unmarshal(r.raw, &body); err != nil {
						t.Fatal(err)
					}
					if body.Data.Title == "" || len(body.Data.Form) != 1 || !body.Data.Form[0].IsInput() {
						t.Fatalf("bad 102 form %s", r.raw)
					}
				}
				if i < len(tt.commits) {
					r = a.commit(sess, tt.commits[i])
				}
			}
			x := a.exchange(code(t, r))
			a.want(x, 200, "exchange")
			id := x.str("id")
			if !hex24.MatchString(id) {
				t.Fatalf("account id %q is not 24 hex", id)
			}
			d := a.do("GET", "/v2/accounts/"+id, "", nil)
			a.want(d, 200, "account details")
			if d.str("status") != "successful" || d.str("message") != "Request was succesfully completed" || d.str("timestamp") == "" {
				t.Errorf("details envelope %s", d.raw)
			}
			acc := d.obj("data")["account"].(map[string]any)
			meta := d.obj("data")["meta"].(map[string]any)
			if acc["id"] != id || meta["data_status"] != "AVAILABLE" || meta["auth_method"] != mono.InternetBanking {
				t.Errorf("details %s", d.raw)
			}
			if bvn, ok := acc["bvn"]; !ok || bvn != nil {
				t.Errorf("bvn: want null, got %v (present %v)", bvn, ok)
			}
			inst := acc["institution"].(map[string]any)
			if inst["name"] != "GTBank" || inst["bankCode"] != "058" || inst["type"] != "PERSONAL_BANKING" {
				t.Errorf("details institution %v", inst)
			}
			if offered != nil {
				want := offered[tt.pick]
				if acc["account_number"] != want.AccountNumber || acc["currency"] != want.Currency || acc["type"] != want.Type {
					t.Errorf("linked %v, want the chosen %+v", acc, want)
				}
			}
		})
	}
}

func TestOtherFormShapesLogIn(t *testing.T) {
	banks := sandbox.Banks()
	find := func(pred func(mono.Institution, mono.AuthMethod) bool) (string, mono.AuthMethod) {
		for _, b := range banks {
			for _, m := range b.AuthMethods {
				if pred(b, m) {
					return b.ID, m
				}
			}
		}
		t.Fatal("no such institution")
		return "", mono.AuthMethod{}
	}
	inputs := func(m mono.AuthMethod) (names []string) {
		for _, e := range m.UI.Form {
			if e.IsInput() {
				names = append(names, e.Name)
			}
		}
		return names
	}
	mobileID, _ := find(func(_ mono.Institution, m mono.AuthMethod) bool { return m.Type == mono.MobileBanking })
	tokenID, _ := find(func(_ mono.Institution, m mono.AuthMethod) bool { return len(inputs(m)) == 3 })
	noteID, _ := find(func(_ mono.Institution, m mono.AuthMethod) bool {
		return len(m.UI.Form) > 0 && !m.UI.Form[0].IsInput()
	})
	tests := []struct {
		name        string
		institution string
		method      string
		body        map[string]any
		status      int
		message     string
	}{
		{"mobile banking logs in with the app PIN", mobileID, mono.MobileBanking,
			map[string]any{"username": "user_good", "pin": "1234"}, 200, ""},
		{"mobile banking refuses a wrong PIN", mobileID, mono.MobileBanking,
			map[string]any{"username": "user_good", "pin": 4321}, 400, "Invalid login credentials"},
		{"token form logs in with password and token PIN", tokenID, mono.InternetBanking,
			map[string]any{"username": "user_good", "password": "pass_good", "pin": 1234}, 200, ""},
		{"token form refuses a wrong token PIN", tokenID, mono.InternetBanking,
			map[string]any{"username": "user_good", "password": "pass_good", "pin": "0000"}, 400, "Invalid login credentials"},
		{"token form needs the PIN", tokenID, mono.InternetBanking,
			map[string]any{"username": "user_good", "password": "pass_good"}, 400, "Missing field: pin"},
		{"a leading notice element is not the username", noteID, mono.InternetBanking,
			map[string]any{"username": "user_good", "password": "pass_good"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			r := a.login(a.session(tt.institution, tt.method), tt.body)
			a.want(r, tt.status, "login")
			if tt.status == 200 {
				code(t, r)
			} else if r.str("message") != tt.message {
				t.Errorf("message %q, want %q", r.str("message"), tt.message)
			}
		})
	}
}

func TestLoginRefusals(t *testing.T) {
	tests := []struct {
		name    string
		body    map[string]any
		status  int
		rc      float64
		message string
	}{
		{"wrong password", creds("user_good", "pass_bad"), 400, 400, "Invalid login credentials"},
		{"unknown user", creds("nobody", "pass_good"), 400, 400, "Invalid login credentials"},
		{"user_star without the special characters", creds("user_star", "pssgood"), 400, 400, "Invalid login credentials"},
		{"locked with the right password", creds("user_locked", "pass_good"), 400, 400, "Your account has been locked by the bank"},
		{"locked with any password", creds("user_locked", "whatever"), 400, 400, "Your account has been locked by the bank"},
		{"missing password", map[string]any{"username": "user_good"}, 400, 0, "Missing field: password"},
		{"empty username", creds("", "pass_good"), 400, 0, "Missing field: username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			sess := a.session(gtbankID, mono.InternetBanking)
			r := a.login(sess, tt.body)
			a.want(r, tt.status, "login")
			if r.num("status") != 400 || r.num("responseCode") != tt.rc || r.str("message") != tt.message {
				t.Errorf("got %s, want status 400 responseCode %v message %q", r.raw, tt.rc, tt.message)
			}
			// A refused login leaves the session open for another try.
			code(t, a.login(sess, creds("user_good", sandbox.Password)))
		})
	}
}

func TestWrongInputKeepsAwaitingThenCorrectSucceeds(t *testing.T) {
	tests := []struct {
		name    string
		user    string
		wrong   []any
		message string
		right   any
	}{
		{"wrong OTP", "user_otp", []any{map[string]any{"otp": "000000"}, map[string]any{"otp": 12345}}, "Invalid OTP Sent",
			map[string]any{"otp": "123456"}},
		{"wrong security answer", "user_question", []any{map[string]any{"answer": "Abuja"}}, "Invalid answer provided",
			map[string]any{"answer": "lagos"}},
		{"account out of range", "user_multi", []any{map[string]any{"account": 3}, map[string]any{"account": -1},
			map[string]any{"account": "x"}, map[string]any{"account": 1.5}}, "Invalid account selected",
			map[string]any{"account": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			sess := a.session(gtbankID, mono.InternetBanking)
			a.want(a.login(sess, creds(tt.user, sandbox.Password)), 200, "login")
			for _, body := range tt.wrong {
				r := a.commit(sess, body)
				if r.status != 200 || r.num("status") != 200 || r.num("responseCode") != 400 || r.str("message") != tt.message {
					t.Fatalf("commit %v: got %d %s, want 200 responseCode 400 %q", body, r.status, r.raw, tt.message)
				}
			}
			r := a.commit(sess, map[string]any{"unrelated": "x"})
			a.want(r, 400, "commit without the awaited field")
			code(t, a.commit(sess, tt.right))
		})
	}
}

func TestCommitWithoutPendingStepIsRefused(t *testing.T) {
	a := start(t, sandbox.Options{})
	sess := a.session(gtbankID, mono.InternetBanking)
	const want = `{"status":400,"message":"Invalid operation or the operation isn't allowed yet."}`

	r := a.commit(sess, map[string]any{"otp": "123456"})
	a.want(r, 400, "commit before login")
	if got := strings.TrimSpace(string(r.raw)); got != want {
		t.Errorf("commit before login: %s, want %s", got, want)
	}
	code(t, a.login(sess, creds("user_good", sandbox.Password)))
	r = a.commit(sess, map[string]any{"otp": "123456"})
	a.want(r, 400, "commit after linking")
	if got := strings.TrimSpace(string(r.raw)); got != want {
		t.Errorf("commit after linking: %s, want %s", got, want)
	}
	r = a.login(sess, creds("user_good", sandbox.Password))
	a.want(r, 400, "login after linking")
	if r.str("message") != "Invalid operation or the operation isn't allowed yet." {
		t.Errorf("login after linking: %s", r.raw)
	}
}

func TestSecretKeyIsRequired(t *testing.T) {
	const unauthorized = `{"status":401,"message":"Unauthorized: invalid secret key"}`
	tests := []struct {
		name   string
		secret string
		sent   string
		status int
	}{
		{"missing key is refused", "", "", 401},
		{"any key accepted when none configured", "", "live_sk_whatever", 200},
		{"wrong key refused", "test_sk_right", "test_sk_wrong", 401},
		{"right key accepted", "test_sk_right", "test_sk_right", 200},
		{"missing key refused when one is configured", "test_sk_right", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{SecretKey: tt.secret})
			a.key = tt.sent
			for _, path := range []string{"/v1/institutions", "/v2/accounts/000000000000000000000000", "/nowhere"} {
				r := a.do("GET", path, "", nil)
				if tt.status == 401 {
					a.want(r, 401, path)
					if got := strings.TrimSpace(string(r.raw)); got != unauthorized {
						t.Errorf("%s: %s, want %s", path, got, unauthorized)
					}
				} else if r.status == 401 {
					t.Errorf("%s: refused a valid key", path)
				}
			}
			want := 0
			if tt.status == 200 {
				want = 1
			}
			if got := a.sb.Calls("institutions"); got != want {
				t.Errorf("Calls(institutions) = %d, want %d", got, want)
			}
		})
	}
}

func TestUnknownSessionIsNotFound(t *testing.T) {
	clk := newClock()
	a := start(t, sandbox.Options{Now: clk.Now, SessionTTL: time.Minute})
	expired := a.session(gtbankID, mono.InternetBanking)
	clk.Advance(time.Minute)
	const want = `{"status":404,"message":"Session not found or expired"}`
	tests := []struct {
		name, path, session string
	}{
		{"login with no session header", "/v1/connect/login", ""},
		{"login with an unknown session", "/v1/connect/login", "session_nope"},
		{"login with an expired session", "/v1/connect/login", expired},
		{"commit with an unknown session", "/v1/connect/commit", "session_nope"},
		{"commit with no session header", "/v1/connect/commit", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do("POST", tt.path, tt.session, creds("user_good", sandbox.Password))
			a.want(r, 404, tt.name)
			if got := strings.TrimSpace(string(r.raw)); got != want {
				t.Errorf("%s, want %s", got, want)
			}
		})
	}
}

func TestSessionCreation(t *testing.T) {
	clk := newClock()
	a := start(t, sandbox.Options{Now: clk.Now, SessionTTL: 5 * time.Minute})
	r := a.do("POST", "/v1/connect/session", "", map[string]any{"app": "app_1", "institution": gtbankID, "auth_method": "internet_banking"})
	a.want(r, 200, "session")
	var got mono.Session
	if err := json.Unmarshal(r.raw, &got); err != nil {
		t.Fatal(err)
	}
	gtb := sandbox.Banks()[0]
	if got.App != "app_1" || got.Institution != gtbankID || got.AuthMethod != "internet_banking" ||
		got.ExpiresAt != clk.Now().Add(5*time.Minute).UnixMilli() || mustJSON(t, got.UI) != mustJSON(t, gtb.AuthMethods[0].UI) || got.Reauth != nil {
		t.Errorf("session %s", r.raw)
	}

	tests := []struct {
		name string
		body map[string]any
	}{
		{"missing app", map[string]any{"institution": gtbankID, "auth_method": "internet_banking"}},
		{"unknown institution", map[string]any{"app": "a", "institution": "000000000000000000000000", "auth_method": "internet_banking"}},
		{"auth method the bank lacks", map[string]any{"app": "a", "institution": gtbankID, "auth_method": "mobile_banking"}},
		{"missing auth method", map[string]any{"app": "a", "institution": gtbankID}},
		{"unknown reauth token", map[string]any{"reauth_token": "AAAAAAAAAAAAAAAAAAAA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do("POST", "/v1/connect/session", "", tt.body)
			a.want(r, 400, tt.name)
			if r.str("message") == "" {
				t.Errorf("no message: %s", r.raw)
			}
		})
	}
}

func TestCodeIsSingleUseAndExpires(t *testing.T) {
	clk := newClock()
	a := start(t, sandbox.Options{Now: clk.Now})
	const want = `{"message":"Invalid or expired code"}`

	c := code(t, a.login(a.session(gtbankID, mono.InternetBanking), creds("user_good", sandbox.Password)))
	a.want(a.exchange(c), 200, "first exchange")
	r := a.exchange(c)
	a.want(r, 400, "second exchange")
	if got := strings.TrimSpace(string(r.raw)); got != want {
		t.Errorf("second exchange: %s, want %s", got, want)
	}

	c = code(t, a.login(a.session(gtbankID, mono.InternetBanking), creds("user_good", sandbox.Password)))
	clk.Advance(10*time.Minute + time.Second)
	a.want(a.exchange(c), 400, "exchange after ten minutes")
	a.want(a.exchange("code_unknown"), 400, "exchange of an unknown code")
}

func TestRelinkingTheSameAccountGivesTheSameID(t *testing.T) {
	a := start(t, sandbox.Options{})
	accessID := sandbox.Banks()[1].ID
	good := creds("user_good", sandbox.Password)
	multi := creds("user_multi", sandbox.Password)

	first := a.link(gtbankID, mono.InternetBanking, good, 0)
	if again := a.link(gtbankID, mono.InternetBanking, good, 0); again != first {
		t.Errorf("relinking gave %s, first link %s", again, first)
	}
	if other := a.link(accessID, mono.InternetBanking, good, 0); other == first {
		t.Error("same id for a different bank")
	}
	if m0, m1 := a.link(gtbankID, mono.InternetBanking, multi, 0), a.link(gtbankID, mono.InternetBanking, multi, 1); m0 == m1 {
		t.Error("same id for two different accounts")
	}
	if again := a.link(gtbankID, mono.InternetBanking, multi, 2); again != a.link(gtbankID, mono.InternetBanking, multi, 2) {
		t.Error("relinking a chosen account changed its id")
	}
}

func TestReauthTokenSessions(t *testing.T) {
	tests := []struct {
		user  string
		rc    float64
		title string
	}{
		{"user_otp", 102, "GTBank is requesting you to enter your OTP to continue"},
		{"user_mfa", 102, "GTBank is requesting you to enter your OTP to continue"},
		{"user_good", 99, ""},
		{"user_question", 99, ""},
	}
	for _, tt := range tests {
		t.Run(tt.user+" gets "+map[float64]string{99: "99", 102: "102"}[tt.rc], func(t *testing.T) {
			a := start(t, sandbox.Options{})
			id := a.link(gtbankID, mono.InternetBanking, creds(tt.user, sandbox.Password), 1)
			tok := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil)
			a.want(tok, 200, "reauthorise")
			token := tok.str("token")
			if len(token) != 20 {
				t.Fatalf("token %q is not 20 characters", token)
			}

			r := a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token})
			a.want(r, 200, "reauth session")
			reauth := r.obj("reauth")
			if r.str("status") != "successful" || r.str("message") != "Session created successfully" ||
				r.str("institution") != gtbankID || r.str("auth_method") != mono.InternetBanking || r.obj("ui") == nil ||
				reauth["response_code"] != tt.rc || reauth["message"] == "" {
				t.Fatalf("reauth session %s", r.raw)
			}
			a.want(a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token}), 400, "reused token")

			sess := r.str("id")
			a.want(a.login(sess, creds(tt.user, sandbox.Password)), 400, "login on a reauth session")
			if tt.rc == 99 {
				a.want(a.commit(sess, map[string]any{"otp": sandbox.OTP}), 400, "commit on a finished reauth")
				return
			}
			var s mono.Session
			if err := json.Unmarshal(r.raw, &s); err != nil {
				t.Fatal(err)
			}
			if s.UI.Title != tt.title || len(s.UI.Form) != 1 || s.UI.Form[0].Name != "otp" || s.UI.Form[0].Hint != "Enter OTP" ||
				s.UI.Form[0].ContentType != "password" || s.UI.Form[0].MaxLength != 6 || s.Reauth.Message != tt.title {
				t.Errorf("reauth OTP form %s", r.raw)
			}
			bad := a.commit(sess, map[string]any{"otp": 1})
			if bad.status != 200 || bad.num("responseCode") != 400 {
				t.Errorf("wrong reauth OTP: %s", bad.raw)
			}
			x := a.exchange(code(t, a.commit(sess, map[string]any{"otp": 123456})))
			a.want(x, 200, "exchange after reauth")
			if x.str("id") != id {
				t.Errorf("reauth linked %s, want the same account %s", x.str("id"), id)
			}
		})
	}
}

func TestReauthTokenFailures(t *testing.T) {
	clk := newClock()
	a := start(t, sandbox.Options{Now: clk.Now})
	a.want(a.do("POST", "/accounts/000000000000000000000000/reauthorise", "", nil), 404, "reauthorise an unknown account")
	id := a.link(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	token := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil).str("token")
	clk.Advance(10 * time.Minute)
	a.want(a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token}), 400, "expired token")
}

func TestSlowUserHonoursCancelledRequest(t *testing.T) {
	a := start(t, sandbox.Options{SlowDelay: 2 * time.Second})
	sess := a.session(gtbankID, mono.InternetBanking)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := a.send(ctx, "POST", "/v1/connect/login", sess, creds("user_slow", sandbox.Password))
	if err == nil {
		t.Fatal("slow login answered before its delay")
	}
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("cancelled slow login took %v", took)
	}
	// The cancelled login must have stopped waiting and released the
	// session: another login on it goes through at once.
	deadline := time.Now().Add(time.Second)
	for {
		r := a.login(sess, creds("user_good", sandbox.Password))
		if r.status == 200 {
			code(t, r)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still busy after the cancelled slow login: %s", r.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("cancelled slow login held the session for %v", took)
	}
}

func TestMalformedJSONIsBadRequest(t *testing.T) {
	a := start(t, sandbox.Options{})
	sess := a.session(gtbankID, mono.InternetBanking)
	tests := []struct {
		name, path, session, body string
	}{
		{"session: truncated object", "/v1/connect/session", "", `{"app":`},
		{"session: wrong field type", "/v1/connect/session", "", `{"app":5,"institution":"x","auth_method":"y"}`},
		{"session: empty body", "/v1/connect/session", "", ``},
		{"login: not JSON", "/v1/connect/login", sess, `username=user_good`},
		{"login: an array", "/v1/connect/login", sess, `["user_good"]`},
		{"login: trailing garbage", "/v1/connect/login", sess, `{"username":"user_good"} x`},
		{"commit: truncated", "/v1/connect/commit", sess, `{"otp":"1`},
		{"exchange: not an object", "/account/auth", "", `"code_x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do("POST", tt.path, tt.session, tt.body)
			a.want(r, 400, tt.name)
			if r.num("status") != 400 || r.str("message") == "" {
				t.Errorf("body %s", r.raw)
			}
		})
	}
}

func TestUnknownRouteAndWrongMethod(t *testing.T) {
	a := start(t, sandbox.Options{})
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/nowhere", 404},
		{"GET", "/", 404},
		{"GET", "/v2/accounts/000000000000000000000000", 404},
		{"GET", "/v1/connect/login", 405},
		{"POST", "/v1/institutions", 405},
		{"DELETE", "/v1/connect/session", 405},
		{"GET", "/accounts/abc/reauthorise", 405},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := a.do(tt.method, tt.path, "", nil)
			a.want(r, tt.status, tt.path)
			if r.num("status") != float64(tt.status) || r.str("message") == "" {
				t.Errorf("body %s", r.raw)
			}
		})
	}
}

func TestCallsCountEachEndpoint(t *testing.T) {
	a := start(t, sandbox.Options{})
	a.do("GET", "/v1/institutions", "", nil)
	a.do("GET", "/v1/institutions", "", nil)
	id := a.link(gtbankID, mono.InternetBanking, creds("user_mfa", sandbox.Password), 0) // session, login, 2 commits, exchange
	a.do("POST", "/accounts/"+id+"/reauthorise", "", nil)
	a.do("GET", "/v2/accounts/"+id, "", nil)
	a.do("GET", "/v2/accounts/000000000000000000000000", "", nil) // unknown still counts
	a.do("POST", "/v1/connect/login", "session_nope", "{}")       // unknown session still counts
	a.key = ""
	a.do("GET", "/v1/institutions", "", nil) // no key: not counted

	want := map[string]int{"institutions": 2, "session": 1, "login": 2, "commit": 2, "exchange": 1, "reauthorise": 1, "account": 2, "nonsense": 0}
	for op, n := range want {
		if got := a.sb.Calls(op); got != n {
			t.Errorf("Calls(%q) = %d, want %d", op, got, n)
		}
	}
}

func TestUsersAreListed(t *testing.T) {
	sb := sandbox.New(sandbox.Options{})
	users := map[string]sandbox.User{}
	for _, u := range sb.Users() {
		if u.Flow == "" || u.Note == "" || u.Password == "" {
			t.Errorf("incomplete user %+v", u)
		}
		users[u.Username] = u
	}
	for _, name := range []string{"user_good", "user_multi", "user_question", "user_otp", "user_mfa", "user_slow", "user_star", "user_locked"} {
		if _, ok := users[name]; !ok {
			t.Errorf("%s missing from Users()", name)
		}
	}
	if got, want := users["user_star"].Password, "p*ss #good"; got != want {
		t.Errorf("user_star password %q, want %q", got, want)
	}
}
