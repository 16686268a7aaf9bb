package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// walk dials and types each input in turn.
func walk(t *testing.T, m *Main, phone string, inputs ...string) *handset {
	t.Helper()
	h := newHandset(t, m, phone)
	h.dial()
	for _, in := range inputs {
		h.send(in)
	}
	return h
}

// encodings lists the forms a leaked value could take in a file or a log.
func encodings(secret string) []string {
	j, _ := json.Marshal(secret)
	out := []string{secret, strings.Trim(string(j), `"`), url.QueryEscape(secret), hex.EncodeToString([]byte(secret))}
	for shift := 0; shift < 3; shift++ {
		b := []byte(strings.Repeat("x", shift) + secret)
		enc := base64.StdEncoding.EncodeToString(b)
		// Keep the part of the encoding that depends only on the secret.
		start := (shift*4 + 2) / 3
		if start+8 < len(enc)-4 {
			out = append(out, enc[start+1:len(enc)-4])
		}
	}
	return out
}

// leaks returns the secrets found in data, in any of their encodings.
func leaks(data []byte, secrets []string) []string {
	var found []string
	for _, s := range secrets {
		for _, e := range encodings(s) {
			if len(e) >= 4 && bytes.Contains(data, []byte(e)) {
				found = append(found, fmt.Sprintf("%q as %q", s, e))
				break
			}
		}
	}
	return found
}

// typedSecrets are the distinctive values the secrecy tests type. The
// sandbox's PIN, 1234, is typed too but is no distinctive string (the OTP
// hint "080****1234" holds it); every field is sealed by the same code.
var typedSecrets = []string{"pass_good", "p*ss #good", "123456", "lagos-city-secret", "Wr0ng-P@ss*#"}

func TestNothingSecretAtRest(t *testing.T) {
	m, _ := startGateway(t, nil)
	// Complete flows, a refused answer, and abandoned flows that leave typed
	// values sealed between screens.
	walk(t, m, "+2348050000001", "1", "user_good", "pass_good")
	walk(t, m, "+2348050000002", "1", "user_star", "p*ss #good")
	walk(t, m, "+2348050000003", "1", "user_otp", "pass_good", "123456")
	walk(t, m, "+2348050000004", "1", "user_question", "pass_good", "lagos-city-secret", "lagos")
	walk(t, m, "+2348050000005", "1", "user_good", "Wr0ng-P@ss*#", "user_good", "pass_good")
	abandoned := walk(t, m, "+2348050000006", "stanbic", "user_good", "pass_good") // the one match opens; PIN never typed
	if !strings.Contains(abandoned.screen, "PIN") {
		t.Fatalf("abandoned flow is not at the PIN prompt: %s", abandoned.screen)
	}
	walk(t, m, "+2348050000007", "access", "1", "2", "user_good", "1234") // mobile PIN, linked
	path := m.Config.Store.Path
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.db, m.app, m.engine = nil, nil, nil // closed: the cleanup must not close again
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if found := leaks(raw, typedSecrets); len(found) > 0 {
		t.Errorf("the database file holds typed secrets: %v", found)
	}
	for _, transcript := range []string{"1*user_good*pass_good", "user_otp*pass_good"} {
		if bytes.Contains(raw, []byte(transcript)) {
			t.Errorf("the database file holds a transcript %q", transcript)
		}
	}
	info, err := os.Stat(filepath.Join(filepath.Dir(path), "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("seal key file mode = %v, want 0600", mode)
	}
}

func TestNothingSecretInLogsOrErrors(t *testing.T) {
	// Mono answers a refused login by echoing the request, the worst case.
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_logs"})
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/connect/login" {
			body := new(bytes.Buffer)
			body.ReadFrom(r.Body)
			if strings.Contains(body.String(), "echo_user") {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"status":400,"message":"bad credentials in %s"}`, strings.ReplaceAll(body.String(), `"`, `'`))
				return
			}
			r.Body = io.NopCloser(body)
		}
		sb.ServeHTTP(w, r)
	}))
	defer echo.Close()
	m, logs := startGateway(t, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = echo.URL, "test_sk_logs", "app"
		c.Log.Level = "debug"
	})
	phones := []string{"+2348060000001", "+2348060000002", "+2348060000003", "+2348060000004"}
	walk(t, m, phones[0], "1", "user_otp", "pass_good", "123456")
	walk(t, m, phones[1], "1", "echo_user", "Wr0ng-P@ss*#")
	walk(t, m, phones[2], "1", "user_question", "pass_good", "lagos-city-secret", "lagos")
	walk(t, m, phones[3], "1", "user_star", "p*ss #good")
	out := []byte(logs.String())
	if found := leaks(out, typedSecrets); len(found) > 0 {
		t.Errorf("logs hold typed secrets: %v", found)
	}
	for _, p := range phones {
		if bytes.Contains(out, []byte(p)) || bytes.Contains(out, []byte(strings.TrimPrefix(p, "+"))) {
			t.Errorf("logs hold the full phone number %s", p)
		}
	}
	if !bytes.Contains(out, []byte("+234*******001")) {
		t.Errorf("logs do not name phones masked: %s", out)
	}
	if !bytes.Contains(out, []byte("bad credentials in")) {
		t.Errorf("Mono's refusal was not logged at all")
	}
}

func TestCallbackAuthentication(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) {
		c.USSD.CallbackToken = "cb-secret-token"
		c.USSD.AllowIPs = []string{"127.0.0.0/8", "10.20.0.0/16"}
		c.USSD.TrustedProxyHeader = ""
	})
	proxied, _ := startGateway(t, func(c *Config) {
		c.USSD.AllowIPs = []string{"10.20.0.0/16"}
		c.USSD.TrustedProxyHeader = "X-Forwarded-For"
	})
	cases := []struct {
		name   string
		gw     *Main
		query  string
		header map[string]string
		want   int
	}{
		{name: "no token is refused", gw: m, want: 401},
		{name: "a wrong token is refused", gw: m, query: "?token=nope", want: 401},
		{name: "a token of another length is refused", gw: m, query: "?token=cb-secret-token-and-more", want: 401},
		{name: "the token in the URL is accepted", gw: m, query: "?token=cb-secret-token", want: 200},
		{name: "the token in the header is accepted", gw: m, header: map[string]string{"X-Callback-Token": "cb-secret-token"}, want: 200},
		{name: "a forwarded address is ignored without a trusted proxy header", gw: m, query: "?token=cb-secret-token", header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, want: 200},
		{name: "a caller outside the allowed networks is refused", gw: proxied, header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, want: 403},
		{name: "the trusted proxy header's rightmost address is the caller", gw: proxied, header: map[string]string{"X-Forwarded-For": "10.20.1.1, 203.0.113.9"}, want: 403},
		{name: "a caller inside the allowed networks is accepted", gw: proxied, header: map[string]string{"X-Forwarded-For": "203.0.113.9, 10.20.1.1"}, want: 200},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("auth-%d", i)
			form := url.Values{"sessionId": {id}, "serviceCode": {"*384*123#"}, "phoneNumber": {"+2348070000001"}, "text": {""}}
			req, _ := http.NewRequest(http.MethodPost, tc.gw.URL()+"/ussd/africastalking"+tc.query, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			_, err = storedSession(tc.gw, id)
			if created := err == nil; created != (tc.want == 200) {
				t.Errorf("session created = %v for status %d", created, tc.want)
			}
		})
	}
}

func TestBruteForceIsLockedOutAndRateLimited(t *testing.T) {
	clock := &testClock{now: time.Now()}
	m, _ := startMain(t, func(m *Main) {
		m.Now = clock.Now
		m.Config.Security.PhoneRate = 12
		m.Config.Security.IPRate = 3
	})
	t.Run("three refused logins pause the phone's logins without a Mono call", func(t *testing.T) {
		const phone = "+2348080000001"
		h := walk(t, m, phone, "1", "user_good", "bad-1", "user_good", "bad-2", "user_good", "bad-3")
		h.expect("Too many failed attempts")
		before := m.sandboxCalls()
		h = walk(t, m, phone)
		h.expect("paused")
		if !h.ended {
			t.Fatalf("locked phone was offered a screen: %s", h.screen)
		}
		if after := m.sandboxCalls(); after != before {
			t.Errorf("a locked phone reached Mono: %d calls before, %d after", before, after)
		}
		clock.Advance(31 * time.Minute)
		h = walk(t, m, phone)
		h.expect("Choose bank")
	})
	t.Run("a phone over its hop rate gets a polite END and changes nothing", func(t *testing.T) {
		const phone = "+2348080000002"
		h := walk(t, m, phone, "98", "0", "98", "0", "98", "0", "98", "0", "98", "0", "98") // 12 hops
		id := h.session
		stored, _ := storedSession(m, id)
		h.send("0")
		h.expect("Too many requests")
		if !h.ended {
			t.Fatalf("over the rate, the session goes on: %s", h.screen)
		}
		after, _ := storedSession(m, id)
		if after.Hops != stored.Hops || after.State != stored.State {
			t.Errorf("a refused hop changed the session: %d→%d hops", stored.Hops, after.Hops)
		}
		clock.Advance(2 * time.Minute)
		walk(t, m, phone).expect("Choose bank")
	})
	t.Run("an address over its rate on the partner routes gets 429", func(t *testing.T) {
		var codes []int
		for range 5 {
			resp, err := http.Get(m.URL() + "/v1/links/none")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		if codes[2] == http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests || codes[4] != http.StatusTooManyRequests {
			t.Errorf("statuses = %v, want 429 from the fourth on", codes)
		}
	})
}

func TestRateLimitsOfZeroAreOff(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) { c.Security.PhoneRate, c.Security.IPRate = 0, 0 })
	h := newHandset(t, m, "+2348080000009")
	h.dial()
	for range 40 {
		h.send("98")
		h.send("0")
	}
	h.expect("Choose bank")
	for range 20 {
		resp, err := http.Get(m.URL() + "/v1/none")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatal("ip-rate 0 still limits")
		}
	}
}

func TestHostileInputGetsA4xxAndChangesNothing(t *testing.T) {
	m, _ := startGateway(t, nil)
	h := walk(t, m, "+2348090000001", "1", "user_good")
	before, err := storedSession(m, h.session)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) int {
		resp, err := http.Post(m.URL()+"/ussd/africastalking", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	at := func(session, phone, text string) string {
		return url.Values{"sessionId": {session}, "serviceCode": {"*384*123#"}, "phoneNumber": {phone}, "text": {text}}.Encode()
	}
	cases := []struct {
		name string
		body string
		want int
	}{
		{"an oversized body", at(h.session, h.phone, "1*user_good*"+strings.Repeat("x", 20000)), 413},
		{"a missing session id", url.Values{"phoneNumber": {h.phone}, "serviceCode": {"*384*123#"}}.Encode(), 400},
		{"a missing phone number", url.Values{"sessionId": {h.session}, "serviceCode": {"*384*123#"}}.Encode(), 400},
		{"invalid UTF-8", at(h.session, h.phone, "1*user_good*\xff\xfe"), 400},
		{"control characters", at(h.session, h.phone, "1*user_good*pa\x00ss"), 400},
		{"an escape sequence", at(h.session, h.phone, "1*user_good*\x1b[2J"), 400},
		{"a transcript that does not extend the previous one", at(h.session, h.phone, "2*someone"), 400},
		{"a phone number that changes within the session", at(h.session, "+2348099999999", "1*user_good*pass_good"), 400},
		{"a phone number that is not one (a polite END, no session)", at("other-session", "'; DROP TABLE", ""), 200},
		{"a body that is not a form", `{"sessionId":"x"}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.body); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
			after, err := storedSession(m, h.session)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(after)
			b, _ := json.Marshal(before)
			if !bytes.Equal(a, b) || len(after.Answers) != len(before.Answers) {
				t.Errorf("the session changed")
			}
		})
	}
	// The session still works as a handset would use it.
	h.send("pass_good")
	h.expect("is linked")
}

func TestSafeDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.toml", time.Now().UnixNano()))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		body    string
		env     map[string]string
		refused bool
	}{
		{name: "a live key without callback auth is refused", body: "[mono]\nbase-url = \"http://mono\"\nsecret-key = \"live_sk_abc\"\n", refused: true},
		{name: "a live key from the environment without callback auth is refused", env: map[string]string{"MONO_SECRET_KEY": "live_sk_env"}, refused: true},
		{name: "a live key with a callback token starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n[ussd]\ncallback-token = \"t\"\n"},
		{name: "a live key with a token from the environment starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n", env: map[string]string{"USSDLINK_CALLBACK_TOKEN": "t"}},
		{name: "a live key with allowed networks starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n[ussd]\nallow-ips = [\"10.0.0.0/8\"]\n"},
		{name: "a live key with an explicit allow-unauthenticated starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n[security]\nallow-unauthenticated = true\n"},
		{name: "a test key without callback auth starts", body: "[mono]\nsecret-key = \"test_sk_abc\"\n"},
		{name: "a malformed allowed network is refused", body: "[ussd]\nallow-ips = [\"10.0.0/33\"]\n", refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig(write(tc.body), true)
			if refused := err != nil; refused != tc.refused {
				t.Fatalf("LoadConfig err = %v, want refused %v", err, tc.refused)
			}
		})
	}
	t.Run("a generated seal key is warned about, a configured one is not", func(t *testing.T) {
		_, logs := startGateway(t, nil)
		if !strings.Contains(logs.String(), "generated a seal key") {
			t.Errorf("no warning for a generated seal key")
		}
		_, logs = startGateway(t, func(c *Config) { c.Security.SealKey = strings.Repeat("ab", 32) })
		if strings.Contains(logs.String(), "generated a seal key") {
			t.Errorf("warned although a key was configured")
		}
	})
	t.Run("the seal key can come from the environment", func(t *testing.T) {
		t.Setenv("USSDLINK_SEAL_KEY", strings.Repeat("cd", 32))
		cfg, err := LoadConfig(write(""), true)
		if err != nil || cfg.Security.SealKey != strings.Repeat("cd", 32) {
			t.Fatalf("seal key = %q, %v", cfg.Security.SealKey, err)
		}
	})
}

// testClock is a settable clock for the gateway.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
