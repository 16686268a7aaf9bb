package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
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

// Mono's webhooks in both of their shapes, through the real gateway.

// hookSecret is the [mono] webhook-secret of startHookGateway's gateway.
const hookSecret = "mono-hook-secret"

// hookSent is the timestamp monoV2 puts on its events: after the links
// the tests make (an unlinking sent before a link is not about it).
var hookSent = time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")

// hookGateway is a gateway whose Mono sends no webhooks of its own, with
// one account linked under a partner invitation: the test tells what
// Mono's webhooks say about it.
type hookGateway struct {
	m       *Main
	rcv     *receiver
	phone   string
	ref     string
	invite  string // the invitation the account was linked under
	account string
}

// startHookGateway links a sandbox account from phone, under an
// invitation with reference ref, on a gateway configured further by
// configure when it is given.
func startHookGateway(t *testing.T, phone, ref string, configure ...func(*Config)) hookGateway {
	t.Helper()
	g := hookGateway{rcv: newReceiver(t), phone: phone, ref: ref}
	sb := newExternalSandbox(t)
	g.m, _ = startPartnerGateway(t, g.rcv, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = sb.URL, "test_sk_hooks", "app"
		c.Mono.WebhookSecret = hookSecret
		for _, f := range configure {
			f(c)
		}
	})
	status, inv := call(t, g.m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": phone, "reference": ref}, nil)
	if status != 201 {
		t.Fatalf("POST /v1/links = %d %v", status, inv)
	}
	g.invite = inv["id"].(string)
	walk(t, g.m, phone, "1", "user_good", "pass_good").expect("is linked")
	links, err := g.m.db.LinksByPhone(context.Background(), phone)
	if err != nil || len(links) != 1 {
		t.Fatalf("links of %s = %v, %v; want one", phone, links, err)
	}
	g.account = links[0].AccountID
	return g
}

// link is the account's link as stored.
func (g hookGateway) link(t *testing.T) *link.Link {
	t.Helper()
	l, ok, err := g.m.db.Link(context.Background(), g.account)
	if err != nil || !ok {
		t.Fatalf("link of %s: %v, %v", g.account, ok, err)
	}
	return l
}

// hook posts a Mono webhook with the right secret; Mono is answered 200.
func (g hookGateway) hook(t *testing.T, body any) {
	t.Helper()
	if got := postMonoHook(t, g.m, body); got != 200 {
		t.Fatalf("POST /webhooks/mono %v = %d, want 200", body, got)
	}
}

// nudges counts the reauthorisation nudges texted to the phone.
func (g hookGateway) nudges() int {
	n := 0
	for _, msg := range g.m.smsSandbox.Inbox(g.phone) {
		if strings.Contains(msg.Text, "log in again") {
			n++
		}
	}
	return n
}

// postMonoHook posts a body (a string as it is, anything else as JSON) to
// /webhooks/mono with the right secret.
func postMonoHook(t *testing.T, m *Main, body any) int {
	t.Helper()
	b, ok := body.(string)
	if !ok {
		raw, _ := json.Marshal(body)
		b = string(raw)
	}
	req, _ := http.NewRequest("POST", m.URL()+"/webhooks/mono", strings.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("mono-webhook-secret", hookSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// monoV1 is an event in Mono's older shape: {event, data}.
func monoV1(event string, data map[string]any) map[string]any {
	return map[string]any{"event": "mono.events." + event, "data": data}
}

// monoV2 is an event in Mono's newer shape: event_id and timestamp, and
// the app and business inside data.
func monoV2(event, id string, data map[string]any) map[string]any {
	d := maps.Clone(data)
	d["app"], d["business"] = "68cb0c7e1e2f3a4b5c6d7e8f", "68ca0c7e1e2f3a4b5c6d7e8f"
	return map[string]any{"event": "mono.events." + event, "event_id": id, "timestamp": hookSent, "data": d}
}

// namesTheLink reports whether a partner event names the account, and the
// phone and reference it was linked with.
func (g hookGateway) namesTheLink(d map[string]any) bool {
	return d["account_id"] == g.account && d["phone"] == g.phone && d["reference"] == g.ref
}

func TestMonoEventsInEitherShapeAreAppliedOnce(t *testing.T) {
	account := func(key string) func(id string) map[string]any {
		return func(id string) map[string]any { return map[string]any{"account": map[string]any{key: id}} }
	}
	cases := []struct {
		name  string
		setup func(id string) []map[string]any // sent first, once
		body  func(id string) map[string]any   // sent, then sent again as Mono retries it
		want  string                           // the partner event it causes, once; "" for none
		check func(t *testing.T, g hookGateway, d map[string]any)
	}{
		{name: "account_connected (v1) is acknowledged and changes nothing",
			body: func(id string) map[string]any {
				return monoV1("account_connected", map[string]any{"id": id, "customer": "cus_1", "meta": map[string]any{}})
			},
			check: func(t *testing.T, g hookGateway, _ map[string]any) {
				if l := g.link(t); l.DataStatus != "" || l.ReauthRequired || !l.Unlinked.IsZero() {
					t.Errorf("link after account_connected = %+v, want it unchanged", l)
				}
			}},
		{name: "account_connected (v2) with a data status is acknowledged and changes nothing",
			body: func(id string) map[string]any {
				return monoV2("account_connected", "evt_connected", map[string]any{"id": id, "customer": "cus_1",
					"meta": map[string]any{"data_status": "PROCESSING", "auth_method": "internet_banking", "ref": "r1"}})
			},
			check: func(t *testing.T, g hookGateway, _ map[string]any) {
				if l := g.link(t); l.DataStatus != "" {
					t.Errorf("link data status after account_connected = %q, want none", l.DataStatus)
				}
			}},
		{name: "account_updated (v1) sets the data status, read whatever its case",
			body: func(id string) map[string]any {
				return monoV1("account_updated", map[string]any{"account": map[string]any{"_id": id}, "meta": map[string]any{"data_status": "available"}})
			},
			want: "DATA_STATUS",
			check: func(t *testing.T, g hookGateway, d map[string]any) {
				if _, ok := d["sync_status"]; d["data_status"] != "AVAILABLE" || ok {
					t.Errorf("DATA_STATUS = %v, want data_status AVAILABLE and no sync_status", d)
				}
				if _, got := call(t, g.m, "GET", "/v1/links/"+g.invite, testAPIKey, nil, nil); got["data_status"] != "AVAILABLE" {
					t.Errorf("GET /v1/links/{id} = %v, want data_status AVAILABLE", got)
				}
			}},
		{name: "account_updated (v2) with Mono's camelCase account sets the data status and tells the sync status",
			body: func(id string) map[string]any {
				return monoV2("account_updated", "evt_updated", map[string]any{
					"account": map[string]any{"_id": id, "name": "SAMUEL OLAMIDE NOMO", "accountNumber": "0100000062", "currency": "NGN",
						"balance": 17542, "type": "SAVINGS ACCOUNT - INDIVIDUAL", "bvn": "22000000003", "authMethod": "mobile_banking",
						"institution": map[string]any{"name": "Union Bank of Nigeria", "bankCode": "000018", "type": "PERSONAL_BANKING"},
						"created_at":  "2024-09-12T11:49:04.416Z", "updated_at": "2024-09-13T09:58:00.950Z"},
					"meta": map[string]any{"data_status": "AVAILABLE", "auth_method": "mobile_banking", "ref": "1804008877TEST",
						"sync_status": "SUCCESSFUL", "job_id": "68c9928e2f51b0693d5fffeb", "has_new_data": true,
						"retrieved_data": []string{"identity", "balance", "transactions"}}})
			},
			want: "DATA_STATUS",
			check: func(t *testing.T, g hookGateway, d map[string]any) {
				if d["data_status"] != "AVAILABLE" || d["sync_status"] != "SUCCESSFUL" {
					t.Errorf("DATA_STATUS = %v, want AVAILABLE, sync_status SUCCESSFUL", d)
				}
				if l := g.link(t); l.DataStatus != "AVAILABLE" || l.ReauthRequired {
					t.Errorf("link = %+v, want AVAILABLE and no reauthorisation required", l)
				}
			}},
		{name: "reauthorisation_required (v1) marks the link and nudges the customer",
			body:  func(id string) map[string]any { return monoV1("reauthorisation_required", account("_id")(id)) },
			want:  "REAUTHORISATION_REQUIRED",
			check: markedAndNudged},
		{name: "reauthorisation_required (v2) marks the link and nudges the customer",
			body: func(id string) map[string]any {
				return monoV2("reauthorisation_required", "evt_required", account("_id")(id))
			},
			want:  "REAUTHORISATION_REQUIRED",
			check: markedAndNudged},
		{name: "account_reauthorized (v1) clears the reauthorisation Mono asked for",
			setup: func(id string) []map[string]any {
				return []map[string]any{monoV2("reauthorisation_required", "evt_setup", account("_id")(id))}
			},
			body: func(id string) map[string]any { return monoV1("account_reauthorized", account("_id")(id)) },
			want: "ACCOUNT_REAUTHORISED",
			check: func(t *testing.T, g hookGateway, d map[string]any) {
				if l := g.link(t); l.ReauthRequired || l.Reauthorised.IsZero() || d["source"] != "mono" {
					t.Errorf("link = %+v, ACCOUNT_REAUTHORISED = %v; want it reauthorised by Mono", l, d)
				}
			}},
		{name: "account_reauthorized (v2) clears the reauthorisation Mono asked for",
			setup: func(id string) []map[string]any {
				return []map[string]any{monoV2("reauthorisation_required", "evt_setup", account("_id")(id))}
			},
			body: func(id string) map[string]any {
				return monoV2("account_reauthorized", "evt_reauthorized", account("_id")(id))
			},
			want: "ACCOUNT_REAUTHORISED",
			check: func(t *testing.T, g hookGateway, _ map[string]any) {
				if l := g.link(t); l.ReauthRequired || l.Reauthorised.IsZero() {
					t.Errorf("link = %+v, want it reauthorised", l)
				}
			}},
		{name: "account_unlinked (v1, the field table's _id) unlinks the link",
			body: func(id string) map[string]any { return monoV1("account_unlinked", account("_id")(id)) },
			want: "ACCOUNT_UNLINKED",
			check: func(t *testing.T, g hookGateway, _ map[string]any) {
				if _, got := call(t, g.m, "GET", "/v1/links/"+g.invite, testAPIKey, nil, nil); got["status"] != "unlinked" || got["unlinked_at"] == nil {
					t.Errorf("GET /v1/links/{id} = %v, want it unlinked", got)
				}
			}},
		{name: "account_unlinked (v2, the example's id) unlinks the link when Mono said so",
			body: func(id string) map[string]any { return monoV2("account_unlinked", "evt_unlinked", account("id")(id)) },
			want: "ACCOUNT_UNLINKED",
			check: func(t *testing.T, g hookGateway, _ map[string]any) {
				if l := g.link(t); !l.Unlinked.Equal(mustTime(t, hookSent)) {
					t.Errorf("link unlinked at %v, want Mono's timestamp %s", l.Unlinked, hookSent)
				}
			}},
		{name: "sync_failed (v1, the account's id in data.id) tells the partner",
			body: func(id string) map[string]any { return monoV1("sync_failed", map[string]any{"id": id}) },
			want: "SYNC_FAILED"},
		{name: "sync_failed (v2, in data.account._id) tells the partner",
			body: func(id string) map[string]any { return monoV2("sync_failed", "evt_sync_failed", account("_id")(id)) },
			want: "SYNC_FAILED"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := startHookGateway(t, fmt.Sprintf("+23480710005%02d", i), fmt.Sprintf("hooks-%d", i))
			if c.setup != nil {
				for _, body := range c.setup(g.account) {
					g.hook(t, body)
				}
			}
			body := c.body(g.account)
			for range 3 { // Mono retries: the same event_id, or the same body
				g.hook(t, body)
			}
			var d map[string]any
			if c.want != "" {
				d = g.rcv.await(c.want, nil)
				if !g.namesTheLink(d) {
					t.Errorf("%s = %v, want it to name %s, %s and %s", c.want, d, g.account, g.phone, g.ref)
				}
			}
			settled(t, g.m)
			if c.want != "" {
				if n := g.rcv.count(c.want); n != 1 {
					t.Errorf("%s sent %d times, want once: %v", c.want, n, g.rcv.types())
				}
			}
			for _, typ := range []string{"DATA_STATUS", "REAUTHORISATION_REQUIRED", "ACCOUNT_REAUTHORISED", "ACCOUNT_UNLINKED", "SYNC_FAILED"} {
				if n := g.rcv.count(typ); typ != c.want && n != 0 && (c.setup == nil || typ != "REAUTHORISATION_REQUIRED") {
					t.Errorf("%s sent %d times, want none: %v", typ, n, g.rcv.types())
				}
			}
			if c.check != nil {
				c.check(t, g, d)
			}
		})
	}
}

// mustTime reads an RFC 3339 time.
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func TestAccountUnlinkedShowsInTheLinksAndTellsThePartnerOnce(t *testing.T) {
	g := startHookGateway(t, "+2348071000601", "unlink-1")
	g.hook(t, monoV2("account_unlinked", "evt_unlinked_1", map[string]any{"account": map[string]any{"id": g.account}}))
	d := g.rcv.await("ACCOUNT_UNLINKED", nil)
	inst, _ := d["institution"].(map[string]any)
	if !g.namesTheLink(d) || inst["id"] == nil || inst["id"] == "" {
		t.Errorf("ACCOUNT_UNLINKED = %v, want the account, phone, reference and institution", d)
	}
	// Mono tells it again under another id, in its older shape: the link
	// stays unlinked when it first was, and the partner is not told again.
	g.hook(t, monoV1("account_unlinked", map[string]any{"account": map[string]any{"_id": g.account}}))
	settled(t, g.m)
	if n := g.rcv.count("ACCOUNT_UNLINKED"); n != 1 {
		t.Errorf("ACCOUNT_UNLINKED sent %d times, want once", n)
	}
	views := []struct {
		name string
		path string
	}{
		{"GET /v1/links/{id}", "/v1/links/" + g.invite},
		{"GET /v1/links?reference=", "/v1/links?reference=" + g.ref},
		{"GET /v1/links?phone=", "/v1/links?phone=" + url.QueryEscape(g.phone)},
	}
	for _, v := range views {
		status, got := call(t, g.m, "GET", v.path, testAPIKey, nil, nil)
		if list, ok := got["data"].([]any); ok {
			if len(list) != 1 {
				t.Errorf("%s = %v, want the one invitation", v.name, got)
				continue
			}
			got = list[0].(map[string]any)
		}
		if status != 200 || got["status"] != "unlinked" || got["account_id"] != g.account {
			t.Errorf("%s = %d %v, want the invitation unlinked", v.name, status, got)
		}
		if at, _ := got["unlinked_at"].(string); at == "" || !mustTime(t, at).Equal(mustTime(t, hookSent)) {
			t.Errorf("%s unlinked_at = %v, want %s, when Mono first said so", v.name, got["unlinked_at"], hookSent)
		}
	}
}

func TestAccountUpdatedSyncStatusActsAsItsEvent(t *testing.T) {
	cases := []struct {
		name       string
		syncStatus string
		also       string // the partner event it causes besides DATA_STATUS; "" for none
		reauth     bool   // the link is marked and the customer nudged
	}{
		{"REAUTHORISATION_REQUIRED acts like reauthorisation_required", "reauthorisation_required", "REAUTHORISATION_REQUIRED", true},
		{"FAILED tells SYNC_FAILED", "FAILED", "SYNC_FAILED", false},
		{"SUCCESSFUL tells the data status alone", "SUCCESSFUL", "", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := startHookGateway(t, fmt.Sprintf("+23480710007%02d", i), fmt.Sprintf("sync-%d", i))
			body := monoV2("account_updated", "evt_sync", map[string]any{"account": map[string]any{"_id": g.account},
				"meta": map[string]any{"data_status": "AVAILABLE", "sync_status": c.syncStatus}})
			g.hook(t, body)
			g.hook(t, body) // Mono's retry
			status := g.rcv.await("DATA_STATUS", nil)
			if want := strings.ToUpper(c.syncStatus); status["sync_status"] != want || status["data_status"] != "AVAILABLE" {
				t.Errorf("DATA_STATUS = %v, want data_status AVAILABLE, sync_status %s", status, want)
			}
			if c.also != "" {
				if d := g.rcv.await(c.also, nil); !g.namesTheLink(d) {
					t.Errorf("%s = %v, want it to name the link", c.also, d)
				}
			}
			settled(t, g.m)
			for _, typ := range []string{"DATA_STATUS", "REAUTHORISATION_REQUIRED", "SYNC_FAILED"} {
				want := 0
				if typ == "DATA_STATUS" || typ == c.also {
					want = 1
				}
				if n := g.rcv.count(typ); n != want {
					t.Errorf("%s sent %d times, want %d: %v", typ, n, want, g.rcv.types())
				}
			}
			if c.also != "" {
				isAlso := func(map[string]any) bool { return true }
				if s, a := g.rcv.indexOf("DATA_STATUS", isAlso), g.rcv.indexOf(c.also, isAlso); a < s {
					t.Errorf("%s (#%d) reached the partner before DATA_STATUS (#%d)", c.also, a, s)
				}
			}
			l := g.link(t)
			if l.DataStatus != "AVAILABLE" || l.ReauthRequired != c.reauth {
				t.Errorf("link = %+v, want AVAILABLE, reauthorisation required %v", l, c.reauth)
			}
			want := 0
			if c.reauth {
				want = 1
			}
			if n := g.nudges(); n != want {
				t.Errorf("nudges texted = %d, want %d", n, want)
			}
		})
	}
}

func TestMonoEventsNamingNoAccountAreAcknowledgedAndChangeNothing(t *testing.T) {
	g := startHookGateway(t, "+2348071000801", "none-1")
	cases := []struct {
		name string
		body any
		want int
	}{
		{"reauthorisation_required with an empty account", monoV2("reauthorisation_required", "evt_n1", map[string]any{"account": map[string]any{}}), 200},
		{"account_unlinked with an empty id", monoV1("account_unlinked", map[string]any{"account": map[string]any{"id": ""}}), 200},
		{"account_updated without data", map[string]any{"event": "mono.events.account_updated", "event_id": "evt_n2"}, 200},
		{"sync_failed whose data is not an object", map[string]any{"event": "mono.events.sync_failed", "data": "acc"}, 200},
		{"account_updated whose account is a number", monoV1("account_updated", map[string]any{"account": 42, "meta": map[string]any{"data_status": "FAILED"}}), 200},
		{"a body that is not JSON", `{"event": "mono.events.account_unlinked", "data": {`, 400},
		{"JSON without an event", map[string]any{"data": map[string]any{"account": map[string]any{"id": g.account}}}, 400},
	}
	for _, c := range cases {
		if got := postMonoHook(t, g.m, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	settled(t, g.m)
	for _, typ := range []string{"DATA_STATUS", "REAUTHORISATION_REQUIRED", "ACCOUNT_REAUTHORISED", "ACCOUNT_UNLINKED", "SYNC_FAILED"} {
		if n := g.rcv.count(typ); n != 0 {
			t.Errorf("%s sent %d times, want none", typ, n)
		}
	}
	if l := g.link(t); l.DataStatus != "" || l.ReauthRequired || !l.Unlinked.IsZero() {
		t.Errorf("link = %+v, want it unchanged", l)
	}
	if n := g.nudges(); n != 0 {
		t.Errorf("nudges texted = %d, want none", n)
	}
	if _, got := call(t, g.m, "GET", "/v1/links/"+g.invite, testAPIKey, nil, nil); got["status"] != "linked" {
		t.Errorf("GET /v1/links/{id} = %v, want it linked still", got)
	}
}

func TestTheNewPartnerEventsCanBeSelected(t *testing.T) {
	selected := []string{"ACCOUNT_UNLINKED", "SYNC_FAILED"}
	g := startHookGateway(t, "+2348071000901", "select-1", func(c *Config) { c.Partner.Events = selected })
	g.hook(t, monoV2("account_updated", "evt_s1", map[string]any{"account": map[string]any{"_id": g.account},
		"meta": map[string]any{"data_status": "AVAILABLE", "sync_status": "FAILED"}}))
	g.hook(t, monoV2("account_unlinked", "evt_s2", map[string]any{"account": map[string]any{"id": g.account}}))
	g.rcv.await("SYNC_FAILED", nil)
	g.rcv.await("ACCOUNT_UNLINKED", nil)
	settled(t, g.m)
	for _, typ := range g.rcv.types() {
		if !slices.Contains(selected, typ) {
			t.Errorf("unselected event %s was sent", typ)
		}
	}
}

// markedAndNudged checks that the link awaits reauthorisation and its
// customer was texted once.
func markedAndNudged(t *testing.T, g hookGateway, _ map[string]any) {
	t.Helper()
	if !g.link(t).ReauthRequired {
		t.Error("link not marked for reauthorisation")
	}
	if n := g.nudges(); n != 1 {
		t.Errorf("nudges texted = %d, want 1", n)
	}
}
