package sandbox_test

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

var (
	isoMillis = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
	sessV2    = regexp.MustCompile(`^sess_[a-z0-9]{24}$`)
	codeV2Re  = regexp.MustCompile(`^code_[a-z0-9]{24}$`)
	digits10  = regexp.MustCompile(`^\d{10}$`)
)

// customer is the customer object every v2 session in these tests names.
var customer = map[string]any{"name": "Ada Obi", "email": "ada@example.com"}

// canon is v as JSON with object keys sorted, so a decoded map and the
// struct it came from compare equal.
func canon(t *testing.T, v any) string {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(mustJSON(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, out)
}

// keys lists m's keys, sorted.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// wantV2 fails unless r is a v2 envelope with HTTP status httpStatus,
// status state ("successful" or "failed"), a message, an ISO-8601 UTC
// millisecond timestamp, a data key, and a top-level responseCode exactly
// when rc is not zero (and then equal to it). It returns data.
func wantV2(t *testing.T, r reply, httpStatus int, state string, rc float64) any {
	t.Helper()
	if r.status != httpStatus {
		t.Fatalf("HTTP %d, want %d: %s", r.status, httpStatus, r.raw)
	}
	want := []string{"data", "message", "status", "timestamp"}
	if rc != 0 {
		want = append(want, "responseCode")
		sort.Strings(want)
	}
	if got := keys(r.body); !slices.Equal(got, want) {
		t.Fatalf("envelope keys %v, want %v: %s", got, want, r.raw)
	}
	if r.str("status") != state || r.str("message") == "" || !isoMillis.MatchString(r.str("timestamp")) {
		t.Fatalf("envelope %s, want status %q, a message and an ISO timestamp", r.raw, state)
	}
	if rc != 0 && r.num("responseCode") != rc {
		t.Fatalf("responseCode %v, want %v: %s", r.body["responseCode"], rc, r.raw)
	}
	if state == "failed" && r.body["data"] != nil {
		t.Fatalf("failed envelope with data: %s", r.raw)
	}
	return r.body["data"]
}

// wantRefusal fails unless r is HTTP 400 with a failed envelope, top-level
// responseCode 400 and, if message is not empty, that message.
func wantRefusal(t *testing.T, r reply, message string) {
	t.Helper()
	wantV2(t, r, 400, "failed", 400)
	if message != "" && r.str("message") != message {
		t.Fatalf("message %q, want %q", r.str("message"), message)
	}
}

// dataOf is r's data object.
func dataOf(t *testing.T, r reply) map[string]any {
	t.Helper()
	d, ok := r.body["data"].(map[string]any)
	if !ok {
		t.Fatalf("data is not an object: %s", r.raw)
	}
	return d
}

// sessionV2 opens a v2 session for the test customer and returns its id.
func (a *api) sessionV2(institution, method string) string {
	a.t.Helper()
	r := a.do("POST", "/v2/connect/session", "", map[string]any{
		"institution": institution, "auth_method": method, "scope": "financial_data", "customer": customer})
	d := wantV2(a.t, r, 200, "successful", 0).(map[string]any)
	id, _ := d["session"].(map[string]any)["id"].(string)
	if !sessV2.MatchString(id) {
		a.t.Fatalf("session id %q is not sess_ and 24 lowercase alphanumerics", id)
	}
	return id
}

// codeV2 is the code of a v2 login or commit answer with responseCode 99
// at the top level.
func codeV2(t *testing.T, r reply) string {
	t.Helper()
	d := wantV2(t, r, 200, "successful", 99).(map[string]any)
	c, _ := d["code"].(string)
	if !codeV2Re.MatchString(c) || len(d) != 1 {
		t.Fatalf("data %v, want just a code_ and 24 lowercase alphanumerics", d)
	}
	return c
}

// exchangeV2 exchanges code on /v2/accounts/auth and returns data.id.
func (a *api) exchangeV2(code string) string {
	a.t.Helper()
	r := a.do("POST", "/v2/accounts/auth", "", map[string]any{"code": code})
	d := wantV2(a.t, r, 200, "successful", 0).(map[string]any)
	id, _ := d["id"].(string)
	if !hex24.MatchString(id) || len(d) != 1 {
		a.t.Fatalf("exchange data %v, want {id: 24 hex}", d)
	}
	return id
}

// offeredNumbers lists the account numbers of a 101 answer.
func offeredNumbers(t *testing.T, r reply) []string {
	t.Helper()
	accounts, _ := dataOf(t, r)["accounts"].([]any)
	var out []string
	for _, acc := range accounts {
		n, _ := acc.(map[string]any)["accountNumber"].(string)
		out = append(out, n)
	}
	return out
}

// linkV2 links through v2, answering every step (choosing the account at
// pick by its number), and returns the account id.
func (a *api) linkV2(institution, method string, login map[string]any, pick int) string {
	a.t.Helper()
	sess := a.sessionV2(institution, method)
	r := a.do("POST", "/v2/connect/login", sess, login)
	for range 5 {
		switch r.num("responseCode") {
		case 99:
			return a.exchangeV2(codeV2(a.t, r))
		case 101:
			r = a.do("POST", "/v2/connect/commit", sess, map[string]any{"accountNumber": offeredNumbers(a.t, r)[pick]})
		case 102:
			form, _ := dataOf(a.t, r)["userInput"].(map[string]any)["form"].([]any)
			name, _ := form[0].(map[string]any)["name"].(string)
			answers := map[string]string{"otp": sandbox.OTP, "answer": sandbox.Answer}
			r = a.do("POST", "/v2/connect/commit", sess, map[string]any{name: answers[name]})
		default:
			a.t.Fatalf("linkV2: unexpected %d %s", r.status, r.raw)
		}
	}
	a.t.Fatal("linkV2: too many steps")
	return ""
}

func TestV2RoutesRequireTheSecretKeyWithAFailedEnvelope(t *testing.T) {
	routes := []struct{ method, path string }{
		{"GET", "/v3/institutions?scope=financial_data"},
		{"POST", "/v2/connect/session"},
		{"POST", "/v2/connect/login"},
		{"POST", "/v2/connect/commit"},
		{"POST", "/v2/accounts/auth"},
		{"POST", "/v2/connect/reauth/session"},
		{"POST", "/v2/connect/reauth/login"},
		{"GET", "/v2/connect/sandbox"},
		{"POST", "/v2/accounts/000000000000000000000000/unlink"},
	}
	for _, key := range []string{"", "test_sk_wrong"} {
		for _, rt := range routes {
			t.Run(rt.method+" "+rt.path+" key "+key, func(t *testing.T) {
				a := start(t, sandbox.Options{SecretKey: "test_sk_right"})
				a.key = key
				r := a.do(rt.method, rt.path, "", "{}")
				wantV2(t, r, 401, "failed", 0)
				if r.str("message") != "Unauthorized: invalid secret key" {
					t.Errorf("message %q", r.str("message"))
				}
				for _, op := range []string{"institutions", "session", "login", "commit", "exchange", "reauth_session", "reauth_login", "sandbox_credentials", "unlink"} {
					if n := a.sb.Calls(op); n != 0 {
						t.Errorf("Calls(%s) = %d for an unauthorised request", op, n)
					}
				}
			})
		}
	}
}

func TestV3InstitutionsListTheV1BanksInTheV3Shape(t *testing.T) {
	a := start(t, sandbox.Options{})
	var v1 []mono.Institution
	if err := json.Unmarshal(a.do("GET", "/v1/institutions", "", nil).raw, &v1); err != nil {
		t.Fatal(err)
	}
	r := a.do("GET", "/v3/institutions?scope=financial_data", "", nil)
	list, ok := wantV2(t, r, 200, "successful", 0).([]any)
	if !ok || len(list) != len(v1) {
		t.Fatalf("v3 lists %d institutions, v1 %d", len(list), len(v1))
	}
	wantKeys := []string{"_id", "auth_methods", "country", "icon", "identifier", "name", "nip_code", "primary_color", "scope", "type"}
	for i, raw := range list {
		inst := raw.(map[string]any)
		b := v1[i]
		if got := keys(inst); !slices.Equal(got, wantKeys) {
			t.Fatalf("%s: keys %v, want %v", b.Name, got, wantKeys)
		}
		if inst["_id"] != b.ID || inst["name"] != b.Name || inst["type"] != b.Type || inst["icon"] != b.Icon ||
			inst["identifier"] != b.Identifier || inst["country"] != b.Country || inst["primary_color"] != b.Color {
			t.Errorf("entry %d: %v, want the v1 bank %+v", i, inst, b)
		}
		if nip, _ := inst["nip_code"].(string); nip == "" {
			t.Errorf("%s: empty nip_code", b.Name)
		}
		if got := mustJSON(t, inst["scope"]); got != `[{"name":"Financial Data","type":"financial_data"}]` {
			t.Errorf("%s: scope %s", b.Name, got)
		}
		methods := inst["auth_methods"].([]any)
		if len(methods) != len(b.AuthMethods) {
			t.Fatalf("%s: %d auth methods, v1 %d", b.Name, len(methods), len(b.AuthMethods))
		}
		for j, m := range methods {
			m := m.(map[string]any)
			if got := keys(m); !slices.Equal(got, []string{"type", "ui"}) {
				t.Errorf("%s: auth method keys %v, want type and ui only", b.Name, got)
			}
			if m["type"] != b.AuthMethods[j].Type || canon(t, m["ui"]) != canon(t, b.AuthMethods[j].UI) {
				t.Errorf("%s: auth method %v, want %+v", b.Name, m, b.AuthMethods[j])
			}
		}
	}
	if gtb := list[0].(map[string]any); gtb["_id"] != gtbankID || gtb["nip_code"] != "058" {
		t.Errorf("GTBank entry %v", gtb)
	}
}

func TestV3InstitutionsFilters(t *testing.T) {
	a := start(t, sandbox.Options{})
	all := len(sandbox.Banks())
	mobile := 0
	for _, b := range sandbox.Banks() {
		if _, ok := b.Method(mono.MobileBanking); ok {
			mobile++
		}
	}
	tests := []struct {
		name   string
		query  string
		status int
		n      int
		check  func(t *testing.T, inst map[string]any)
	}{
		{"no filter lists every bank", "", 200, all, nil},
		{"scope financial_data lists every bank", "?scope=financial_data", 200, all, nil},
		{"another scope is refused", "?scope=identity", 400, 0, nil},
		{"bank_code matches nip_code", "?scope=financial_data&bank_code=058", 200, 2, func(t *testing.T, inst map[string]any) {
			if inst["nip_code"] != "058" {
				t.Errorf("bank_code 058 listed %v", inst)
			}
		}},
		{"an unknown bank_code lists nothing", "?bank_code=999999999", 200, 0, nil},
		{"auth_method keeps banks offering it, with only that method", "?scope=financial_data&auth_method=mobile_banking", 200, mobile,
			func(t *testing.T, inst map[string]any) {
				methods := inst["auth_methods"].([]any)
				if len(methods) != 1 || methods[0].(map[string]any)["type"] != mono.MobileBanking {
					t.Errorf("%v: auth methods %v", inst["name"], methods)
				}
			}},
		{"bank_code and auth_method combine", "?bank_code=044&auth_method=mobile_banking", 200, 1, nil},
		{"an unknown auth_method lists nothing", "?auth_method=ussd", 200, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do("GET", "/v3/institutions"+tt.query, "", nil)
			if tt.status != 200 {
				wantV2(t, r, tt.status, "failed", 0)
				return
			}
			list, ok := wantV2(t, r, 200, "successful", 0).([]any)
			if !ok || len(list) != tt.n {
				t.Fatalf("listed %d, want %d: %s", len(list), tt.n, r.raw)
			}
			for _, inst := range list {
				if tt.check != nil {
					tt.check(t, inst.(map[string]any))
				}
			}
		})
	}
}

func TestV2SessionAnswersSessionAndLoginForm(t *testing.T) {
	clk := newClock()
	a := start(t, sandbox.Options{Now: clk.Now, SessionTTL: 5 * time.Minute})
	r := a.do("POST", "/v2/connect/session", "", map[string]any{
		"institution": gtbankID, "auth_method": "internet_banking", "scope": "financial_data", "customer": customer})
	d := wantV2(t, r, 200, "successful", 0).(map[string]any)
	if got := keys(d); !slices.Equal(got, []string{"session", "ui"}) {
		t.Fatalf("data keys %v, want session and ui", got)
	}
	sess := d["session"].(map[string]any)
	if got := keys(sess); !slices.Equal(got, []string{"expiresAt", "id", "institution", "scope"}) {
		t.Errorf("session keys %v", got)
	}
	gtb := sandbox.Banks()[0]
	if !sessV2.MatchString(sess["id"].(string)) || sess["scope"] != "financial_data" ||
		sess["expiresAt"] != float64(clk.Now().Add(5*time.Minute).UnixMilli()) ||
		canon(t, sess["institution"]) != canon(t, map[string]string{"id": gtbankID, "name": "GTBank", "identifier": gtb.Identifier}) {
		t.Errorf("session %v", sess)
	}
	if canon(t, d["ui"]) != canon(t, gtb.AuthMethods[0].UI) {
		t.Errorf("ui %s, want the GTBank login form", mustJSON(t, d["ui"]))
	}
	if got := a.sb.SessionCustomers(); len(got) != 1 || got[0].Name != "Ada Obi" || got[0].Email != "ada@example.com" || !hex24.MatchString(got[0].ID) {
		t.Errorf("SessionCustomers() = %+v", got)
	}
}

func TestV2SessionRefusesABadRequest(t *testing.T) {
	body := func(change func(m map[string]any)) map[string]any {
		m := map[string]any{"institution": gtbankID, "auth_method": "internet_banking", "scope": "financial_data",
			"customer": map[string]any{"name": "Ada Obi", "email": "ada@example.com"}}
		change(m)
		return m
	}
	tests := []struct {
		name string
		body any
	}{
		{"missing customer", body(func(m map[string]any) { delete(m, "customer") })},
		{"customer without a name", body(func(m map[string]any) { m["customer"] = map[string]any{"email": "ada@example.com"} })},
		{"customer with a blank name", body(func(m map[string]any) { m["customer"] = map[string]any{"name": "  ", "email": "ada@example.com"} })},
		{"customer without an email", body(func(m map[string]any) { m["customer"] = map[string]any{"name": "Ada"} })},
		{"customer email without @", body(func(m map[string]any) { m["customer"] = map[string]any{"name": "Ada", "email": "ada.example.com"} })},
		{"customer not an object", body(func(m map[string]any) { m["customer"] = "Ada" })},
		{"missing scope", body(func(m map[string]any) { delete(m, "scope") })},
		{"another scope", body(func(m map[string]any) { m["scope"] = "identity" })},
		{"unknown institution", body(func(m map[string]any) { m["institution"] = "000000000000000000000000" })},
		{"missing institution", body(func(m map[string]any) { delete(m, "institution") })},
		{"auth method the bank lacks", body(func(m map[string]any) { m["auth_method"] = "mobile_banking" })},
		{"missing auth method", body(func(m map[string]any) { delete(m, "auth_method") })},
		{"truncated JSON", `{"institution":`},
		{"empty body", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			wantV2(t, a.do("POST", "/v2/connect/session", "", tt.body), 400, "failed", 0)
			if n := len(a.sb.SessionCustomers()); n != 0 {
				t.Errorf("a refused session recorded %d customers", n)
			}
		})
	}
}

// pickNumber, as a commit body, chooses the account at that index of the
// last 101 by its accountNumber.
type pickNumber int

func TestV2EachUserFlowLinksEndToEnd(t *testing.T) {
	tests := []struct {
		name     string
		login    map[string]any
		commits  []any
		codes    []float64 // top-level responseCode of login, then of each commit
		accounts int       // length of the 101 list, if any
		pick     int       // the account chosen
	}{
		{name: "user_good links at once", login: creds("user_good", sandbox.Password), codes: []float64{99}},
		{name: "user_multi links the account chosen by accountNumber", login: creds("user_multi", sandbox.Password),
			commits: []any{pickNumber(2)}, codes: []float64{101, 99}, accounts: 3, pick: 2},
		{name: "user_multi accepts an account index leniently", login: creds("user_multi", sandbox.Password),
			commits: []any{map[string]any{"account": 1}}, codes: []float64{101, 99}, accounts: 3, pick: 1},
		{name: "user_question accepts the answer", login: creds("user_question", sandbox.Password),
			commits: []any{map[string]any{"answer": "Lagos"}}, codes: []float64{102, 99}},
		{name: "user_otp accepts the OTP", login: creds("user_otp", sandbox.Password),
			commits: []any{map[string]any{"otp": "123456"}}, codes: []float64{102, 99}},
		{name: "user_mfa chains OTP then account choice", login: creds("user_mfa", sandbox.Password),
			commits: []any{map[string]any{"otp": "123456"}, pickNumber(1)}, codes: []float64{102, 101, 99}, accounts: 2, pick: 1},
		{name: "user_slow links after its delay", login: creds("user_slow", sandbox.Password), codes: []float64{99}},
		{name: "user_star links with * # and space in the password", login: creds("user_star", sandbox.StarPassword), codes: []float64{99}},
		{name: "user_relogin links at once", login: creds("user_relogin", sandbox.Password), codes: []float64{99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			sess := a.sessionV2(gtbankID, mono.InternetBanking)
			r := a.do("POST", "/v2/connect/login", sess, tt.login)
			var offered []string
			for i, want := range tt.codes {
				d := wantV2(t, r, 200, "successful", want)
				switch want {
				case 101:
					var body struct {
						Data struct {
							Accounts []struct {
								AccountNumber, Name, Type, Currency, Status string
								Balance                                     json.Number
							}
						}
					}
					if err := json.Unmarshal(r.raw, &body); err != nil {
						t.Fatal(err)
					}
					if len(body.Data.Accounts) != tt.accounts || len(d.(map[string]any)) != 1 {
						t.Fatalf("data %s, want just %d accounts", r.raw, tt.accounts)
					}
					for _, acc := range body.Data.Accounts {
						if _, err := acc.Balance.Int64(); err != nil || !digits10.MatchString(acc.AccountNumber) ||
							acc.Status != "active" || acc.Name == "" || acc.Type == "" || acc.Currency == "" {
							t.Errorf("bad account %+v (balance must be integer kobo)", acc)
						}
						offered = append(offered, acc.AccountNumber)
					}
				case 102:
					ui, ok := d.(map[string]any)["userInput"].(map[string]any)
					form, _ := ui["form"].([]any)
					if !ok || len(d.(map[string]any)) != 1 || ui["title"] == "" || len(form) != 1 {
						t.Fatalf("bad 102 data %s", r.raw)
					}
				}
				if i < len(tt.commits) {
					body := tt.commits[i]
					if p, ok := body.(pickNumber); ok {
						body = map[string]any{"accountNumber": offered[p]}
					}
					r = a.do("POST", "/v2/connect/commit", sess, body)
				}
			}
			id := a.exchangeV2(codeV2(t, r))
			details := a.do("GET", "/v2/accounts/"+id, "", nil)
			a.want(details, 200, "details")
			data := details.obj("data")
			acc := data["account"].(map[string]any)
			meta := data["meta"].(map[string]any)
			if acc["id"] != id || meta["data_status"] != "AVAILABLE" || meta["auth_method"] != mono.InternetBanking {
				t.Errorf("details %s", details.raw)
			}
			if req, _ := meta["data_request_id"].(string); len(req) != 12 || mustJSON(t, meta["retrieved_data"]) != `["identity","balance","transactions"]` {
				t.Errorf("details meta %v", meta)
			}
			cust, _ := data["customer"].(map[string]any)
			if got := a.sb.SessionCustomers(); len(got) != 1 || cust["id"] != got[0].ID {
				t.Errorf("details customer %v, want the session's %+v", cust, got)
			}
			if name, email, ok := a.sb.Customer(id); !ok || name != "Ada Obi" || email != "ada@example.com" {
				t.Errorf("Customer(%s) = %q %q %v", id, name, email, ok)
			}
			if offered != nil && acc["account_number"] != offered[tt.pick] {
				t.Errorf("linked %v, want the chosen account %s", acc["account_number"], offered[tt.pick])
			}
		})
	}
}

func TestV2SlowUserStaysSlow(t *testing.T) {
	const delay = 150 * time.Millisecond
	a := start(t, sandbox.Options{SlowDelay: delay})
	sess := a.sessionV2(gtbankID, mono.InternetBanking)
	began := time.Now()
	codeV2(t, a.do("POST", "/v2/connect/login", sess, creds("user_slow", sandbox.Password)))
	if took := time.Since(began); took < delay {
		t.Errorf("user_slow's v2 login took %v, want at least %v", took, delay)
	}
}

func TestV2CommitTakesChainedStepsInOneBody(t *testing.T) {
	a := start(t, sandbox.Options{})
	mfa := creds("user_mfa", sandbox.Password)
	want := a.linkV2(gtbankID, mono.InternetBanking, mfa, 1)

	sess := a.sessionV2(gtbankID, mono.InternetBanking)
	wantV2(t, a.do("POST", "/v2/connect/login", sess, mfa), 200, "successful", 102)
	probe := a.sessionV2(gtbankID, mono.InternetBanking) // learns the numbers offered
	a.do("POST", "/v2/connect/login", probe, mfa)
	numbers := offeredNumbers(t, a.do("POST", "/v2/connect/commit", probe, map[string]any{"otp": sandbox.OTP}))

	r := a.do("POST", "/v2/connect/commit", sess, map[string]any{"accountNumber": numbers[1], "otp": sandbox.OTP})
	if got := a.exchangeV2(codeV2(t, r)); got != want {
		t.Errorf("one-body commit linked %s, want %s", got, want)
	}
}

func TestV2LoginRefusals(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name    string
		session func(a *api) string
		body    map[string]any
		message string
		retry   bool // the session takes a good login afterwards
	}{
		{"wrong password", nil, creds("user_good", "pass_bad"), "Invalid login credentials", true},
		{"unknown user", nil, creds("nobody", sandbox.Password), "Invalid login credentials", true},
		{"locked account", nil, creds("user_locked", sandbox.Password), "Your account has been locked by the bank", true},
		{"missing password", nil, map[string]any{"username": "user_good"}, "Missing field: password", true},
		{"no session header", func(*api) string { return "" }, creds("user_good", sandbox.Password), "Session not found or expired", false},
		{"unknown session", func(*api) string { return "sess_000000000000000000000000" }, creds("user_good", sandbox.Password), "Session not found or expired", false},
		{"expired session", func(a *api) string {
			id := a.sessionV2(gtbankID, mono.InternetBanking)
			clk.Advance(time.Minute)
			return id
		}, creds("user_good", sandbox.Password), "Session not found or expired", false},
		{"already linked session", func(a *api) string {
			id := a.sessionV2(gtbankID, mono.InternetBanking)
			codeV2(a.t, a.do("POST", "/v2/connect/login", id, creds("user_good", sandbox.Password)))
			return id
		}, creds("user_good", sandbox.Password), "Invalid operation or the operation isn't allowed yet.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{Now: clk.Now, SessionTTL: time.Minute})
			var sess string
			if tt.session != nil {
				sess = tt.session(a)
			} else {
				sess = a.sessionV2(gtbankID, mono.InternetBanking)
			}
			wantRefusal(t, a.do("POST", "/v2/connect/login", sess, tt.body), tt.message)
			if tt.retry {
				codeV2(t, a.do("POST", "/v2/connect/login", sess, creds("user_good", sandbox.Password)))
			}
		})
	}
}

func TestV2CommitRefusalsKeepTheStepAwaited(t *testing.T) {
	tests := []struct {
		name    string
		user    string
		wrong   []any
		message string
		right   any
	}{
		{"wrong OTP", "user_otp", []any{map[string]any{"otp": "000000"}}, "Invalid OTP Sent", map[string]any{"otp": "123456"}},
		{"wrong security answer", "user_question", []any{map[string]any{"answer": "Abuja"}}, "Invalid answer provided", map[string]any{"answer": "lagos"}},
		{"unknown account number", "user_multi", []any{map[string]any{"accountNumber": "0000000000"}, map[string]any{"account": 3}},
			"Invalid account selected", map[string]any{"account": 0}},
		{"missing field", "user_otp", []any{map[string]any{"unrelated": "x"}}, "Missing field: otp", map[string]any{"otp": 123456}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			sess := a.sessionV2(gtbankID, mono.InternetBanking)
			a.do("POST", "/v2/connect/login", sess, creds(tt.user, sandbox.Password))
			for _, body := range tt.wrong {
				wantRefusal(t, a.do("POST", "/v2/connect/commit", sess, body), tt.message)
			}
			codeV2(t, a.do("POST", "/v2/connect/commit", sess, tt.right))
		})
	}
}

func TestV2CommitWithNothingPendingIsRefused(t *testing.T) {
	a := start(t, sandbox.Options{})
	const notAllowed = "Invalid operation or the operation isn't allowed yet."
	sess := a.sessionV2(gtbankID, mono.InternetBanking)
	wantRefusal(t, a.do("POST", "/v2/connect/commit", sess, map[string]any{"otp": sandbox.OTP}), notAllowed)
	codeV2(t, a.do("POST", "/v2/connect/login", sess, creds("user_good", sandbox.Password)))
	wantRefusal(t, a.do("POST", "/v2/connect/commit", sess, map[string]any{"otp": sandbox.OTP}), notAllowed)
	wantRefusal(t, a.do("POST", "/v2/connect/commit", "sess_000000000000000000000000", map[string]any{"otp": sandbox.OTP}), "Session not found or expired")
	wantRefusal(t, a.do("POST", "/v2/connect/commit", "", map[string]any{"otp": sandbox.OTP}), "Session not found or expired")
	wantRefusal(t, a.do("POST", "/v2/connect/commit", sess, `{"otp":`), "Invalid JSON body")
}

func TestCodesAreSingleUseAndShareOneStoreAcrossVersions(t *testing.T) {
	clk := newClock()
	a := start(t, sandbox.Options{Now: clk.Now})
	good := creds("user_good", sandbox.Password)
	v2code := func() string {
		return codeV2(t, a.do("POST", "/v2/connect/login", a.sessionV2(gtbankID, mono.InternetBanking), good))
	}
	v1code := func() string { return code(t, a.login(a.session(gtbankID, mono.InternetBanking), good)) }

	c := v2code()
	id := a.exchangeV2(c)
	wantV2(t, a.do("POST", "/v2/accounts/auth", "", map[string]any{"code": c}), 400, "failed", 0)
	a.want(a.exchange(c), 400, "a used v2 code on v1")

	x := a.exchange(v2code())
	a.want(x, 200, "a v2 code on v1")
	if x.str("id") != id {
		t.Errorf("v1 exchange of a v2 code gave %s, want %s", x.str("id"), id)
	}
	if got := a.exchangeV2(v1code()); got != id {
		t.Errorf("v2 exchange of a v1 code gave %s, want %s", got, id)
	}
	if _, _, ok := a.sb.Customer(id); !ok {
		t.Error("relinking through v1 forgot the v2 customer")
	}

	c = v2code()
	clk.Advance(10*time.Minute + time.Second)
	wantV2(t, a.do("POST", "/v2/accounts/auth", "", map[string]any{"code": c}), 400, "failed", 0)
	for _, body := range []any{map[string]any{"code": "code_unknown"}, map[string]any{"code": 5}, map[string]any{}, `"code_x"`} {
		wantV2(t, a.do("POST", "/v2/accounts/auth", "", body), 400, "failed", 0)
	}
}

func TestV1LinkedAccountHasNoCustomer(t *testing.T) {
	a := start(t, sandbox.Options{})
	id := a.link(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	if _, _, ok := a.sb.Customer(id); ok {
		t.Error("a v1 link has a customer")
	}
	if _, ok := a.do("GET", "/v2/accounts/"+id, "", nil).obj("data")["customer"]; ok {
		t.Error("v1 link details show a customer")
	}
	if _, _, ok := a.sb.Customer("000000000000000000000000"); ok {
		t.Error("an unknown account has a customer")
	}
	if n := len(a.sb.SessionCustomers()); n != 0 {
		t.Errorf("v1 sessions recorded %d customers", n)
	}
}

func TestV2ReauthSessionWalksEachFlow(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		pick   int
		rc     float64
		form   string // where a 102 puts its form: userInput or ui
		wrong  map[string]any
		answer map[string]any
		path   string // where the 102 is answered
	}{
		{name: "user_good is reauthorised in the background", user: "user_good", rc: 99},
		{name: "user_question is reauthorised in the background", user: "user_question", rc: 99},
		{name: "user_otp answers the OTP by commit", user: "user_otp", rc: 102, form: "userInput",
			wrong: map[string]any{"otp": "000000"}, answer: map[string]any{"otp": sandbox.OTP}, path: "/v2/connect/commit"},
		{name: "user_mfa answers the OTP by commit", user: "user_mfa", pick: 1, rc: 102, form: "userInput",
			wrong: map[string]any{"otp": "1"}, answer: map[string]any{"otp": 123456}, path: "/v2/connect/commit"},
		{name: "user_relogin logs in again by reauth login", user: "user_relogin", rc: 102, form: "ui",
			wrong: creds("user_relogin", "pass_bad"), answer: creds("user_relogin", sandbox.Password), path: "/v2/connect/reauth/login"},
		{name: "user_relogin refuses another user's login", user: "user_relogin", rc: 102, form: "ui",
			wrong: creds("user_good", sandbox.Password), answer: creds("user_relogin", sandbox.Password), path: "/v2/connect/reauth/login"},
		{name: "user_relogin may log in again by commit", user: "user_relogin", rc: 102, form: "ui",
			wrong: creds("user_relogin", "nope"), answer: creds("user_relogin", sandbox.Password), path: "/v2/connect/commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, rc := hooked(t, nil)
			id := a.linkV2(gtbankID, mono.InternetBanking, creds(tt.user, sandbox.Password), tt.pick)
			a.settle()
			before := len(rc.all())

			r := a.do("POST", "/v2/connect/reauth/session", "", map[string]any{"account": id})
			d := wantV2(t, r, 200, "successful", 0).(map[string]any)
			if d["responseCode"] != tt.rc {
				t.Fatalf("data.responseCode %v, want %v: %s", d["responseCode"], tt.rc, r.raw)
			}
			var c string
			if tt.rc == 99 {
				c, _ = d["code"].(string)
				if !codeV2Re.MatchString(c) || len(d) != 2 {
					t.Fatalf("data %v, want responseCode and a code", d)
				}
			} else {
				sess, _ := d["session"].(map[string]any)
				sid, _ := sess["id"].(string)
				if !sessV2.MatchString(sid) || sess["scope"] != "financial_data" || sess["expiresAt"] == nil ||
					sess["institution"].(map[string]any)["id"] != gtbankID || len(d) != 3 {
					t.Fatalf("reauth data %s, want responseCode, session and %s", r.raw, tt.form)
				}
				form, _ := d[tt.form].(map[string]any)
				switch tt.form {
				case "userInput":
					f := form["form"].([]any)
					if len(f) != 1 || f[0].(map[string]any)["name"] != "otp" || form["title"] == "" {
						t.Fatalf("reauth userInput %v, want the OTP form", form)
					}
				case "ui":
					if canon(t, form) != canon(t, sandbox.Banks()[0].AuthMethods[0].UI) {
						t.Fatalf("reauth ui %v, want the GTBank login form", form)
					}
				}
				wantRefusal(t, a.do("POST", tt.path, sid, tt.wrong), "")
				a.settle()
				if got := rc.since(before); len(got) != 0 {
					t.Fatalf("sent %v before the reauthorisation was answered", events(got))
				}
				done := a.do("POST", tt.path, sid, tt.answer)
				dd := wantV2(t, done, 200, "successful", 0).(map[string]any)
				c, _ = dd["code"].(string)
				if dd["responseCode"] != 99.0 || !codeV2Re.MatchString(c) {
					t.Fatalf("answered reauth %s, want data.responseCode 99 and a code", done.raw)
				}
				wantRefusal(t, a.do("POST", tt.path, sid, tt.answer), "Invalid operation or the operation isn't allowed yet.")
			}
			a.settle()
			got := rc.since(before)
			wantEvents(t, got, sandbox.EventAccountReauthorized, sandbox.EventAccountUpdated)
			wantAccountRef(t, got[0], id)
			a.wantUpdated(got[1], id)
			if again := a.exchangeV2(c); again != id {
				t.Errorf("the reauth code exchanged for %s, want the same account %s", again, id)
			}
		})
	}
}

func TestV2ReauthSessionRefusals(t *testing.T) {
	a := start(t, sandbox.Options{})
	id := a.linkV2(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	tests := []struct {
		name   string
		body   any
		status int
	}{
		{"unknown account", map[string]any{"account": "000000000000000000000000"}, 404},
		{"missing account", map[string]any{}, 400},
		{"blank account", map[string]any{"account": " "}, 400},
		{"malformed body", `{"account":`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantV2(t, a.do("POST", "/v2/connect/reauth/session", "", tt.body), tt.status, "failed", 0)
		})
	}
	t.Run("known account", func(t *testing.T) {
		wantV2(t, a.do("POST", "/v2/connect/reauth/session", "", map[string]any{"account": id}), 200, "successful", 0)
	})
}

func TestV2ReauthLoginNeedsAReauthSessionAwaitingLogin(t *testing.T) {
	a := start(t, sandbox.Options{})
	otpID := a.linkV2(gtbankID, mono.InternetBanking, creds("user_otp", sandbox.Password), 0)
	otpSess := dataOf(t, a.do("POST", "/v2/connect/reauth/session", "", map[string]any{"account": otpID}))["session"].(map[string]any)["id"].(string)
	login := creds("user_otp", sandbox.Password)
	tests := []struct {
		name, session, message string
	}{
		{"a link session", a.sessionV2(gtbankID, mono.InternetBanking), "Invalid operation or the operation isn't allowed yet."},
		{"a reauth session awaiting an OTP", otpSess, "Invalid operation or the operation isn't allowed yet."},
		{"an unknown session", "sess_000000000000000000000000", "Session not found or expired"},
		{"no session header", "", "Session not found or expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefusal(t, a.do("POST", "/v2/connect/reauth/login", tt.session, login), tt.message)
		})
	}
}

func TestV1ReauthTokenForReloginUserAsksForTheLoginForm(t *testing.T) {
	a, rc := hooked(t, nil)
	id := a.link(gtbankID, mono.InternetBanking, creds("user_relogin", sandbox.Password), 0)
	a.settle()
	before := len(rc.all())

	token := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil).str("token")
	r := a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token})
	a.want(r, 200, "reauth session")
	var s mono.Session
	if err := json.Unmarshal(r.raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Reauth == nil || s.Reauth.ResponseCode != 102 || s.Reauth.Message == "" ||
		mustJSON(t, s.UI) != mustJSON(t, sandbox.Banks()[0].AuthMethods[0].UI) {
		t.Fatalf("reauth session %s, want response_code 102 with the GTBank login form", r.raw)
	}
	a.want(a.login(s.ID, creds("user_relogin", sandbox.Password)), 400, "login on a reauth session")
	bad := a.commit(s.ID, creds("user_relogin", "pass_bad"))
	if bad.status != 200 || bad.num("responseCode") != 400 || bad.str("message") != "Invalid login credentials" {
		t.Fatalf("wrong relogin: %s", bad.raw)
	}
	a.want(a.commit(s.ID, map[string]any{"username": "user_relogin"}), 400, "relogin without the password")
	a.settle()
	if got := rc.since(before); len(got) != 0 {
		t.Fatalf("sent %v before the login was committed", events(got))
	}
	x := a.exchange(code(t, a.commit(s.ID, creds("user_relogin", sandbox.Password))))
	if x.str("id") != id {
		t.Errorf("reauth linked %s, want %s", x.str("id"), id)
	}
	a.settle()
	got := rc.since(before)
	if len(got) < 2 {
		t.Fatalf("events %v", events(got))
	}
	wantEvents(t, got[:2], sandbox.EventAccountReauthorized, sandbox.EventAccountUpdated)
	wantAccountRef(t, got[0], id)
}

func TestV2SandboxCredentialsLogIn(t *testing.T) {
	banks := sandbox.Banks()
	var mobileID, tokenID string
	for _, b := range banks {
		for _, m := range b.AuthMethods {
			inputs := 0
			for _, e := range m.UI.Form {
				if e.IsInput() {
					inputs++
				}
			}
			if m.Type == mono.MobileBanking && mobileID == "" {
				mobileID = b.ID
			}
			if inputs == 3 && tokenID == "" {
				tokenID = b.ID
			}
		}
	}
	forms := []struct{ name, institution, method string }{
		{"internet banking", gtbankID, mono.InternetBanking},
		{"mobile banking", mobileID, mono.MobileBanking},
		{"token form", tokenID, mono.InternetBanking},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			a := start(t, sandbox.Options{})
			sess := a.sessionV2(f.institution, f.method)
			r := a.do("GET", "/v2/connect/sandbox", sess, nil)
			d := wantV2(t, r, 200, "successful", 0).(map[string]any)
			var data struct {
				Credentials []struct {
					HasMultipleAccounts *bool             `json:"hasMultipleAccounts"`
					Values              map[string]string `json:"values"`
				} `json:"credentials"`
				Inputs []map[string]string `json:"inputs"`
			}
			if err := json.Unmarshal([]byte(mustJSON(t, d)), &data); err != nil || len(d) != 2 {
				t.Fatalf("sandbox data %s: %v", r.raw, err)
			}
			inputs := map[string]string{}
			for _, in := range data.Inputs {
				if len(in) != 2 || in["name"] == "" || in["value"] == "" {
					t.Errorf("input %v, want {name, value}", in)
				}
				inputs[in["name"]] = in["value"]
			}
			if inputs["otp"] != "123456" {
				t.Errorf("inputs %v lack the OTP", data.Inputs)
			}
			var names []string
			inst, _ := func() (mono.Institution, bool) {
				for _, b := range banks {
					if b.ID == f.institution {
						return b, true
					}
				}
				return mono.Institution{}, false
			}()
			m, _ := inst.Method(f.method)
			for _, e := range m.UI.Form {
				if e.IsInput() {
					names = append(names, e.Name)
				}
			}
			sort.Strings(names)
			outcomes := map[float64]int{}
			for i, c := range data.Credentials {
				if c.HasMultipleAccounts == nil {
					t.Fatalf("credential %d lacks hasMultipleAccounts", i)
				}
				got := make([]string, 0, len(c.Values))
				body := map[string]any{}
				for k, v := range c.Values {
					got = append(got, k)
					body[k] = v
				}
				sort.Strings(got)
				if !slices.Equal(got, names) {
					t.Errorf("credential %d keys %v, want the form's %v", i, got, names)
				}
				ls := a.sessionV2(f.institution, f.method)
				lr := a.do("POST", "/v2/connect/login", ls, body)
				if lr.status != 200 {
					t.Fatalf("credential %d did not log in: %s", i, lr.raw)
				}
				rcode := lr.num("responseCode")
				outcomes[rcode]++
				if rcode == 102 { // answer from inputs
					form := dataOf(t, lr)["userInput"].(map[string]any)["form"].([]any)
					name := form[0].(map[string]any)["name"].(string)
					lr = a.do("POST", "/v2/connect/commit", ls, map[string]any{name: inputs[name]})
				}
				chose := lr.num("responseCode") == 101
				if chose {
					lr = a.do("POST", "/v2/connect/commit", ls, map[string]any{"accountNumber": offeredNumbers(t, lr)[0]})
				}
				if *c.HasMultipleAccounts != chose {
					t.Errorf("credential %d: hasMultipleAccounts %v, but an account choice came %v", i, *c.HasMultipleAccounts, chose)
				}
				codeV2(t, lr)
			}
			if first := data.Credentials[0]; *first.HasMultipleAccounts || outcomes[99] == 0 || outcomes[101] == 0 || outcomes[102] == 0 {
				t.Errorf("credentials gave %v; want a single-account one first, and a 99, a 101 and a 102", outcomes)
			}
		})
	}
	t.Run("unknown or missing session", func(t *testing.T) {
		a := start(t, sandbox.Options{})
		wantV2(t, a.do("GET", "/v2/connect/sandbox", "sess_000000000000000000000000", nil), 404, "failed", 0)
		wantV2(t, a.do("GET", "/v2/connect/sandbox", "", nil), 404, "failed", 0)
	})
}

func TestV2UnlinkForgetsTheAccountAndSendsAccountUnlinked(t *testing.T) {
	a, rc := hooked(t, nil)
	id := a.linkV2(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	token := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil).str("token")
	a.settle()
	before := len(rc.all())

	r := a.do("POST", "/v2/accounts/"+id+"/unlink", "", nil)
	if d := wantV2(t, r, 200, "successful", 0); d != nil {
		t.Errorf("unlink data %v, want null", d)
	}
	a.settle()
	got := rc.since(before)
	wantEvents(t, got, sandbox.EventAccountUnlinked)
	if string(got[0].Data) != `{"account":{"id":"`+id+`"}}` {
		t.Errorf("account_unlinked data %s", got[0].Data)
	}
	a.want(a.do("GET", "/v2/accounts/"+id, "", nil), 404, "details after unlinking")
	wantV2(t, a.do("POST", "/v2/accounts/"+id+"/unlink", "", nil), 404, "failed", 0)
	wantV2(t, a.do("POST", "/v2/connect/reauth/session", "", map[string]any{"account": id}), 404, "failed", 0)
	a.want(a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token}), 400, "a token issued before unlinking")
	if err := a.sb.RequireReauth(id); !errors.Is(err, sandbox.ErrUnknownAccount) {
		t.Errorf("RequireReauth after unlinking: %v", err)
	}
	if again := a.linkV2(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0); again != id {
		t.Errorf("relinking after unlinking gave %s, want %s", again, id)
	}
}

func TestUnlinkMethodForgetsTheAccount(t *testing.T) {
	a, rc := hooked(t, nil)
	id := a.link(gtbankID, mono.InternetBanking, creds("user_otp", sandbox.Password), 0)
	token := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil).str("token")
	sess := a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token}).str("id")
	a.settle()
	before := len(rc.all())

	if err := a.sb.Unlink(id); err != nil {
		t.Fatalf("Unlink: %v", err)
	}
	a.settle()
	got := rc.since(before)
	wantEvents(t, got, sandbox.EventAccountUnlinked)
	a.want(a.do("GET", "/v2/accounts/"+id, "", nil), 404, "details after Unlink")
	a.want(a.commit(sess, map[string]any{"otp": sandbox.OTP}), 404, "a reauth session of an unlinked account")
	if err := a.sb.Unlink(id); !errors.Is(err, sandbox.ErrUnknownAccount) {
		t.Errorf("second Unlink: %v, want ErrUnknownAccount", err)
	}
	a.settle()
	if n := len(rc.since(before)); n != 1 {
		t.Errorf("%d events, want only the first unlink's", n)
	}
}

func TestFailSyncSendsSyncFailed(t *testing.T) {
	a, rc := hooked(t, nil)
	id := a.linkV2(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	a.settle()
	before := len(rc.all())
	if err := a.sb.FailSync(id); err != nil {
		t.Fatalf("FailSync: %v", err)
	}
	if err := a.sb.FailSync("000000000000000000000000"); !errors.Is(err, sandbox.ErrUnknownAccount) {
		t.Errorf("FailSync of an unknown account: %v", err)
	}
	a.settle()
	got := rc.since(before)
	wantEvents(t, got, sandbox.EventSyncFailed)
	wantAccountRef(t, got[0], id)
	a.want(a.do("GET", "/v2/accounts/"+id, "", nil), 200, "details after a failed sync")
}

func TestWebhooksCarryAppAndBusinessWhenConfigured(t *testing.T) {
	rc := newReceiver(t, nil)
	a := start(t, sandbox.Options{Webhook: sandbox.WebhookOptions{URL: rc.url, Secret: hookSecret, App: "app_1", Business: "biz_1"}})
	t.Cleanup(a.sb.Close)
	id := a.linkV2(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	if err := a.sb.RequireReauth(id); err != nil {
		t.Fatal(err)
	}
	if err := a.sb.Unlink(id); err != nil {
		t.Fatal(err)
	}
	a.settle()
	got := rc.all()
	wantEvents(t, got, sandbox.EventAccountConnected, sandbox.EventAccountUpdated, sandbox.EventReauthorisationRequired, sandbox.EventAccountUnlinked)
	for _, d := range got {
		data := d.data(t)
		if data["app"] != "app_1" || data["business"] != "biz_1" {
			t.Errorf("%s: data %s lacks app and business", d.Event, d.Data)
		}
	}
	if data := got[0].data(t); len(data) != 3 || data["id"] != id {
		t.Errorf("account_connected data %s", got[0].Data)
	}
}

func TestV2CallsCountUnderTheV1Names(t *testing.T) {
	a := start(t, sandbox.Options{})
	a.do("GET", "/v3/institutions", "", nil)
	a.do("GET", "/v1/institutions", "", nil)
	id := a.linkV2(gtbankID, mono.InternetBanking, creds("user_mfa", sandbox.Password), 0) // session, login, 2 commits, exchange
	a.do("GET", "/v2/accounts/"+id, "", nil)
	reloginID := a.linkV2(gtbankID, mono.InternetBanking, creds("user_relogin", sandbox.Password), 0) // session, login, exchange
	sess := dataOf(t, a.do("POST", "/v2/connect/reauth/session", "", map[string]any{"account": reloginID}))["session"].(map[string]any)["id"].(string)
	a.do("POST", "/v2/connect/reauth/login", sess, creds("user_relogin", sandbox.Password))
	a.do("GET", "/v2/connect/sandbox", sess, nil)
	a.do("POST", "/v2/accounts/"+id+"/unlink", "", nil)
	a.do("POST", "/v2/accounts/"+id+"/unlink", "", nil) // unknown still counts

	want := map[string]int{"institutions": 2, "session": 2, "login": 2, "commit": 2, "exchange": 2, "account": 1,
		"reauth_session": 1, "reauth_login": 1, "sandbox_credentials": 1, "unlink": 2, "reauthorise": 0}
	for op, n := range want {
		if got := a.sb.Calls(op); got != n {
			t.Errorf("Calls(%q) = %d, want %d", op, got, n)
		}
	}
	for op, name := range map[string]string{sandbox.OpReauthSession: "reauth_session", sandbox.OpReauthLogin: "reauth_login",
		sandbox.OpSandboxCredentials: "sandbox_credentials", sandbox.OpUnlink: "unlink"} {
		if op != name {
			t.Errorf("Op constant %q, want %q", op, name)
		}
	}
}

func TestV2WrongMethodAndMalformedBodiesGetFailedEnvelopes(t *testing.T) {
	a := start(t, sandbox.Options{})
	sess := a.sessionV2(gtbankID, mono.InternetBanking)
	tests := []struct {
		name, method, path, session, body string
		status                            int
		rc                                float64
	}{
		{"GET login", "GET", "/v2/connect/login", "", "", 405, 0},
		{"POST institutions", "POST", "/v3/institutions", "", "{}", 405, 0},
		{"GET exchange", "GET", "/v2/accounts/auth", "", "", 405, 0},
		{"POST sandbox", "POST", "/v2/connect/sandbox", sess, "{}", 405, 0},
		{"GET unlink", "GET", "/v2/accounts/abc/unlink", "", "", 405, 0},
		{"login: not JSON", "POST", "/v2/connect/login", sess, "username=user_good", 400, 400},
		{"login: an array", "POST", "/v2/connect/login", sess, `["user_good"]`, 400, 400},
		{"commit: truncated", "POST", "/v2/connect/commit", sess, `{"otp":"1`, 400, 400},
		{"reauth login: trailing garbage", "POST", "/v2/connect/reauth/login", sess, `{} x`, 400, 400},
		{"exchange: not an object", "POST", "/v2/accounts/auth", "", `"code_x"`, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantV2(t, a.do(tt.method, tt.path, tt.session, tt.body), tt.status, "failed", tt.rc)
		})
	}
}

func TestV2BalancesAreTheV1BalancesInKobo(t *testing.T) {
	a := start(t, sandbox.Options{})
	v1 := a.session(gtbankID, mono.InternetBanking)
	var naira struct{ Data []mono.Account }
	if err := json.Unmarshal(a.login(v1, creds("user_multi", sandbox.Password)).raw, &naira); err != nil {
		t.Fatal(err)
	}
	v2 := a.sessionV2(gtbankID, mono.InternetBanking)
	var kobo struct {
		Data struct{ Accounts []mono.Account }
	}
	if err := json.Unmarshal(a.do("POST", "/v2/connect/login", v2, creds("user_multi", sandbox.Password)).raw, &kobo); err != nil {
		t.Fatal(err)
	}
	if len(naira.Data) != 3 || len(kobo.Data.Accounts) != 3 {
		t.Fatalf("offered %d and %d accounts", len(naira.Data), len(kobo.Data.Accounts))
	}
	for i, n := range naira.Data {
		k := kobo.Data.Accounts[i]
		if k.AccountNumber != n.AccountNumber || k.Balance != math.Round(n.Balance*100) {
			t.Errorf("v2 account %+v, want v1's %+v in kobo", k, n)
		}
	}
}

func TestReloginUserIsListed(t *testing.T) {
	for _, u := range sandbox.New(sandbox.Options{}).Users() {
		if u.Username == "user_relogin" {
			if u.Password != sandbox.Password || u.Flow != "relogin" || u.Note == "" {
				t.Errorf("user_relogin %+v", u)
			}
			return
		}
	}
	t.Error("user_relogin missing from Users()")
}
