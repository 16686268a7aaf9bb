package main

import (
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

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

func TestAnInvitationNamesTheCustomerOfMonoV2Sessions(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, func(c *Config) { c.Mono.API = "v2" })
	tests := []struct {
		name      string
		phone     string
		customer  map[string]any
		wantName  string
		wantEmail string
	}{
		{"both named", "+2348071000301", map[string]any{"name": "Ada Okafor", "email": "ada@example.com"}, "Ada Okafor", "ada@example.com"},
		{"the name only: the e-mail from the template", "+2348071000302", map[string]any{"name": "Tunde Bakare"}, "Tunde Bakare", "2348071000302@ussdlink.invalid"},
		{"none: both from the templates", "+2348071000303", nil, "USSD 2348071000303", "2348071000303@ussdlink.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"phone": tt.phone, "reference": "cust-" + tt.phone[len(tt.phone)-3:]}
			if tt.customer != nil {
				body["customer"] = tt.customer
			}
			status, inv := call(t, m, "POST", "/v1/links", testAPIKey, body, nil)
			if status != 201 {
				t.Fatalf("create = %d %v", status, inv)
			}
			if c, _ := inv["customer"].(map[string]any); tt.customer != nil && c["name"] != tt.customer["name"] {
				t.Errorf("invitation shows customer %v, want %v", inv["customer"], tt.customer)
			}
			h := dialCode(t, m, tt.phone, inv["dial"].(string))
			h.choose("GTBank")
			h.send("user_good")
			h.send("pass_good")
			h.expect("is linked")
			account := rcv.await("ACCOUNT_LINKED", func(d map[string]any) bool { return d["phone"] == tt.phone })["account_id"].(string)
			name, email, ok := m.sandboxMono.Customer(account)
			if !ok || name != tt.wantName || email != tt.wantEmail {
				t.Errorf("Mono's customer = %q %q (%v), want %q %q", name, email, ok, tt.wantName, tt.wantEmail)
			}
		})
	}
}

func TestAnInvitationWithAnUnusableCustomerIsRefusedAndNothingIsMade(t *testing.T) {
	m, _ := startPartnerGateway(t, newReceiver(t), nil)
	const phone = "+2348071000310"
	for name, customer := range map[string]map[string]any{
		"an address that is not one":       {"email": "ada at example"},
		"an address with a display name":   {"email": "Ada <ada@example.com>"},
		"a name with control characters":   {"name": "Ada\x00"},
		"a name longer than 128 letters":   {"name": strings.Repeat("a", 129)},
		"an address longer than 254 bytes": {"email": strings.Repeat("a", 250) + "@x.io"},
	} {
		t.Run(name, func(t *testing.T) {
			for path, body := range map[string]map[string]any{
				"/v1/links":  {"phone": phone, "reference": "bad-customer", "customer": customer},
				"/v1/reauth": {"phone": phone, "reference": "bad-customer", "account_id": "acct_1", "customer": customer},
			} {
				status, got := call(t, m, "POST", path, testAPIKey, body, nil)
				if e, _ := got["error"].(map[string]any); status != 400 || e["code"] != "invalid_customer" {
					t.Errorf("POST %s = %d %v, want 400 invalid_customer", path, status, got)
				}
			}
		})
	}
	_, list := call(t, m, "GET", "/v1/links?phone="+url.QueryEscape(phone), testAPIKey, nil, nil)
	if data := list["data"].([]any); len(data) != 0 {
		t.Errorf("refused invitations were stored: %v", data)
	}
}
