package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// syncBuffer collects log output from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startGateway runs the real wiring on a temp dir and a free port, with the
// embedded sandbox, and stops it when the test ends.
func startGateway(t *testing.T, configure func(*Config)) (*Main, *syncBuffer) {
	t.Helper()
	return startMain(t, func(m *Main) {
		if configure != nil {
			configure(&m.Config)
		}
	})
}

// startMain is startGateway with access to the whole Main before it runs.
func startMain(t *testing.T, prepare func(*Main)) (*Main, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	m := NewMain(logs)
	m.Config.HTTP.Addr = "127.0.0.1:0"
	m.Config.Store.Path = filepath.Join(t.TempDir(), "data", "ussdlink.db")
	m.Config.Log = LogConfig{Level: "debug", Format: "json", Phone: "masked"}
	prepare(m)
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m, logs
}

// handset dials the gateway as a phone would, through one aggregator's
// dialect (its wire), keeping what that aggregator keeps: the cumulative
// transcript, or the latest input and a hop number.
type handset struct {
	t          *testing.T
	url        string
	wire       wire
	phone      string
	session    string
	transcript string
	input      string // this hop's input
	inputs     int    // inputs typed so far
	hops       int
	limit      int
	screen     string // the last screen's text, after CON/END
	ended      bool
}

var sessionSeq struct {
	sync.Mutex
	n int
}

func newHandset(t *testing.T, m *Main, phone string) *handset {
	return newHandsetOn(t, m, atWire{}, phone)
}

func newHandsetOn(t *testing.T, m *Main, w wire, phone string) *handset {
	sessionSeq.Lock()
	sessionSeq.n++
	id := fmt.Sprintf("test_%s_%d_%d", w.name(), time.Now().UnixNano(), sessionSeq.n)
	sessionSeq.Unlock()
	return &handset{t: t, url: m.URL(), wire: w, phone: phone, session: id, limit: m.Config.USSD.ScreenLimit}
}

// post sends the current hop (again, when called twice) and records the
// screen.
func (h *handset) post() string {
	h.t.Helper()
	req := h.wire.request(h)
	req.URL, _ = url.Parse(h.url + req.URL.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("hop %d: %v", h.hops, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("hop %d: status %d: %s", h.hops, resp.StatusCode, body)
	}
	text, end, err := h.wire.reply(body)
	if err != nil {
		h.t.Fatalf("hop %d: %v", h.hops, err)
	}
	if n := gsm.Units(text); n > h.limit {
		h.t.Errorf("hop %d: screen is %d units, over the %d budget:\n%s", h.hops, n, h.limit, text)
	}
	h.ended = end
	h.screen = text
	h.hops++
	return text
}

// dial starts the session.
func (h *handset) dial() string {
	h.t.Helper()
	return h.post()
}

// send types one input.
func (h *handset) send(input string) string {
	h.t.Helper()
	if h.ended {
		h.t.Fatalf("send %q after the session ended", input)
	}
	if h.inputs == 0 {
		h.transcript = input
	} else {
		h.transcript += "*" + input
	}
	h.input = input
	h.inputs++
	return h.post()
}

// A wire is one aggregator's side of the conversation: it builds a hop's
// request (path and query relative to the gateway) and reads the reply.
type wire interface {
	name() string
	request(h *handset) *http.Request
	reply(body []byte) (text string, end bool, err error)
}

// wires lists every dialect, for tests that must hold in each.
var wires = []wire{atWire{}, hubtelWire{}, arkeselWire{}, naloWire{}, hollaWire{}}

type atWire struct{}

func (atWire) name() string { return "africastalking" }
func (atWire) request(h *handset) *http.Request {
	form := url.Values{"sessionId": {h.session}, "serviceCode": {"*384*123#"}, "phoneNumber": {h.phone}, "networkCode": {"62130"}, "text": {h.transcript}}
	req, _ := http.NewRequest(http.MethodPost, "/ussd/africastalking", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
func (atWire) reply(body []byte) (string, bool, error) {
	kind, text, ok := strings.Cut(string(body), " ")
	if !ok || (kind != "CON" && kind != "END") {
		return "", false, fmt.Errorf("reply %q does not start with CON or END", body)
	}
	return text, kind == "END", nil
}

// jsonRequest posts v as JSON to path.
func jsonRequest(path string, v any) *http.Request {
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return req
}

type hubtelWire struct{}

func (hubtelWire) name() string { return "hubtel" }
func (hubtelWire) request(h *handset) *http.Request {
	body := map[string]any{"Type": "Response", "Mobile": strings.TrimPrefix(h.phone, "+"), "SessionId": h.session,
		"ServiceCode": "384*123", "Message": h.input, "Operator": "mtn", "Sequence": h.inputs + 1, "ClientState": ""}
	if h.inputs == 0 {
		body["Type"], body["Message"] = "Initiation", "*384*123#"
	}
	return jsonRequest("/ussd/hubtel", body)
}
func (hubtelWire) reply(body []byte) (string, bool, error) {
	var r struct{ Type, Message, ClientState string }
	if err := json.Unmarshal(body, &r); err != nil || (r.Type != "Response" && r.Type != "Release") {
		return "", false, fmt.Errorf("hubtel reply %q", body)
	}
	return r.Message, r.Type == "Release", nil
}

type arkeselWire struct{}

func (arkeselWire) name() string { return "arkesel" }
func (arkeselWire) request(h *handset) *http.Request {
	data := h.input
	if h.inputs == 0 {
		data = "*384*123#"
	}
	return jsonRequest("/ussd/arkesel", map[string]any{"sessionID": h.session, "userID": "ark-user", "newSession": h.inputs == 0,
		"msisdn": strings.TrimPrefix(h.phone, "+"), "userData": data, "network": "MTN"})
}
func (arkeselWire) reply(body []byte) (string, bool, error) {
	var r struct {
		SessionID, UserID, Msisdn, Message string
		ContinueSession                    bool
	}
	if err := json.Unmarshal(body, &r); err != nil || r.UserID != "ark-user" {
		return "", false, fmt.Errorf("arkesel reply %q", body)
	}
	return r.Message, !r.ContinueSession, nil
}

type naloWire struct{}

func (naloWire) name() string { return "nalo" }
func (naloWire) request(h *handset) *http.Request {
	data := h.input
	if h.inputs == 0 {
		data = "*384*123#"
	}
	return jsonRequest("/ussd/nalo", map[string]any{"USERID": "nalo-int", "MSISDN": strings.TrimPrefix(h.phone, "+"),
		"USERDATA": data, "MSGTYPE": h.inputs == 0, "NETWORK": "MTN", "SESSIONID": h.session})
}
func (naloWire) reply(body []byte) (string, bool, error) {
	var r struct {
		USERID, MSISDN, MSG string
		MSGTYPE             bool
	}
	if err := json.Unmarshal(body, &r); err != nil || r.USERID != "nalo-int" {
		return "", false, fmt.Errorf("nalo reply %q", body)
	}
	return r.MSG, !r.MSGTYPE, nil
}

type hollaWire struct{}

func (hollaWire) name() string { return "hollatags" }
func (hollaWire) request(h *handset) *http.Request {
	op, msg := "continue", h.input
	if h.inputs == 0 {
		op, msg = "begin", "*384*123#"
	}
	q := url.Values{"session_msisdn": {strings.TrimPrefix(h.phone, "+")}, "session_operation": {op}, "session_msg": {msg},
		"session_id": {h.session}, "session_from": {"*384*123#"}, "session_type": {"1"}, "session_mno": {"MTN"}}
	req, _ := http.NewRequest(http.MethodGet, "/ussd/hollatags?"+q.Encode(), nil)
	return req
}
func (hollaWire) reply(body []byte) (string, bool, error) {
	var r struct {
		Operation string `json:"session_operation"`
		Type      int    `json:"session_type"`
		SessionID string `json:"session_id"`
		Msg       string `json:"session_msg"`
	}
	if err := json.Unmarshal(body, &r); err != nil || (r.Operation == "end") != (r.Type == 4) {
		return "", false, fmt.Errorf("hollatags reply %q", body)
	}
	return r.Msg, r.Operation == "end", nil
}

var optionLine = regexp.MustCompile(`^(\d+)\. (.*)$`)

// option returns the number of the option on screen whose label contains
// label, or "" when none does.
func (h *handset) option(label string) string {
	for _, line := range strings.Split(h.screen, "\n") {
		if m := optionLine.FindStringSubmatch(line); m != nil && strings.Contains(m[2], label) {
			return m[1]
		}
	}
	return ""
}

// choose picks the option labelled label on the current screen.
func (h *handset) choose(label string) string {
	h.t.Helper()
	n := h.option(label)
	if n == "" {
		h.t.Fatalf("no option %q on screen:\n%s", label, h.screen)
	}
	return h.send(n)
}

// expect checks that the current screen contains each of want.
func (h *handset) expect(want ...string) {
	h.t.Helper()
	for _, w := range want {
		if !strings.Contains(h.screen, w) {
			h.t.Fatalf("screen lacks %q:\n%s", w, h.screen)
		}
	}
}

// A step is one thing the handset does in a walk: choose an option by its
// label, or type a value; then what the next screen must show.
type step struct {
	choose string
	typed  string
	want   []string
	end    bool
}

func TestLinkFlowsEndToEnd(t *testing.T) {
	m, logs := startGateway(t, nil)
	cases := []struct {
		name    string
		phone   string
		steps   []step
		masked  string
		secrets []string
	}{
		{
			name:  "direct success links on the first login",
			phone: "+2348030000001",
			steps: []step{
				{choose: "GTBank", want: []string{"Log in to GTBank", "UserID or Account Number"}},
				{typed: "user_good", want: []string{"Password"}},
				{typed: "pass_good", want: []string{"GTBank", "****"}, end: true},
			},
			secrets: []string{"pass_good"},
		},
		{
			name:  "several accounts ask which one to link",
			phone: "+2348030000002",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_multi"},
				{typed: "pass_good", want: []string{"Choose the account", "NGN", "USD", "****"}},
				{choose: "USD", want: []string{"GTBank", "****"}, end: true},
			},
			secrets: []string{"pass_good"},
		},
		{
			name:  "security question is asked and answered",
			phone: "+2348030000003",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_question"},
				{typed: "pass_good", want: []string{"Security Question", "Which city were you born in?"}},
				{typed: "lagos", want: []string{"is linked"}, end: true},
			},
			secrets: []string{"pass_good", "lagos"},
		},
		{
			name:  "OTP is asked and accepted",
			phone: "+2348030000004",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_otp"},
				{typed: "pass_good", want: []string{"OTP"}},
				{typed: "123456", want: []string{"is linked"}, end: true},
			},
			secrets: []string{"pass_good", "123456"},
		},
		{
			name:  "OTP then account choice are both handled",
			phone: "+2348030000005",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_mfa"},
				{typed: "pass_good", want: []string{"OTP"}},
				{typed: "123456", want: []string{"Choose the account"}},
				{choose: "****", want: []string{"is linked"}, end: true},
			},
			secrets: []string{"pass_good", "123456"},
		},
		{
			name:  "a three-field form asks each field in turn",
			phone: "+2348030000006",
			steps: []step{
				{typed: "stanbic", want: []string{"Stanbic", "UserID"}}, // the one match opens
				{typed: "user_good", want: []string{"Password"}},
				{typed: "pass_good", want: []string{"PIN"}},
				{typed: "1234", want: []string{"Stanbic IBTC", "is linked"}, end: true},
			},
			secrets: []string{"pass_good"},
		},
		{
			name:  "a wrong password can be corrected in the same session",
			phone: "+2348030000007",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_good"},
				{typed: "wrong-pass", want: []string{"Login failed", "UserID or Account Number"}},
				{typed: "user_good", want: []string{"Password"}},
				{typed: "pass_good", want: []string{"is linked"}, end: true},
			},
			secrets: []string{"pass_good", "wrong-pass"},
		},
		{
			name:  "a password containing star hash and space reaches the bank intact",
			phone: "+2348030000008",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_star"},
				{typed: "p*ss #good", want: []string{"is linked"}, end: true},
			},
			secrets: []string{"p*ss #good"},
		},
		{
			name:  "a bank on the second page is reached with 98",
			phone: "+2348030000009",
			steps: []step{
				{typed: "98", want: []string{"0 Back"}},
				{choose: "Union Bank", want: []string{"Union Bank"}},
				{typed: "user_good"},
				{typed: "pass_good", want: []string{"Union Bank", "is linked"}, end: true},
			},
		},
		{
			name:  "typed letters filter the bank list",
			phone: "+2348030000010",
			steps: []step{
				{typed: "gt", want: []string{"Banks matching your search", "GTBank Business"}},
				{typed: "0", want: []string{"Choose bank", "1. GTBank"}},
				{typed: "zen", want: []string{"Zenith Bank", "Internet Banking", "Mobile Banking"}}, // the one match opens
				{choose: "Mobile", want: []string{"Phone"}},
				{typed: "user_good", want: []string{"PIN"}},
				{typed: "1234", want: []string{"Zenith Bank", "is linked"}, end: true},
			},
		},
	}
	for wi, w := range wires {
		for _, tc := range cases {
			t.Run(w.name()+"/"+tc.name, func(t *testing.T) {
				phone := fmt.Sprintf("%s%d", tc.phone[:len(tc.phone)-3], wi) + tc.phone[len(tc.phone)-2:]
				h := newHandsetOn(t, m, w, phone)
				walkSteps(t, h, m, tc.steps)
			})
		}
	}
	out := logs.String()
	for _, tc := range cases {
		for _, s := range tc.secrets {
			if strings.Contains(out, s) {
				t.Errorf("logs contain the secret %q", s)
			}
		}
	}
}

// walkSteps dials and walks the steps of a link flow, then checks the link.
func walkSteps(t *testing.T, h *handset, m *Main, steps []step) {
	t.Helper()
	h.dial()
	h.expect("Choose bank", "98 More", "0 Exit")
	for i, s := range steps {
		if s.choose != "" {
			h.choose(s.choose)
		} else {
			h.send(s.typed)
		}
		h.expect(s.want...)
		if h.ended != s.end {
			t.Fatalf("step %d: ended = %v, want %v; screen:\n%s", i, h.ended, s.end, h.screen)
		}
	}
	s, err := latestSession(m, h.wirePhone())
	if err != nil {
		t.Fatal(err)
	}
	l := s.Link
	if l == nil || l.AccountID == "" || l.Institution == "" || !strings.HasPrefix(l.Masked, "****") || l.Linked.IsZero() {
		t.Fatalf("session %s/%s has no complete link: %+v", s.State, s.Reason, l)
	}
	if stored, ok, err := m.db.Link(context.Background(), l.AccountID); err != nil || !ok || stored.Phone != h.e164() {
		t.Errorf("link %s not stored for %s: %+v %v", l.AccountID, h.e164(), stored, err)
	}
	if !strings.Contains(h.screen, l.Masked) {
		t.Errorf("success screen %q does not show %s", h.screen, l.Masked)
	}
}

// e164 is the phone as the gateway keeps it, whatever the wire: every
// handset here dials an international number, with or without its "+".
func (h *handset) e164() string { return "+" + strings.TrimPrefix(h.phone, "+") }

// wirePhone is the phone number as the aggregator sends it (Ghanaian
// aggregators drop the "+").
func (h *handset) wirePhone() string {
	if h.wire.name() == "africastalking" {
		return h.phone
	}
	return strings.TrimPrefix(h.phone, "+")
}

func TestRefusalsAndExits(t *testing.T) {
	m, _ := startGateway(t, nil)
	cases := []struct {
		name  string
		steps []step
	}{
		{
			name: "0 on the bank list ends politely",
			steps: []step{
				{typed: "0", want: []string{"Goodbye"}, end: true},
			},
		},
		{
			name: "0 at a credential prompt goes back to the banks, and 0 there ends politely",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_good"},
				{typed: "0", want: []string{"Link your bank"}},
				{typed: "0", want: []string{"Goodbye"}, end: true},
			},
		},
		{
			name: "an invalid choice re-shows the list with a reason",
			steps: []step{
				{typed: "77", want: []string{"Invalid choice", "Choose bank", "1. GTBank"}},
				{choose: "GTBank", want: []string{"Log in to GTBank"}},
			},
		},
		{
			name: "letters matching no bank re-show the list with a reason",
			steps: []step{
				{typed: "qqq", want: []string{"No bank name starts with that", "1. GTBank"}},
			},
		},
		{
			name: "0 on a filtered list returns to the full list",
			steps: []step{
				{typed: "gt", want: []string{"Banks matching your search"}},
				{typed: "0", want: []string{"Choose bank", "1. GTBank"}},
			},
		},
		{
			name: "0 on page two goes back to page one",
			steps: []step{
				{typed: "98"},
				{typed: "0", want: []string{"1. GTBank", "0 Exit"}},
			},
		},
		{
			name: "three refused logins end the session",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_good"},
				{typed: "bad1", want: []string{"Login failed"}},
				{typed: "user_good"},
				{typed: "bad2", want: []string{"Login failed"}},
				{typed: "user_good"},
				{typed: "bad3", want: []string{"Too many failed attempts"}, end: true},
			},
		},
		{
			name: "a refused OTP can be typed again",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_otp"},
				{typed: "pass_good", want: []string{"OTP"}},
				{typed: "000000", want: []string{"Not accepted", "OTP"}},
				{typed: "123456", want: []string{"is linked"}, end: true},
			},
		},
		{
			name: "a bank that refuses what is typed ends politely after three tries",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_good"},
				{typed: "not-the-password", want: []string{"Login failed"}},
				{typed: "user_good"},
				{typed: "still-not-it"},
				{typed: "user_good"},
				{typed: "wrong-again", want: []string{"Too many failed attempts"}, end: true},
			},
		},
		{
			name: "an account the bank locked is told to contact the bank, not to try again",
			steps: []step{
				{choose: "GTBank"},
				{typed: "user_locked"},
				{typed: "pass_good", want: []string{"locked or disabled", "contact your bank"}, end: true},
			},
		},
		{
			name: "a numeric field refuses letters",
			steps: []step{
				{choose: "Access Bank"},
				{choose: "Mobile"},
				{typed: "user_good"},
				{typed: "12ab", want: []string{"Digits only", "PIN"}},
				{typed: "1234", want: []string{"is linked"}, end: true},
			},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandset(t, m, fmt.Sprintf("+23480310000%02d", i))
			h.dial()
			for j, s := range tc.steps {
				if s.choose != "" {
					h.choose(s.choose)
				} else {
					h.send(s.typed)
				}
				h.expect(s.want...)
				if h.ended != s.end {
					t.Fatalf("step %d: ended = %v, want %v; screen:\n%s", j, h.ended, s.end, h.screen)
				}
			}
		})
	}
}

// sandboxCalls counts every call the embedded sandbox has answered.
func (m *Main) sandboxCalls() int {
	n := 0
	for _, op := range []string{"institutions", "session", "login", "commit", "exchange", "reauthorise", "account"} {
		n += m.sandboxMono.Calls(op)
	}
	return n
}

// sandboxBanks is the embedded sandbox's catalogue.
func sandboxBanks() []mono.Institution { return sandbox.Banks() }

// newSandbox is a bare embedded sandbox with a key.
func newSandbox(key string) *sandbox.Sandbox { return sandbox.New(sandbox.Options{SecretKey: key}) }
