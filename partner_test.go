package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/ussdlink/ussdlink/partner"
)

const testAPIKey = "pk_test_0123456789"

// receiver is the partner's webhook endpoint: it verifies every delivery
// with an independent Standard Webhooks implementation and keeps them.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	events []webhookEvent
	ids    map[string]int
}

type webhookEvent struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, secret: partner.GenerateSecret(), ids: map[string]int{}}
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := wh.Verify(body, req.Header); err != nil {
			t.Errorf("webhook does not verify: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev webhookEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.ids[req.Header.Get("webhook-id")]++
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// await waits for an event of a type matching the filter.
func (r *receiver) await(typ string, match func(map[string]any) bool) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, e := range r.events {
			if e.Type == typ && (match == nil || match(e.Data)) {
				r.mu.Unlock()
				return e.Data
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("no %s webhook arrived; got %v", typ, r.types())
	return nil
}

// count returns how many events of a type arrived.
func (r *receiver) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func (r *receiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

// startPartnerGateway runs the gateway with an API key and webhooks to rcv.
func startPartnerGateway(t *testing.T, rcv *receiver, configure func(*Config)) (*Main, *syncBuffer) {
	t.Helper()
	return startGateway(t, func(c *Config) {
		c.Partner.APIKeys = []string{testAPIKey}
		if rcv != nil {
			c.Partner.WebhookURL, c.Partner.WebhookSecret = rcv.srv.URL, rcv.secret
		}
		if configure != nil {
			configure(c)
		}
	})
}

// call makes an API request and decodes the JSON answer.
func call(t *testing.T, m *Main, method, path, key string, body any, headers map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, m.URL()+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// dialCode dials a partner code over Africa's Talking, as a network that
// puts the extension in the service code does.
func dialCode(t *testing.T, m *Main, phone, dial string) *handset {
	t.Helper()
	h := newHandsetOn(t, m, atDeepWire{serviceCode: dial}, phone)
	h.dial()
	return h
}

func TestPartnerAPIAuthAndValidation(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, nil)
	valid := map[string]any{"phone": "+2348071000001", "reference": "loan-1"}
	cases := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		status int
		code   string
	}{
		{"a missing key is refused", "POST", "/v1/links", "", valid, 401, "unauthorized"},
		{"a wrong key is refused", "POST", "/v1/links", "pk_wrong", valid, 401, "unauthorized"},
		{"reading without a key is refused", "GET", "/v1/links?phone=%2B2348071000001", "", nil, 401, "unauthorized"},
		{"a phone that is not one is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "call me", "reference": "r"}, 400, "invalid_phone"},
		{"a missing reference is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "+2348071000001"}, 400, "invalid_reference"},
		{"an unknown auth method is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "+2348071000001", "reference": "r", "institution": "x", "auth_method": "carrier_pigeon"}, 400, "invalid_auth_method"},
		{"an unknown field is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "+2348071000001", "reference": "r", "referense": "typo"}, 400, "invalid_request"},
		{"a reauth without an account is refused", "POST", "/v1/reauth", testAPIKey, map[string]any{"phone": "+2348071000001"}, 400, "invalid_account_id"},
		{"an unknown link is not found", "GET", "/v1/links/lnk_nope", testAPIKey, nil, 404, "not_found"},
		{"a list without a filter is refused", "GET", "/v1/links", testAPIKey, nil, 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, m, tc.method, tc.path, tc.key, tc.body, nil)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, out)
			}
			e, _ := out["error"].(map[string]any)
			if e == nil || e["code"] != tc.code || e["message"] == "" {
				t.Errorf("error = %v, want code %q with a message", out, tc.code)
			}
		})
	}
	if _, out := call(t, m, "GET", "/v1/links?phone=%2B2348071000001", testAPIKey, nil, nil); len(out["data"].([]any)) != 0 {
		t.Errorf("refused requests created invitations: %v", out)
	}
}

func TestInviteDialLinkAndReadBack(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, nil)
	const phone = "+2348071000002"
	status, inv := call(t, m, "POST", "/v1/links", testAPIKey,
		map[string]any{"phone": phone, "reference": "loan-77", "institution": "5f2d08be60b92e2888287702", "auth_method": "internet_banking"},
		map[string]string{"Idempotency-Key": "create-loan-77"})
	if status != 201 || inv["status"] != "pending" || inv["reference"] != "loan-77" || inv["expires_at"] == nil {
		t.Fatalf("create = %d %v", status, inv)
	}
	dial := inv["dial"].(string)
	if !strings.HasPrefix(dial, "*384*123*") || !strings.HasSuffix(dial, "#") {
		t.Fatalf("dial = %q", dial)
	}
	// The same Idempotency-Key returns the first answer, creating nothing.
	status, again := call(t, m, "POST", "/v1/links", testAPIKey,
		map[string]any{"phone": phone, "reference": "loan-77", "institution": "5f2d08be60b92e2888287702", "auth_method": "internet_banking"},
		map[string]string{"Idempotency-Key": "create-loan-77"})
	if status != 201 || again["id"] != inv["id"] || again["dial"] != dial {
		t.Fatalf("repeat create = %d %v, want the first answer", status, again)
	}

	h := dialCode(t, m, phone, dial)
	h.expect("Log in to GTBank") // straight to the institution
	h.send("user_good")
	h.send("pass_good")
	h.expect("GTBank", "is linked")

	_, got := call(t, m, "GET", "/v1/links/"+inv["id"].(string), testAPIKey, nil, nil)
	if got["status"] != "linked" || got["account_id"] == "" || !strings.HasPrefix(got["account_number"].(string), "****") ||
		got["auth_method"] != "internet_banking" || got["linked_at"] == nil || got["institution"].(map[string]any)["name"] != "GTBank" {
		t.Fatalf("GET after linking = %v", got)
	}
	for _, q := range []string{"reference=loan-77", "phone=" + url.QueryEscape(phone)} {
		_, list := call(t, m, "GET", "/v1/links?"+q, testAPIKey, nil, nil)
		if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["status"] != "linked" {
			t.Errorf("list by %s = %v", q, list)
		}
	}
	linked := rcv.await("ACCOUNT_LINKED", nil)
	if linked["reference"] != "loan-77" || linked["phone"] != phone || linked["account_id"] != got["account_id"] {
		t.Errorf("ACCOUNT_LINKED = %v", linked)
	}
	for _, typ := range []string{"OPENED", "INSTITUTION_SELECTED", "SUBMIT_CREDENTIALS"} {
		if d := rcv.await(typ, nil); d["reference"] != "loan-77" {
			t.Errorf("%s without the reference: %v", typ, d)
		}
	}
	// The sandbox's own webhook about the new account reaches the partner too.
	rcv.await("DATA_STATUS", func(d map[string]any) bool { return d["account_id"] == got["account_id"] })
}

func TestPlainDialAttachesThePendingInvite(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, nil)
	const phone = "+2348071000003"
	call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": phone, "reference": "agent-9"}, nil)
	h := walk(t, m, phone, "1", "user_good", "pass_good")
	h.expect("is linked")
	d := rcv.await("ACCOUNT_LINKED", nil)
	if d["reference"] != "agent-9" {
		t.Errorf("ACCOUNT_LINKED reference = %v", d["reference"])
	}
	// Another phone dialling the code gets nothing of the invitation.
	_, inv := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": phone, "reference": "agent-10", "institution": "5f2d08be60b92e2888287702"}, nil)
	other := dialCode(t, m, "+2348071999999", inv["dial"].(string))
	other.expect("Choose bank")
}

func TestReauthorise(t *testing.T) {
	cases := []struct {
		name  string
		user  string
		steps []string
	}{
		{name: "Mono logs in in the background", user: "user_good"},
		{name: "the bank asks for an OTP", user: "user_otp", steps: []string{"123456"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t)
			m, _ := startPartnerGateway(t, rcv, nil)
			phone := fmt.Sprintf("+23480710001%02d", i)
			linking := []string{"1", tc.user, "pass_good"}
			if tc.user == "user_otp" {
				linking = append(linking, "123456")
			}
			walk(t, m, phone, linking...).expect("is linked")
			account := rcv.await("ACCOUNT_LINKED", nil)["account_id"].(string)

			status, re := call(t, m, "POST", "/v1/reauth", testAPIKey, map[string]any{"account_id": account, "phone": phone, "reference": "reauth-1"}, nil)
			if status != 201 || re["status"] != "pending" || re["dial"] == "" {
				t.Fatalf("reauth = %d %v", status, re)
			}
			reauths := m.sandboxMono.Calls("reauthorise")
			if reauths != 0 {
				t.Errorf("a token was asked for before the customer dialled")
			}
			h := dialCode(t, m, phone, re["dial"].(string))
			if len(tc.steps) > 0 {
				h.expect("OTP")
				for _, in := range tc.steps {
					h.send(in)
				}
			}
			h.expect("GTBank", "re-authorised")
			if !h.ended {
				t.Fatalf("reauth did not end: %s", h.screen)
			}
			_, got := call(t, m, "GET", "/v1/reauth/"+re["id"].(string), testAPIKey, nil, nil)
			if got["status"] != "reauthorised" || got["account_id"] != account {
				t.Errorf("GET reauth = %v", got)
			}
			d := rcv.await("ACCOUNT_REAUTHORISED", nil)
			if d["account_id"] != account || d["reference"] != "reauth-1" {
				t.Errorf("ACCOUNT_REAUTHORISED = %v", d)
			}
			// Mono's own account_reauthorized webhook follows; it must not
			// tell the partner a second time.
			m.sandboxMono.WaitWebhooks(context.Background())
			time.Sleep(100 * time.Millisecond)
			if n := rcv.count("ACCOUNT_REAUTHORISED"); n != 1 {
				t.Errorf("ACCOUNT_REAUTHORISED sent %d times", n)
			}
		})
	}
}

// monoHook posts a Mono webhook to the gateway.
func monoHook(t *testing.T, m *Main, secret string, body map[string]any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", m.URL()+"/webhooks/mono", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("mono-webhook-secret", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestMonoWebhooksNeedTheSecretAndApplyOnce(t *testing.T) {
	rcv := newReceiver(t)
	sb := newExternalSandbox(t)
	m, _ := startPartnerGateway(t, rcv, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = sb.URL, "test_sk_hooks", "app"
		c.Mono.WebhookSecret = "mono-hook-secret"
	})
	walk(t, m, "+2348071000201", "1", "user_good", "pass_good").expect("is linked")
	account := rcv.await("ACCOUNT_LINKED", nil)["account_id"].(string)

	updated := map[string]any{"event": "mono.events.account_updated", "event_id": "evt_fixed_1",
		"data": map[string]any{"account": map[string]any{"id": account}, "meta": map[string]any{"data_status": "PROCESSING"}}}
	if got := monoHook(t, m, "", updated); got != 401 {
		t.Errorf("without the secret: %d, want 401", got)
	}
	if got := monoHook(t, m, "wrong", updated); got != 401 {
		t.Errorf("with a wrong secret: %d, want 401", got)
	}
	for range 3 { // Mono retries with the same event_id
		if got := monoHook(t, m, "mono-hook-secret", updated); got != 200 {
			t.Fatalf("with the secret: %d", got)
		}
	}
	rcv.await("DATA_STATUS", func(d map[string]any) bool { return d["data_status"] == "PROCESSING" })
	time.Sleep(200 * time.Millisecond)
	n := 0
	rcv.mu.Lock()
	for _, e := range rcv.events {
		if e.Type == "DATA_STATUS" && e.Data["data_status"] == "PROCESSING" {
			n++
		}
	}
	rcv.mu.Unlock()
	if n != 1 {
		t.Errorf("DATA_STATUS for one event sent %d times", n)
	}
	link, _, _ := m.db.Link(context.Background(), account)
	if link.DataStatus != "PROCESSING" {
		t.Errorf("link data status = %q", link.DataStatus)
	}

	required := map[string]any{"event": "mono.events.reauthorisation_required", "event_id": "evt_fixed_2",
		"data": map[string]any{"account": map[string]any{"_id": account}}}
	monoHook(t, m, "mono-hook-secret", required)
	d := rcv.await("REAUTHORISATION_REQUIRED", nil)
	if d["account_id"] != account || d["phone"] != "+2348071000201" {
		t.Errorf("REAUTHORISATION_REQUIRED = %v", d)
	}
	if link, _, _ := m.db.Link(context.Background(), account); !link.ReauthRequired {
		t.Errorf("link not marked for reauthorisation")
	}
	// An older event without an id is de-duplicated by its body.
	old := map[string]any{"event": "mono.events.account_updated", "data": map[string]any{"account": map[string]any{"id": account}, "meta": map[string]any{"data_status": "FAILED"}}}
	monoHook(t, m, "mono-hook-secret", old)
	monoHook(t, m, "mono-hook-secret", old)
	rcv.await("DATA_STATUS", func(d map[string]any) bool { return d["data_status"] == "FAILED" })
	time.Sleep(200 * time.Millisecond)
	if got := rcv.count("DATA_STATUS"); got != 2 {
		t.Errorf("DATA_STATUS events = %d, want 2 (PROCESSING once, FAILED once)", got)
	}
}

func TestPartnerEventsCanBeSelected(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, func(c *Config) { c.Partner.Events = []string{"ACCOUNT_LINKED"} })
	walk(t, m, "+2348071000301", "1", "user_good", "pass_good").expect("is linked")
	rcv.await("ACCOUNT_LINKED", nil)
	time.Sleep(200 * time.Millisecond)
	for _, typ := range rcv.types() {
		if typ != "ACCOUNT_LINKED" {
			t.Errorf("unselected event %s was sent", typ)
		}
	}
}

// newExternalSandbox serves a sandbox whose webhooks go nowhere (the test
// posts Mono's webhooks itself).
func newExternalSandbox(t *testing.T) *httptest.Server {
	sb := newSandbox("test_sk_hooks")
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	return srv
}
