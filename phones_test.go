package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ways one Nigerian subscriber's number arrives: as most aggregators
// send it, in E.164, with the international prefix, and national.
var oneSubscriber = []string{"2348031000007", "+2348031000007", "002348031000007", "08031000007"}

const oneSubscriberE164 = "+2348031000007"

func TestOnePhoneWrittenFourWaysSharesOneRateLimit(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) { c.Security.PhoneRate = len(oneSubscriber) })
	for _, p := range oneSubscriber {
		h := newHandset(t, m, p)
		h.dial()
		h.expect("Choose bank")
		s, err := storedSession(m, h.session)
		if err != nil {
			t.Fatal(err)
		}
		if s.Phone != oneSubscriberE164 {
			t.Errorf("dialled as %q, the session's phone is %q, want %q", p, s.Phone, oneSubscriberE164)
		}
	}
	for _, p := range oneSubscriber {
		h := newHandset(t, m, p)
		h.dial()
		h.expect("Too many requests")
		noSession(t, m, h.session)
	}
}

func TestOnePhoneWrittenFourWaysSharesOneLockout(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) { c.Security.MaxLoginFailures = len(oneSubscriber) - 1 })
	for i, p := range oneSubscriber[:len(oneSubscriber)-1] {
		h := newHandset(t, m, p)
		h.dial()
		if h.option("Start over") != "" { // the previous refusal left a link to resume
			h.choose("Start over")
		}
		h.send("1")
		h.send("user_good")
		h.send(fmt.Sprintf("bad-%d", i))
		if strings.Contains(h.screen, "paused") {
			t.Fatalf("the phone was paused after %d refusals, want %d", i+1, len(oneSubscriber)-1)
		}
	}
	before := m.sandboxCalls()
	h := walk(t, m, oneSubscriber[len(oneSubscriber)-1])
	h.expect("paused")
	if !h.ended {
		t.Errorf("a paused phone, written another way, was offered a screen: %s", h.screen)
	}
	if after := m.sandboxCalls(); after != before {
		t.Errorf("a paused phone, written another way, reached Mono: %d calls before, %d after", before, after)
	}
}

func TestAPhoneThatIsNotOneGetsAPoliteEndAndNoSession(t *testing.T) {
	m, _ := startGateway(t, nil)
	for _, w := range wires {
		for _, p := range []string{"+2340000000000", "0244123456", "12345"} {
			t.Run(w.name()+" "+p, func(t *testing.T) {
				h := newHandsetOn(t, m, w, p)
				h.dial()
				if !h.ended {
					t.Errorf("the session goes on: %s", h.screen)
				}
				h.expect("cannot read your phone number")
				noSession(t, m, h.session)
			})
		}
	}
	t.Run("Africa's Talking session end", func(t *testing.T) {
		form := url.Values{"sessionId": {"ev-bad-phone"}, "phoneNumber": {"+2340000000000"}, "status": {"Failed"}}
		req, _ := http.NewRequest(http.MethodPost, "/ussd/africastalking/events", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, body := edgeDo(t, m, req); status != http.StatusBadRequest || !strings.HasPrefix(body, "bad request: ") {
			t.Errorf("status %d %q, want 400 with a reason", status, body)
		}
	})
}

func TestTheCountryIsAKnownOneAndReadsNationalNumbers(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"XX", "Nigeria", "234", ""} {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf("[ussd]\ncountry = %q\n", bad)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(p, true); err == nil || !strings.Contains(err.Error(), "ussd.country") {
			t.Errorf("country %q: err = %v, want a refusal naming ussd.country", bad, err)
		}
	}
	m, _ := startGateway(t, func(c *Config) { c.USSD.Country = "GH" })
	h := newHandset(t, m, "0244123456")
	h.dial()
	h.expect("Choose bank")
	if s, err := storedSession(m, h.session); err != nil || s.Phone != "+233244123456" {
		t.Errorf("a Ghana national number in a GH gateway: session %+v, %v; want +233244123456", s, err)
	}
}

func TestAnInvitationForANationalNumberIsFoundWhenTheE164PhoneDials(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, nil)
	status, inv := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": "08031000007", "reference": "agent-national"}, nil)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/links with a national phone: %d %v", status, inv)
	}
	if inv["phone"] != oneSubscriberE164 {
		t.Errorf("invitation phone = %v, want %s", inv["phone"], oneSubscriberE164)
	}
	for _, p := range oneSubscriber {
		status, list := call(t, m, "GET", "/v1/links?phone="+url.QueryEscape(p), testAPIKey, nil, nil)
		data, _ := list["data"].([]any)
		if status != http.StatusOK || len(data) != 1 {
			t.Errorf("GET /v1/links?phone=%s: %d, %d invitations; want 200 and 1", p, status, len(data))
		}
	}
	h := walk(t, m, oneSubscriberE164, "1", "user_good", "pass_good")
	h.expect("is linked")
	if d := rcv.await("ACCOUNT_LINKED", nil); d["reference"] != "agent-national" {
		t.Errorf("ACCOUNT_LINKED reference = %v, want agent-national", d["reference"])
	}
}

func TestThePartnerAPIRefusesAPhoneThatIsNotOne(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, nil)
	for _, p := range []string{"+2340000000000", "0244123456", "12345678", "+234803CALLME"} {
		status, out := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": p, "reference": "r-1"}, nil)
		if code := errorCode(out); status != http.StatusBadRequest || code != "invalid_phone" {
			t.Errorf("POST /v1/links phone %q: %d %s, want 400 invalid_phone", p, status, code)
		}
		status, out = call(t, m, "POST", "/v1/reauth", testAPIKey, map[string]any{"phone": p, "account_id": "acc-1"}, nil)
		if code := errorCode(out); status != http.StatusBadRequest || code != "invalid_phone" {
			t.Errorf("POST /v1/reauth phone %q: %d %s, want 400 invalid_phone", p, status, code)
		}
		status, out = call(t, m, "GET", "/v1/links?phone="+url.QueryEscape(p), testAPIKey, nil, nil)
		if code := errorCode(out); status != http.StatusBadRequest || code != "invalid_phone" {
			t.Errorf("GET /v1/links?phone=%s: %d %s, want 400 invalid_phone", p, status, code)
		}
	}
}

// errorCode is the code of an API error answer.
func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestAnInboundTextFromAPhoneThatIsNotOneIsRefusedAndNothingIsStored(t *testing.T) {
	m := startSMSGateway(t, nil)
	const bad = "+2340000000000"
	if status := textAT(t, m, bad, "at-bad", "STOP", "cb-token"); status != http.StatusBadRequest {
		t.Errorf("Africa's Talking: status %d, want 400", status)
	}
	if status := textTermii(t, m, bad, "tm-bad", "STOP", true); status != http.StatusBadRequest {
		t.Errorf("Termii: status %d, want 400", status)
	}
	if status, _ := textTwilio(t, m, bad, "SMbad", "STOP", true); status != http.StatusBadRequest {
		t.Errorf("Twilio: status %d, want 400", status)
	}
	if out, _ := m.db.OptedOut(t.Context(), bad); out {
		t.Errorf("an invalid sender was opted out")
	}
	// Nothing was recorded under the message id: a corrected delivery with
	// it is taken, and a national sender is the E.164 phone.
	if status := textAT(t, m, "08081000099", "at-bad", "STATUS", "cb-token"); status != http.StatusOK {
		t.Fatalf("corrected delivery: status %d, want 200", status)
	}
	inboxWith(t, m, "+2348081000099", "No bank account is linked")
	if status := textTermii(t, m, "08081000099", "tm-bad", "STOP", true); status != http.StatusOK {
		t.Fatalf("corrected Termii delivery: status %d, want 200", status)
	}
	if out, _ := m.db.OptedOut(t.Context(), "+2348081000099"); !out {
		t.Errorf("a national sender's STOP did not opt out its E.164 phone")
	}
}
