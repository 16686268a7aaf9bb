package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/link"
)

// The ways one Nigerian subscriber's number arrives: as most aggregators
// send it, in E.164, with the international prefix, and national.
var oneSubscriber = []string{"2348031000007", "+2348031000007", "002348031000007", "08031000007"}

const oneSubscriberE164 = "+2348031000007"

// edgeDo sends req to the gateway and returns its status and body.
func edgeDo(t *testing.T, m *Main, req *http.Request) (int, string) {
	t.Helper()
	req.URL, _ = url.Parse(m.URL() + req.URL.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// noSession fails the test when a session with id was stored.
func noSession(t *testing.T, m *Main, id string) {
	t.Helper()
	if s, err := storedSession(m, id); !errors.Is(err, link.ErrNoSession) {
		t.Errorf("session %s stored (%+v, %v), want none", id, s, err)
	}
}

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

func TestHostileDialledStringsAre400WithAReasonAndStoreNothing(t *testing.T) {
	m, _ := startGateway(t, nil)
	dialled := map[string]string{
		"control characters": "*384*123\x00#",
		"an escape sequence": "*384*\x1b[2J123#",
		"a newline":          "*384*123#\n",
		"invalid UTF-8":      "*384*\xff\xfe#",
		"oversized":          "*384*123*" + strings.Repeat("7", 200) + "#",
	}
	starts := map[string]func(session, dialled string) *http.Request{
		"hubtel": func(session, dialled string) *http.Request {
			return rawJSONRequest("/ussd/hubtel", map[string]any{"Type": "Initiation", "Mobile": "233244123456", "SessionId": session,
				"ServiceCode": "*384*123#", "Message": dialledMark, "Operator": "mtn", "Sequence": 1}, dialled)
		},
		"hollatags": func(session, dialled string) *http.Request {
			q := url.Values{"session_msisdn": {"2348030000001"}, "session_operation": {"begin"}, "session_msg": {dialled},
				"session_id": {session}, "session_from": {"*384*123#"}, "session_type": {"1"}, "session_mno": {"MTN"}}
			req, _ := http.NewRequest(http.MethodGet, "/ussd/hollatags?"+q.Encode(), nil)
			return req
		},
		"arkesel": func(session, dialled string) *http.Request {
			return rawJSONRequest("/ussd/arkesel", map[string]any{"sessionID": session, "userID": "u", "newSession": true,
				"msisdn": "233244123456", "userData": dialledMark, "network": "MTN"}, dialled)
		},
		"nalo": func(session, dialled string) *http.Request {
			return rawJSONRequest("/ussd/nalo", map[string]any{"USERID": "n", "MSISDN": "233244123456", "USERDATA": dialledMark,
				"MSGTYPE": true, "NETWORK": "MTN", "SESSIONID": session}, dialled)
		},
	}
	n := 0
	for dialect, start := range starts {
		for name, d := range dialled {
			t.Run(dialect+" "+name, func(t *testing.T) {
				n++
				session := fmt.Sprintf("hostile-%s-%d", dialect, n)
				status, body := edgeDo(t, m, start(session, d))
				if status != http.StatusBadRequest {
					t.Errorf("status %d (%q), want 400", status, body)
				}
				reason, ok := strings.CutPrefix(body, "bad request: ")
				if !ok || reason == "" || strings.ContainsAny(body, "\n\r") {
					t.Errorf("400 body %q, want one line: bad request: <reason>", body)
				}
				if strings.Contains(body, "384") || strings.Contains(body, "777") {
					t.Errorf("400 body %q echoes the input", body)
				}
				noSession(t, m, session)
			})
		}
	}
}

// dialledMark stands in a JSON body for a dialled string put in raw.
const dialledMark = "@DIALLED@"

// rawJSONRequest is jsonRequest with dialled in place of dialledMark as the
// network would send it: control characters escaped, other bytes as they
// are, invalid UTF-8 included (json.Marshal would replace it).
func rawJSONRequest(path string, v any, dialled string) *http.Request {
	b, _ := json.Marshal(v)
	var esc strings.Builder
	for i := 0; i < len(dialled); i++ {
		switch c := dialled[i]; {
		case c < 0x20 || c == '"' || c == '\\':
			fmt.Fprintf(&esc, "\\u%04x", c)
		default:
			esc.WriteByte(c)
		}
	}
	body := strings.Replace(string(b), dialledMark, esc.String(), 1)
	req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestEvery400ToAnAggregatorCarriesAReason(t *testing.T) {
	m, _ := startGateway(t, nil)
	form := func(v url.Values) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "/ussd/africastalking", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	cases := map[string]*http.Request{
		"a missing session id":    form(url.Values{"phoneNumber": {"+2348030000001"}, "text": {"p4ss"}}),
		"a control character":     form(url.Values{"sessionId": {"r-1"}, "phoneNumber": {"+2348030000001"}, "text": {"p4ss\x00"}}),
		"a body that is not JSON": jsonRequest("/ussd/hubtel", []int{1, 2}),
		"an unknown Hubtel Type":  jsonRequest("/ussd/hubtel", map[string]any{"Type": "p4ss", "Mobile": "233244123456", "SessionId": "r-2"}),
		"an unknown HollaTags op": func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "/ussd/hollatags?session_operation=p4ss", nil)
			return r
		}(),
		"a session end without one": form(url.Values{"status": {"Failed"}}),
	}
	cases["a session end without one"].URL.Path = "/ussd/africastalking/events"
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			status, body := edgeDo(t, m, req)
			reason, ok := strings.CutPrefix(body, "bad request: ")
			if status != http.StatusBadRequest || !ok || reason == "" || strings.ContainsAny(reason, "\n\r") {
				t.Errorf("%d %q, want 400 with a one-line reason", status, body)
			}
			if strings.Contains(body, "p4ss") {
				t.Errorf("400 body %q echoes the input", body)
			}
		})
	}
}

func TestAfricasTalkingWithoutAServiceCodeIsTheConfiguredOne(t *testing.T) {
	m, _ := startGateway(t, nil)
	for name, v := range map[string]url.Values{
		"empty":  {"sessionId": {"at-no-code-1"}, "serviceCode": {""}, "phoneNumber": {"+2348030000011"}, "networkCode": {"62130"}, "text": {""}},
		"absent": {"sessionId": {"at-no-code-2"}, "phoneNumber": {"+2348030000012"}, "networkCode": {"62130"}, "text": {""}},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "/ussd/africastalking", strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			status, body := edgeDo(t, m, req)
			if status != http.StatusOK || !strings.HasPrefix(body, "CON ") || !strings.Contains(body, "Choose bank") {
				t.Fatalf("%d %q, want the banks", status, body)
			}
			s, err := storedSession(m, v.Get("sessionId"))
			if err != nil {
				t.Fatal(err)
			}
			if s.ServiceCode != m.Config.USSD.ServiceCode {
				t.Errorf("session service code = %q, want the configured %q", s.ServiceCode, m.Config.USSD.ServiceCode)
			}
		})
	}
	t.Run("and the whole link goes through", func(t *testing.T) {
		h := newHandsetOn(t, m, atNoCodeWire{}, "+2348030000013")
		walkSteps(t, h, m, []step{{typed: "1"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true}})
	})
}

// atNoCodeWire is Africa's Talking from a test client that sends no
// serviceCode.
type atNoCodeWire struct{ atWire }

func (atNoCodeWire) request(h *handset) *http.Request {
	form := url.Values{"sessionId": {h.session}, "serviceCode": {""}, "phoneNumber": {h.phone}, "networkCode": {"62130"}, "text": {h.transcript}}
	req, _ := http.NewRequest(http.MethodPost, "/ussd/africastalking", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestASecondProxyHeaderLineNeitherPassesAllowIPsNorDodgesIPRate(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) {
		c.USSD.AllowIPs = []string{"10.20.0.0/16"}
		c.USSD.TrustedProxyHeader = "X-Forwarded-For"
		c.Security.IPRate = 3
	})
	at := func(session string, lines ...string) *http.Request {
		form := url.Values{"sessionId": {session}, "serviceCode": {"*384*123#"}, "phoneNumber": {"+2348070000001"}, "text": {""}}
		req, _ := http.NewRequest(http.MethodPost, "/ussd/africastalking", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, l := range lines {
			req.Header.Add("X-Forwarded-For", l)
		}
		return req
	}
	cases := []struct {
		name  string
		lines []string
		want  int
	}{
		{"an allowed address smuggled in a first line", []string{"10.20.1.1", "203.0.113.9"}, http.StatusForbidden},
		{"an allowed address smuggled in a first line with others", []string{"198.51.100.7, 10.20.1.1", "203.0.113.9"}, http.StatusForbidden},
		{"an allowed address in the middle line", []string{"203.0.113.1", "10.20.1.1", "203.0.113.9"}, http.StatusForbidden},
		{"an empty last line", []string{"10.20.1.1", ""}, http.StatusForbidden},
		{"the proxy's own line is believed", []string{"203.0.113.9", "10.20.1.1"}, http.StatusOK},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			session := fmt.Sprintf("xff-%d", i)
			if status, body := edgeDo(t, m, at(session, tc.lines...)); status != tc.want {
				t.Fatalf("status %d (%q), want %d", status, body, tc.want)
			}
			if tc.want != http.StatusOK {
				noSession(t, m, session)
			}
		})
	}
	t.Run("ip-rate counts the proxy's address, whatever a first line says", func(t *testing.T) {
		var codes []int
		for i := range 5 {
			req, _ := http.NewRequest(http.MethodGet, "/v1/links/none", nil)
			req.Header.Add("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			req.Header.Add("X-Forwarded-For", "203.0.113.50")
			status, _ := edgeDo(t, m, req)
			codes = append(codes, status)
		}
		if codes[3] != http.StatusTooManyRequests || codes[4] != http.StatusTooManyRequests {
			t.Errorf("statuses = %v, want 429 from the fourth on", codes)
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
