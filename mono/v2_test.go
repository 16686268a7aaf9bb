package mono

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// v2 is a client of the fake speaking Mono's v2 API.
func (f *fake) v2(opts ...Option) *Client { return f.client(append([]Option{WithAPI(V2)}, opts...)...) }

func TestParseAPIAcceptsTheTwoVersionsOnly(t *testing.T) {
	for in, want := range map[string]API{"v1": V1, "V2": V2, " v2 ": V2} {
		if got, err := ParseAPI(in); err != nil || got != want {
			t.Errorf("ParseAPI(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "v3", "2"} {
		if _, err := ParseAPI(in); err == nil {
			t.Errorf("ParseAPI(%q) succeeded", in)
		}
	}
	if c := NewClient("k"); c.API() != V1 {
		t.Errorf("default API = %q, want v1", c.API())
	}
}

func TestV2InstitutionsComeFromTheV3ListWithTheFinancialDataScope(t *testing.T) {
	const v3 = `{"status":"successful","message":"Request completed successfully","timestamp":"2025-05-13T09:38:07.908Z",
	 "data":[{"_id":"5f2d08bf60b92e2888287703","name":"Bank","type":"PERSONAL_BANKING","identifier":"mono.connections.identifier",
	  "nip_code":"000013","country":"ng","primary_color":"#004085","scope":[{"name":"Financial Data","type":"financial_data"}],
	  "auth_methods":[{"type":"internet_banking","ui":{"title":"Log in to bank","form":[
	   {"type":"elements.input","name":"username","hint":"Username","contentType":"string"},
	   {"type":"elements.input","name":"password","hint":"Password","contentType":"password"}]}}]}]}`
	var query string
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		reply(200, v3)(n, w, r)
	})
	got, err := f.v2().Institutions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f.only().check(t, "GET", "/v3/institutions", false)
	if query != "scope=financial_data" {
		t.Errorf("query = %q", query)
	}
	if len(got) != 1 || got[0].ID != "5f2d08bf60b92e2888287703" || got[0].Color != "#004085" || got[0].NIPCode != "000013" {
		t.Fatalf("institutions = %+v", got)
	}
	if m, ok := got[0].Method(InternetBanking); !ok || len(m.UI.Form) != 2 || !m.UI.Form[1].IsSecret() {
		t.Errorf("method = %+v, %v", m, ok)
	}
}

func TestV2SessionNamesTheCustomerAndScopeAndNoApp(t *testing.T) {
	const nested = `{"status":"successful","message":"Request completed successfully","timestamp":"2025-05-13T12:25:49.020Z",
	 "data":{"session":{"id":"sess_vmx9qk1qmwmw8tgmad460fg7","scope":"financial_data","expiresAt":%s,
	  "institution":{"id":"inst_1","name":"GTBank","identifier":"gtbank"}},
	  "ui":{"title":"Log in to GTBank","form":[{"type":"elements.input","name":"username","hint":"UserID","contentType":"string"}]}}}`
	tests := []struct {
		name, expires string
		want          int64
	}{
		{"milliseconds", "1605101689897", 1605101689897},
		{"seconds", "1605101689", 1605101689000},
		{"numeric string", `"1605101689897"`, 1605101689897},
		{"RFC 3339", `"2020-11-11T13:34:49.897Z"`, 1605101689897},
		{"absent", `null`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, reply(200, strings.Replace(nested, "%s", tt.expires, 1)))
			s, err := f.v2().CreateSession(t.Context(), SessionRequest{Institution: "inst_1", AuthMethod: InternetBanking,
				Customer: &Customer{Name: "Ada Okafor", Email: "2348030000001@ussdlink.invalid"}})
			if err != nil {
				t.Fatal(err)
			}
			r := f.only()
			r.check(t, "POST", "/v2/connect/session", true)
			jsonEqual(t, r.body, map[string]any{"institution": "inst_1", "auth_method": InternetBanking, "scope": "financial_data",
				"customer": map[string]string{"name": "Ada Okafor", "email": "2348030000001@ussdlink.invalid"}})
			if s.ID != "sess_vmx9qk1qmwmw8tgmad460fg7" || s.Institution != "inst_1" || s.AuthMethod != InternetBanking ||
				len(s.UI.Form) != 1 || s.ExpiresAt != tt.want {
				t.Errorf("session = %+v", s)
			}
		})
	}
}

func TestV1SessionsNeverCarryACustomer(t *testing.T) {
	f := newFake(t, reply(200, `{"id":"session_1","expiresAt":1648193002017,"ui":{"form":[]}}`))
	_, err := f.client().CreateSession(t.Context(), SessionRequest{Institution: "inst", AuthMethod: InternetBanking,
		Customer: &Customer{Name: "Ada", Email: "a@b.c"}})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, f.only().body, map[string]string{"app": testApp, "institution": "inst", "auth_method": InternetBanking})
}

func TestV2HasNoReauthorisationTokens(t *testing.T) {
	f := newFake(t, reply(200, `{}`))
	if _, err := f.v2().CreateSession(t.Context(), SessionRequest{ReauthToken: "tok"}); err == nil {
		t.Error("CreateSession with a token succeeded on v2")
	}
	if _, err := f.v2().ReauthToken(t.Context(), "acc"); err == nil {
		t.Error("ReauthToken succeeded on v2")
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestV2StepsReadTheResponseCodeWhereverItSits(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, s *Step)
	}{
		{"99 at the top", `{"status":"successful","message":"Login successful","timestamp":"…","responseCode":99,"data":{"code":"code_au5w62egpzggouybo83i5spg"}}`,
			func(t *testing.T, s *Step) {
				if s.ResponseCode != CodeLinked || s.Code != "code_au5w62egpzggouybo83i5spg" {
					t.Errorf("step = %+v", s)
				}
			}},
		{"99 inside data", `{"status":"successful","data":{"responseCode":99,"code":"code_q90t4ar2uriet5ey4rs22v0x"}}`,
			func(t *testing.T, s *Step) {
				if s.ResponseCode != CodeLinked || s.Code != "code_q90t4ar2uriet5ey4rs22v0x" {
					t.Errorf("step = %+v", s)
				}
			}},
		{"101 lists accounts with balances in kobo", `{"status":"successful","message":"Multiple accounts found","responseCode":101,
		  "data":{"accounts":[{"accountNumber":"0131883461","name":"Samuel Olamide","type":"SAVINGS_ACCOUNT","currency":"NGN","status":"active","balance":10000000}]}}`,
			func(t *testing.T, s *Step) {
				if s.ResponseCode != CodeSelectAccount || len(s.Accounts) != 1 || s.Accounts[0].AccountNumber != "0131883461" || s.Accounts[0].Balance != 100000 {
					t.Errorf("step = %+v", s)
				}
			}},
		{"102 asks through userInput", `{"status":"successful","message":"OTP required","responseCode":102,
		  "data":{"userInput":{"title":"Please input OTP sent to you","form":[{"type":"elements.input","name":"otp","hint":"Please don't share this one time password","contentType":"string"}]}}}`,
			func(t *testing.T, s *Step) {
				if s.ResponseCode != CodeUserInput || s.Form == nil || s.Form.Form[0].Name != "otp" || s.Relogin {
					t.Errorf("step = %+v", s)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, reply(200, tt.body))
			s, err := f.v2().Login(t.Context(), "sess_1", map[string]string{"username": "u", "password": password})
			if err != nil {
				t.Fatal(err)
			}
			r := f.only()
			r.check(t, "POST", "/v2/connect/login", true)
			if r.session != "sess_1" {
				t.Errorf("x-session-id = %q", r.session)
			}
			tt.check(t, s)
		})
	}
}

func TestV2RefusalsAreRejectedWithoutThePassword(t *testing.T) {
	for name, resp := range map[string]struct {
		status int
		body   string
	}{
		"HTTP 400 failed envelope": {400, `{"status":"failed","message":"Invalid credentials for ` + password + `","responseCode":400,"data":null}`},
		"HTTP 200 failed envelope": {200, `{"status":"failed","message":"Invalid OTP Sent","responseCode":400,"data":null}`},
		"HTTP 200 code 400 only":   {200, `{"status":"successful","message":"Invalid OTP Sent","responseCode":400}`},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, reply(resp.status, resp.body))
			_, err := f.v2().Commit(t.Context(), "sess_1", map[string]any{"otp": password})
			me := asError(t, err)
			if me.Kind() != KindRejected || strings.Contains(err.Error(), password) {
				t.Errorf("error = %v (kind %v)", err, me.Kind())
			}
			f.only().check(t, "POST", "/v2/connect/commit", true)
		})
	}
}

func TestChooseAccountSendsTheIndexOnV1AndTheNumberOnV2(t *testing.T) {
	acct := Account{AccountNumber: "0131883461", Name: "Samuel"}
	for _, tt := range []struct {
		api  API
		path string
		want map[string]any
	}{
		{V1, "/v1/connect/commit", map[string]any{"account": 2}},
		{V2, "/v2/connect/commit", map[string]any{"accountNumber": "0131883461"}},
	} {
		t.Run(string(tt.api), func(t *testing.T) {
			f := newFake(t, reply(200, `{"status":"successful","responseCode":99,"data":{"code":"code_1"}}`))
			if _, err := f.client(WithAPI(tt.api)).ChooseAccount(t.Context(), "sess_1", 2, acct); err != nil {
				t.Fatal(err)
			}
			r := f.only()
			r.check(t, "POST", tt.path, true)
			jsonEqual(t, r.body, tt.want)
		})
	}
}

func TestV2ExchangeAcceptsTheEnvelopeAndTheBareID(t *testing.T) {
	for name, body := range map[string]string{
		"envelope": `{"status":"successful","message":"ok","timestamp":"2025-05-13T10:50:35.426Z","data":{"id":"5f171a530295e231abca1153"}}`,
		"bare":     `{"id":"5f171a530295e231abca1153"}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, reply(200, body))
			id, err := f.v2().Exchange(t.Context(), "code_1")
			if err != nil || id != "5f171a530295e231abca1153" {
				t.Fatalf("Exchange = %q, %v", id, err)
			}
			r := f.only()
			r.check(t, "POST", "/v2/accounts/auth", true)
			jsonEqual(t, r.body, map[string]string{"code": "code_1"})
		})
	}
}

func TestV2ReauthorisationIsOpenedByAPI(t *testing.T) {
	const otpForm = `{"title":"Enter OTP","form":[{"type":"elements.input","name":"otp","contentType":"password"}]}`
	const loginForm = `{"title":"Log in","form":[{"type":"elements.input","name":"username"},{"type":"elements.input","name":"password","contentType":"password"}]}`
	tests := []struct {
		name     string
		body     string
		code     int
		session  string
		relogin  bool
		wantCode string
	}{
		{"background success", `{"status":"successful","data":{"responseCode":99,"code":"code_q90t4ar2uriet5ey4rs22v0x"}}`,
			CodeLinked, "", false, "code_q90t4ar2uriet5ey4rs22v0x"},
		{"otp, session in data.session", `{"status":"successful","data":{"responseCode":102,"session":{"id":"sess_a","expiresAt":1605101689897},"userInput":` + otpForm + `}}`,
			CodeUserInput, "sess_a", false, ""},
		{"otp, session in data.id", `{"status":"successful","data":{"responseCode":102,"id":"sess_b","userInput":` + otpForm + `}}`,
			CodeUserInput, "sess_b", false, ""},
		{"login again, session in data.session_id", `{"status":"successful","data":{"responseCode":102,"session_id":"sess_c","ui":` + loginForm + `}}`,
			CodeUserInput, "sess_c", true, ""},
		{"login again, code at the top", `{"status":"successful","responseCode":102,"data":{"session":{"id":"sess_d"},"ui":` + loginForm + `}}`,
			CodeUserInput, "sess_d", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, reply(200, tt.body))
			ra, err := f.v2().Reauthorise(t.Context(), "acct_1")
			if err != nil {
				t.Fatal(err)
			}
			r := f.only()
			r.check(t, "POST", "/v2/connect/reauth/session", true)
			jsonEqual(t, r.body, map[string]string{"account": "acct_1"})
			if ra.Step.ResponseCode != tt.code || ra.Session.ID != tt.session || ra.Step.Relogin != tt.relogin || ra.Step.Code != tt.wantCode {
				t.Errorf("reauthorisation = %+v", ra)
			}
			if tt.code == CodeUserInput && (ra.Step.Form == nil || len(ra.Step.Form.Form) == 0) {
				t.Errorf("no form: %+v", ra.Step)
			}
		})
	}
}

func TestV2ReauthorisationFailuresAreErrors(t *testing.T) {
	for name, resp := range map[string]struct {
		status int
		body   string
		kind   Kind
	}{
		"refused":              {400, `{"status":"failed","message":"Invalid credentials","data":{"responseCode":400}}`, KindRejected},
		"no session to answer": {200, `{"status":"successful","data":{"responseCode":102,"userInput":{"form":[{"type":"elements.input","name":"otp"}]}}}`, KindOther},
		"no form":              {200, `{"status":"successful","data":{"responseCode":102,"session":{"id":"s"}}}`, KindOther},
		"unknown account":      {404, `{"status":"failed","message":"Account not found","data":null}`, KindNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, reply(resp.status, resp.body))
			_, err := f.v2().Reauthorise(t.Context(), "acct_1")
			if me := asError(t, err); me.Kind() != resp.kind {
				t.Errorf("error = %v, kind %v, want %v", err, me.Kind(), resp.kind)
			}
		})
	}
}

func TestV1ReauthorisationTakesATokenThenASession(t *testing.T) {
	f := newFake(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			reply(200, `{"token":"tok_1"}`)(n, w, r)
			return
		}
		reply(200, `{"id":"session_2","institution":"inst","expiresAt":1648193002017,
		 "ui":{"title":"OTP","form":[{"type":"elements.input","name":"otp","contentType":"password"}]},
		 "reauth":{"response_code":102,"message":"enter OTP"}}`)(n, w, r)
	})
	ra, err := f.client().Reauthorise(t.Context(), "acct_1")
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].path != "/accounts/acct_1/reauthorise" || reqs[1].path != "/v1/connect/session" {
		t.Fatalf("requests = %+v", reqs)
	}
	jsonEqual(t, reqs[1].body, map[string]string{"reauth_token": "tok_1"})
	if ra.Session.ID != "session_2" || ra.Step.ResponseCode != CodeUserInput || ra.Step.Form == nil || ra.Step.Relogin {
		t.Errorf("reauthorisation = %+v", ra)
	}
}

func TestReloginGoesToTheReauthLoginOnV2AndToCommitOnV1(t *testing.T) {
	for _, tt := range []struct {
		api  API
		path string
	}{{V1, "/v1/connect/commit"}, {V2, "/v2/connect/reauth/login"}} {
		t.Run(string(tt.api), func(t *testing.T) {
			f := newFake(t, reply(200, `{"status":"successful","data":{"responseCode":99,"code":"code_geiyk72og91xl2rox16b4emc"}}`))
			fields := map[string]string{"username": "user_relogin", "password": password}
			s, err := f.client(WithAPI(tt.api)).Relogin(t.Context(), "sess_1", fields)
			if err != nil || s.ResponseCode != CodeLinked {
				t.Fatalf("Relogin = %+v, %v", s, err)
			}
			r := f.only()
			r.check(t, "POST", tt.path, true)
			if r.session != "sess_1" {
				t.Errorf("x-session-id = %q", r.session)
			}
			jsonEqual(t, r.body, fields)
		})
	}
}

func TestAccountDetailsReadEverySpelling(t *testing.T) {
	for name, account := range map[string]string{
		"snake case": `{"id":"acct_1","name":"S","account_number":"1234567890","currency":"NGN","balance":333064,"type":"Digital Savings Account",
		  "institution":{"name":"GTBank","bank_code":"058","type":"PERSONAL_BANKING"}}`,
		"camel case": `{"_id":"acct_1","name":"S","accountNumber":"1234567890","currency":"NGN","balance":333064,"type":"Digital Savings Account",
		  "institution":{"name":"GTBank","bankCode":"058","type":"PERSONAL_BANKING"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, reply(200, `{"status":"successful","message":"ok","timestamp":"2024-04-12T06:31:02.289Z",
			 "data":{"account":`+account+`,"customer":{"id":"cus_1"},"meta":{"data_status":"AVAILABLE","auth_method":"internet_banking"}}}`))
			d, err := f.v2().Account(t.Context(), "acct_1")
			if err != nil {
				t.Fatal(err)
			}
			f.only().check(t, "GET", "/v2/accounts/acct_1", false)
			if d.ID != "acct_1" || d.AccountNumber != "1234567890" || d.Institution.BankCode != "058" || d.DataStatus != "AVAILABLE" {
				t.Errorf("details = %+v", d)
			}
		})
	}
}

func TestEpochMillisReadsEveryExpiryForm(t *testing.T) {
	at := time.Date(2020, 11, 11, 13, 34, 49, 897e6, time.UTC).UnixMilli()
	for in, want := range map[string]int64{
		`1605101689897`: at, `1605101689`: at - 897, `"1605101689897"`: at, `"2020-11-11T13:34:49.897Z"`: at,
		``: 0, `null`: 0, `"soon"`: 0, `-5`: 0, `{}`: 0, `1e30`: 0,
	} {
		if got := epochMillis([]byte(in)); got != want {
			t.Errorf("epochMillis(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestLooselyTypedFieldsAreReadInEveryFormMonoSends(t *testing.T) {
	forms := []string{`400`, `"400"`, ` "failed" `, `"FAILED"`, `200`, `"99"`, `99.0`, `"msg"`, `["a","b"]`, `[1]`,
		`{"message":"m","id":"i1"}`, `{"_id":"i2"}`, `null`, `true`, ``, `"unclosed`, `{bad`}
	tests := []struct {
		name string
		read func(json.RawMessage) any
		want map[string]any // forms not listed read as the zero value
	}{
		{"statusFailed", func(r json.RawMessage) any { return statusFailed(r) },
			map[string]any{`400`: true, `"400"`: true, ` "failed" `: true, `"FAILED"`: true}},
		{"intOf", func(r json.RawMessage) any { return intOf(r) },
			map[string]any{`400`: 400, `"400"`: 400, `200`: 200, `"99"`: 99, `99.0`: 99}},
		{"textOf", func(r json.RawMessage) any { return textOf(r) },
			map[string]any{` "failed" `: "failed", `"FAILED"`: "FAILED", `"400"`: "400", `"99"`: "99", `"msg"`: "msg",
				`["a","b"]`: "a; b", `{"message":"m","id":"i1"}`: "m"}},
		{"idOf", func(r json.RawMessage) any { return idOf(r) },
			map[string]any{` "failed" `: "failed", `"FAILED"`: "FAILED", `"400"`: "400", `"99"`: "99", `"msg"`: "msg",
				`{"message":"m","id":"i1"}`: "i1", `{"_id":"i2"}`: "i2"}},
	}
	zero := map[string]any{"statusFailed": false, "intOf": 0, "textOf": "", "idOf": ""}
	for _, tt := range tests {
		for _, in := range forms {
			want, ok := tt.want[in]
			if !ok {
				want = zero[tt.name]
			}
			if got := tt.read(json.RawMessage(in)); got != want {
				t.Errorf("%s(%s) = %v, want %v", tt.name, in, got, want)
			}
		}
	}
}

// BenchmarkStatusOfAStep reads a v1 step's numeric status, as every login
// and commit answer carries it.
func BenchmarkStatusOfAStep(b *testing.B) {
	raw := json.RawMessage(`200`)
	b.ReportAllocs()
	for b.Loop() {
		if statusFailed(raw) {
			b.Fatal("200 read as failed")
		}
	}
}
