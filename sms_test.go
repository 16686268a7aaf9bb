package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// ussdAuthed dials with the callback token the gateway requires.
type ussdAuthed struct{ wire }

func (w ussdAuthed) request(h *handset) *http.Request {
	req := w.wire.request(h)
	req.Header.Set("X-Callback-Token", "cb-token")
	return req
}

func TestReceiptIsTextedAfterAUSSDLink(t *testing.T) {
	m := startSMSGateway(t, nil)
	h := newHandsetOn(t, m, ussdAuthed{atWire{}}, "+2348081000001")
	walkSteps(t, h, m, []step{{typed: "1"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true}})
	got := inboxWith(t, m, "+2348081000001", "is now linked to Kudi Loans")
	if !regexp.MustCompile(`GTBank account \*\*\*\*\d{4}`).MatchString(got) || len(got) > 160 {
		t.Errorf("receipt = %q", got)
	}
}

func TestLateLoginIsTextedAfterADroppedSession(t *testing.T) {
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_late", SlowDelay: 500 * time.Millisecond})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	m := startSMSGateway(t, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = srv.URL, "test_sk_late", "app"
		c.USSD.HopBudget = Duration{200 * time.Millisecond}
	})
	const phone = "+2348081000002"
	h := newHandsetOn(t, m, ussdAuthed{atWire{}}, phone)
	h.dial()
	h.send("1")
	h.send("user_slow")
	h.send("pass_good")
	h.expect("still answering")
	// The network drops the session before the bank answers.
	form := url.Values{"sessionId": {h.session}, "phoneNumber": {phone}, "status": {"Incomplete"}, "serviceCode": {"*384*123#"}}
	req, _ := http.NewRequest("POST", m.URL()+"/ussd/africastalking/events?token=cb-token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := inboxWith(t, m, phone, "Your bank answered")
	if !strings.Contains(got, "is now linked") {
		t.Errorf("late outcome = %q", got)
	}
	settled(t, m)
	if n := len(m.smsSandbox.Inbox(phone)); n != 1 {
		t.Errorf("texts = %d, want the one late outcome (no separate receipt)", n)
	}
}

func TestInboundTextRoutes(t *testing.T) {
	m := startSMSGateway(t, nil)
	t.Run("Twilio with a valid signature gets a TwiML reply", func(t *testing.T) {
		status, twiml := textTwilio(t, m, "+2348081000010", "SM0001", "STATUS", true)
		if status != 200 || !strings.Contains(twiml, "<Response><Message>") || !strings.Contains(twiml, "No bank account is linked") {
			t.Fatalf("status %d, TwiML %s", status, twiml)
		}
	})
	t.Run("Twilio with a wrong signature is refused", func(t *testing.T) {
		if status, _ := textTwilio(t, m, "+2348081000010", "SM0002", "STATUS", false); status != 403 {
			t.Fatalf("status %d, want 403", status)
		}
	})
	t.Run("a Twilio message delivered again is dropped", func(t *testing.T) {
		textTwilio(t, m, "+2348081000011", "SM0003", "LINK", true)
		status, twiml := textTwilio(t, m, "+2348081000011", "SM0003", "LINK", true)
		if status != 200 || strings.Contains(twiml, "<Message>") {
			t.Fatalf("repeat: status %d, TwiML %s; want an empty Response", status, twiml)
		}
	})
	t.Run("Termii with a valid signature is answered by text", func(t *testing.T) {
		if status := textTermii(t, m, "+2348081000012", "tm-1", "STATUS", true); status != 200 {
			t.Fatalf("status %d", status)
		}
		inboxWith(t, m, "+2348081000012", "No bank account is linked")
	})
	t.Run("Termii with a wrong signature is refused and changes nothing", func(t *testing.T) {
		if status := textTermii(t, m, "+2348081000013", "tm-2", "STOP", false); status != 401 {
			t.Fatalf("status %d, want 401", status)
		}
		if out, _ := m.db.OptedOut(t.Context(), "+2348081000013"); out {
			t.Errorf("an unsigned STOP opted the phone out")
		}
	})
	t.Run("a Termii message delivered again is answered once", func(t *testing.T) {
		textTermii(t, m, "+2348081000014", "tm-3", "STATUS", true)
		textTermii(t, m, "+2348081000014", "tm-3", "STATUS", true)
		inboxWith(t, m, "+2348081000014", "No bank account")
		settled(t, m)
		if n := len(m.smsSandbox.Inbox("+2348081000014")); n != 1 {
			t.Errorf("replies = %d, want 1", n)
		}
	})
	t.Run("Africa's Talking needs the callback token and drops repeats", func(t *testing.T) {
		if status := textAT(t, m, "+2348081000015", "at-1", "STATUS", "wrong"); status != 401 {
			t.Fatalf("without the token: %d, want 401", status)
		}
		for range 2 {
			if status := textAT(t, m, "+2348081000015", "at-2", "STATUS", "cb-token"); status != 200 {
				t.Fatalf("status %d", status)
			}
		}
		inboxWith(t, m, "+2348081000015", "No bank account")
		settled(t, m)
		if n := len(m.smsSandbox.Inbox("+2348081000015")); n != 1 {
			t.Errorf("replies = %d, want 1", n)
		}
	})
}

func TestTextConversationHandsOverToUSSD(t *testing.T) {
	m := startSMSGateway(t, nil)
	const phone = "+2348081000020"
	seq := 0
	text := func(body string) string {
		seq++
		before := len(m.smsSandbox.Inbox(phone))
		if status := textTermii(t, m, phone, fmt.Sprintf("conv-%d", seq), body, true); status != 200 {
			t.Fatalf("status %d", status)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if in := m.smsSandbox.Inbox(phone); len(in) > before {
				return in[len(in)-1].Text
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no reply to %q", body)
		return ""
	}
	if got := text("link"); !strings.Contains(got, "Choose bank") {
		t.Fatalf("LINK = %q, want the banks", got)
	}
	got := text("1")
	code := regexp.MustCompile(`\*384\*123\*\d{4}#`).FindString(got)
	if code == "" || !strings.Contains(got, "Never send passwords by text") {
		t.Fatalf("after choosing a bank = %q, want the USSD code to dial", got)
	}
	if got := text("user_good"); !strings.Contains(got, "Text LINK") {
		t.Errorf("a text after the hand-over = %q, want the help (the conversation ended)", got)
	}
	h := newHandsetOn(t, m, ussdAuthed{atDeepWire{serviceCode: code}}, phone)
	h.dial()
	h.expect("Log in to GTBank")
	h.send("user_good")
	h.send("pass_good")
	h.expect("is linked")
	inboxWith(t, m, phone, "is now linked to Kudi Loans")
	if got := text("STATUS"); !strings.Contains(got, "Linked: GTBank ****") {
		t.Errorf("STATUS = %q", got)
	}
	if got := text("CANCEL"); !strings.Contains(got, "Cancelled") {
		t.Errorf("CANCEL = %q", got)
	}
}

func TestTextConversationCanAskCredentialsWhenAllowed(t *testing.T) {
	m := startSMSGateway(t, func(c *Config) { c.SMS.AllowCredentials = true })
	const phone = "+2348081000021"
	for i, body := range []string{"LINK", "1", "user_good", "pass_good"} {
		textTermii(t, m, phone, fmt.Sprintf("cred-%d", i), body, true)
	}
	inboxWith(t, m, phone, "is linked")
}

func TestTextConversationNeverAsksForSecrets(t *testing.T) {
	m, logs := startSMSGatewayLogs(t, func(c *Config) { c.Partner.APIKeys = []string{testAPIKey} })
	t.Run("a USSD link left half-typed is not continued by text", func(t *testing.T) {
		const phone = "+2348081000050"
		h := newHandsetOn(t, m, ussdAuthed{atWire{}}, phone)
		h.dial()
		h.send("1")
		h.send("user_good") // the password prompt is next; the user hangs up
		if got := textReply(t, m, phone, "sec-1", "LINK"); !strings.Contains(got, "Choose bank") || strings.Contains(got, "Continue") {
			t.Fatalf("LINK after a dropped USSD link = %q, want the banks and no offer to continue", got)
		}
	})
	t.Run("a reauthorisation is not done by text", func(t *testing.T) {
		const phone = "+2348081000051"
		h := newHandsetOn(t, m, ussdAuthed{atWire{}}, phone)
		walkSteps(t, h, m, []step{{typed: "1"}, {typed: "user_otp"}, {typed: "pass_good"}, {typed: "123456", want: []string{"is linked"}, end: true}})
		links, _ := m.db.LinksByPhone(t.Context(), phone)
		if len(links) != 1 {
			t.Fatalf("links = %v", links)
		}
		call(t, m, "POST", "/v1/reauth", testAPIKey, map[string]any{"account_id": links[0].AccountID, "phone": phone}, nil)
		got := textReply(t, m, phone, "sec-2", "LINK")
		if strings.Contains(got, "OTP") || !strings.Contains(got, "Choose bank") {
			t.Fatalf("LINK with a reauthorisation pending = %q, want the banks, no OTP prompt", got)
		}
	})
	t.Run("what was typed is never repeated back", func(t *testing.T) {
		const phone = "+2348081000052"
		textReply(t, m, phone, "sec-3", "LINK")
		got := textReply(t, m, phone, "sec-4", "Hunter2pass")
		if strings.Contains(got, "Hunter2pass") || strings.Contains(strings.ToUpper(got), "HUNTER2PASS") {
			t.Fatalf("reply %q repeats what was typed", got)
		}
		// The sandbox provider logs every text it sends: none carries it.
		if !strings.Contains(logs.String(), "sandbox sms sent") {
			t.Fatalf("the sandbox provider's log lines were not captured")
		}
		if strings.Contains(strings.ToUpper(logs.String()), "HUNTER2PASS") {
			t.Errorf("logs carry what was typed")
		}
	})
}

// textReply sends one text through Termii and returns the reply texted back.
func textReply(t *testing.T, m *Main, phone, id, body string) string {
	t.Helper()
	before := len(m.smsSandbox.Inbox(phone))
	if status := textTermii(t, m, phone, id, body, true); status != 200 {
		t.Fatalf("status %d", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if in := m.smsSandbox.Inbox(phone); len(in) > before {
			return in[len(in)-1].Text
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no reply to %q", body)
	return ""
}

func TestOptOutStopsNotificationsUntilStart(t *testing.T) {
	m := startSMSGateway(t, nil)
	const phone = "+2348081000030"
	textAT(t, m, phone, "opt-1", "stop", "cb-token")
	inboxWith(t, m, phone, "no more messages")
	h := newHandsetOn(t, m, ussdAuthed{atWire{}}, phone)
	walkSteps(t, h, m, []step{{typed: "1"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true}})
	settled(t, m)
	for _, msg := range m.smsSandbox.Inbox(phone) {
		if strings.Contains(msg.Text, "is now linked") {
			t.Fatalf("an opted-out phone got a receipt: %q", msg.Text)
		}
	}
	textAT(t, m, phone, "opt-2", "START", "cb-token")
	inboxWith(t, m, phone, "Welcome back")
	h = newHandsetOn(t, m, ussdAuthed{atWire{}}, phone)
	walkSteps(t, h, m, []step{{typed: "1"}, {typed: "user_multi"}, {typed: "pass_good"}, {typed: "1", want: []string{"is linked"}, end: true}})
	inboxWith(t, m, phone, "is now linked")
}

func TestInvitationsAndNudgesAreTexted(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, func(c *Config) { c.SMS.PartnerName = "Kudi Loans" })
	const phone = "+2348081000040"
	status, inv := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": phone, "reference": "r-1", "notify": "sms"}, nil)
	if status != 201 {
		t.Fatalf("create = %d %v", status, inv)
	}
	got := inboxWith(t, m, phone, "Kudi Loans invites you")
	if !strings.Contains(got, inv["dial"].(string)) {
		t.Errorf("invitation %q lacks the code %s", got, inv["dial"])
	}
	// Mono asks for a reauthorisation: the customer is nudged with a code.
	walk(t, m, phone, "1", "user_good", "pass_good").expect("is linked")
	link, err := m.db.LinksByPhone(t.Context(), phone)
	if err != nil || len(link) == 0 {
		t.Fatalf("links = %v, %v", link, err)
	}
	if err := m.sandboxMono.RequireReauth(link[0].AccountID); err != nil {
		t.Fatal(err)
	}
	nudge := inboxWith(t, m, phone, "log in again")
	code := regexp.MustCompile(`\*384\*123\*\d{4}#`).FindString(nudge)
	if code == "" {
		t.Fatalf("nudge %q has no code", nudge)
	}
	// Mono asks again before the customer acted: the same code is sent.
	if err := m.sandboxMono.RequireReauth(link[0].AccountID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var nudges []string
	for time.Now().Before(deadline) && len(nudges) < 2 {
		nudges = nudges[:0]
		for _, msg := range m.smsSandbox.Inbox(phone) {
			if strings.Contains(msg.Text, "log in again") {
				nudges = append(nudges, msg.Text)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(nudges) != 2 || !strings.Contains(nudges[1], code) {
		t.Fatalf("second nudge = %v, want the same code %s", nudges, code)
	}
	h := dialCode(t, m, phone, code)
	h.expect("re-authorised")
}

func TestInvitationTextsShowLocalTime(t *testing.T) {
	cases := []struct {
		name     string
		timezone string // empty: the default
		want     string
	}{
		{"the default is Lagos time", "", "before 3 Jan 15:04 WAT"},
		{"a configured zone is used", "Africa/Nairobi", "before 3 Jan 17:04 EAT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{now: time.Date(2026, 1, 2, 14, 4, 0, 0, time.UTC)}
			m, _ := startMain(t, func(m *Main) {
				m.Now = clock.Now
				m.Config.Partner.APIKeys = []string{testAPIKey}
				if tc.timezone != "" {
					m.Config.SMS.Timezone = tc.timezone
				}
			})
			const phone = "+2348081000141"
			if a := postLink(t, m, "", map[string]any{"phone": phone, "reference": "tz", "notify": "sms"}); a.status != 201 {
				t.Fatalf("create = %d %v", a.status, a.body)
			}
			inboxWith(t, m, phone, tc.want)
		})
	}
}
