package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// awaitCount waits until n events of a type have arrived, and returns them.
func (r *receiver) awaitCount(typ string, n int) []map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		var got []map[string]any
		for _, e := range r.events {
			if e.Type == typ {
				got = append(got, e.Data)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d %s webhooks arrived, want %d; got %v", len(got), typ, n, r.types())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// find waits for an event of a type matching match, like await, but
// reports a timeout rather than failing the test.
func (r *receiver) find(typ string, match func(map[string]any) bool) (map[string]any, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if i := r.indexOf(typ, match); i >= 0 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.events[i].Data, true
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// indexOf is the position of the first event of a type matching match in
// the order the partner received them, or -1.
func (r *receiver) indexOf(typ string, match func(map[string]any) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.events {
		if e.Type == typ && match(e.Data) {
			return i
		}
	}
	return -1
}

func TestTwoSessionsOnOneInvitationCodeUseItOnce(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, nil)
	const phone, ref = "+2348071000401", "race-1"
	status, inv := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": phone, "reference": ref}, nil)
	if status != 201 {
		t.Fatalf("create = %d %v", status, inv)
	}
	dial := inv["dial"].(string)

	// Two sessions of the invited phone dial the code at the same moment.
	hs := []*handset{newHandsetOn(t, m, atDeepWire{serviceCode: dial}, phone), newHandsetOn(t, m, atDeepWire{serviceCode: dial}, phone)}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h.dial()
		}()
	}
	close(start)
	wg.Wait()
	carrying := 0
	for _, h := range hs {
		h.expect("Choose bank")
		s, err := storedSession(m, h.session)
		if err != nil {
			t.Fatal(err)
		}
		if s.Reference == ref {
			carrying++
		}
	}
	if carrying != 1 {
		t.Errorf("%d sessions carry the invitation's reference, want 1", carrying)
	}

	// Both link, different accounts: only one link is the invitation's.
	for _, h := range hs {
		if h == hs[0] {
			h.send("1")
			h.send("user_good")
			h.send("pass_good")
		} else {
			h.send("1")
			h.send("user_multi")
			h.send("pass_good")
			h.expect("Choose the account")
			h.send("1")
		}
		h.expect("is linked")
	}
	linked := rcv.awaitCount("ACCOUNT_LINKED", 2)
	with := 0
	for _, d := range linked {
		if d["reference"] == ref {
			with++
		}
	}
	if with != 1 {
		t.Errorf("ACCOUNT_LINKED with the invitation's reference sent %d times, want once: %v", with, linked)
	}
	if _, got := call(t, m, "GET", "/v1/links/"+inv["id"].(string), testAPIKey, nil, nil); got["status"] != "linked" {
		t.Errorf("invitation after both links = %v", got)
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

func TestAnInvitationFollowsTheSessionThatCarriesOnAndIsFreedByOneThatLeaves(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, nil)
	cases := []struct {
		name  string
		phone string
		// then is what the second dial of the code does before logging in.
		then func(h *handset)
		// leave is what the first session does before the second dials.
		leave func(h *handset)
	}{
		{"a session that exited frees the code", "+2348071000421",
			func(h *handset) { h.expect("Log in to GTBank") },
			func(h *handset) {
				for i := 0; i < 3 && !h.ended; i++ { // 0 backs out to the bank list, then exits
					h.send("0")
				}
				h.expect("Goodbye")
			}},
		{"a resumed session keeps the invitation", "+2348071000422",
			func(h *handset) { h.expect("You were linking"); h.choose("Continue") },
			func(h *handset) {}},
		{"a session started over takes the invitation", "+2348071000423",
			func(h *handset) { h.expect("You were linking"); h.choose("Start over"); h.expect("Log in to GTBank") },
			func(h *handset) {}},
	}
	for _, c := range cases {
		ref := "carry-" + c.phone[len(c.phone)-2:]
		_, inv := call(t, m, "POST", "/v1/links", testAPIKey,
			map[string]any{"phone": c.phone, "reference": ref, "institution": "5f2d08be60b92e2888287702"}, nil)
		dial := inv["dial"].(string)
		first := dialCode(t, m, c.phone, dial)
		first.expect("Log in to GTBank")
		first.send("user_good") // then the line drops, or the user leaves
		c.leave(first)

		second := dialCode(t, m, c.phone, dial)
		c.then(second)
		if !strings.Contains(second.screen, "Password") { // a resumed form asks only for what is missing
			second.send("user_good")
		}
		second.send("pass_good")
		second.expect("is linked")
		if d, ok := rcv.find("ACCOUNT_LINKED", func(d map[string]any) bool { return d["phone"] == c.phone }); !ok || d["reference"] != ref {
			t.Errorf("%s: ACCOUNT_LINKED = %v, want reference %s", c.name, d, ref)
		}
		if _, got := call(t, m, "GET", "/v1/links/"+inv["id"].(string), testAPIKey, nil, nil); got["status"] != "linked" {
			t.Errorf("%s: invitation = %v, want linked", c.name, got)
		}
	}
}
