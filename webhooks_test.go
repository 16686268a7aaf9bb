package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

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
	settled(t, m)
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
	settled(t, m)
	if got := rcv.count("DATA_STATUS"); got != 2 {
		t.Errorf("DATA_STATUS events = %d, want 2 (PROCESSING once, FAILED once)", got)
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

func TestPartnerEventsCanBeSelected(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, func(c *Config) { c.Partner.Events = []string{"ACCOUNT_LINKED"} })
	walk(t, m, "+2348071000301", "1", "user_good", "pass_good").expect("is linked")
	rcv.await("ACCOUNT_LINKED", nil)
	settled(t, m)
	for _, typ := range rcv.types() {
		if typ != "ACCOUNT_LINKED" {
			t.Errorf("unselected event %s was sent", typ)
		}
	}
}

func TestAccountUpdatedBeforeTheLinkCommitsReachesTheNewLink(t *testing.T) {
	sb := newSandbox("test_sk_hooks")
	t.Cleanup(sb.Close)
	fake := &earlyMono{t: t, sandbox: sb, secret: "mono-hook-secret"}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = srv.URL, "test_sk_hooks", "app"
		c.Mono.WebhookSecret = fake.secret
	})
	fake.mu.Lock()
	fake.gateway = m.URL()
	fake.mu.Unlock()

	// The same sandbox account is linked twice: from a first phone, then
	// from a second; each time Mono's update comes before the link commits.
	cases := []struct {
		name, phone, ref, status string
	}{
		{"the first link of an account", "+2348071000411", "early-1", "PROCESSING"},
		{"the account linked again from another phone", "+2348071000412", "early-2", "AVAILABLE"},
	}
	for _, c := range cases {
		fake.mu.Lock()
		fake.status = c.status
		fake.mu.Unlock()
		_, inv := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": c.phone, "reference": c.ref}, nil)
		walk(t, m, c.phone, "1", "user_good", "pass_good").expect("is linked")

		ours := func(d map[string]any) bool { return d["phone"] == c.phone && d["reference"] == c.ref }
		linked, ok := rcv.find("ACCOUNT_LINKED", ours)
		if !ok {
			t.Errorf("%s: no ACCOUNT_LINKED; got %v", c.name, rcv.types())
			continue
		}
		account := linked["account_id"].(string)
		isStatus := func(d map[string]any) bool {
			return ours(d) && d["data_status"] == c.status && d["account_id"] == account
		}
		if _, ok := rcv.find("DATA_STATUS", isStatus); !ok {
			t.Errorf("%s: no DATA_STATUS %s naming %s and %s; got %v", c.name, c.status, c.phone, c.ref, rcv.types())
		} else if l, s := rcv.indexOf("ACCOUNT_LINKED", ours), rcv.indexOf("DATA_STATUS", isStatus); s < l {
			t.Errorf("%s: DATA_STATUS (#%d) reached the partner before ACCOUNT_LINKED (#%d): %v", c.name, s, l, rcv.types())
		}
		if _, got := call(t, m, "GET", "/v1/links/"+inv["id"].(string), testAPIKey, nil, nil); got["data_status"] != c.status {
			t.Errorf("%s: GET /v1/links/{id} = %v, want data_status %s", c.name, got, c.status)
		}
		if l, ok, _ := m.db.Link(context.Background(), account); !ok || l.Phone != c.phone || l.DataStatus != c.status {
			t.Errorf("%s: stored link = %+v", c.name, l)
		}
	}
}

// earlyMono is Mono as the sandbox, except that it sends account_updated
// for an account before it answers the code exchange that links it: the
// gateway hears of the account's data before its own link is committed.
type earlyMono struct {
	t       *testing.T
	sandbox http.Handler
	secret  string

	mu      sync.Mutex
	gateway string // where Mono's webhooks go
	status  string // the data status the next update tells
}

func (f *earlyMono) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/account/auth" {
		f.sandbox.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	f.sandbox.ServeHTTP(rec, r)
	var out struct {
		ID string `json:"id"`
	}
	if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &out) == nil && out.ID != "" {
		f.update(out.ID)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// update posts account_updated for an account to the gateway and waits for
// it to be taken.
func (f *earlyMono) update(account string) {
	f.mu.Lock()
	url, status := f.gateway, f.status
	f.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"event": "mono.events.account_updated", "event_id": "evt_early_" + status,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"data":      map[string]any{"account": map[string]any{"_id": account}, "meta": map[string]any{"data_status": status}}})
	req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/mono", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("mono-webhook-secret", f.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Errorf("account_updated: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.t.Errorf("account_updated: status %d", resp.StatusCode)
	}
}
