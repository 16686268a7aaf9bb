package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/mono/sandbox"
	"github.com/ussdlink/ussdlink/partner"
	"github.com/ussdlink/ussdlink/sms"
)

// Reading what the gateway stored.

// storedSession reads a session as the gateway's store holds it, decoded.
func storedSession(m *Main, id string) (*menus.Session, error) {
	r, err := m.db.Session(context.Background(), id)
	if err != nil {
		return nil, err
	}
	return menus.Decode(r)
}

// latestSession reads a phone's latest session as the store holds it.
func latestSession(m *Main, phone string) (*menus.Session, error) {
	r, err := m.db.Latest(context.Background(), phone)
	if err != nil {
		return nil, err
	}
	return menus.Decode(r)
}

// noSession fails the test when a session with id was stored.
func noSession(t *testing.T, m *Main, id string) {
	t.Helper()
	if s, err := storedSession(m, id); !errors.Is(err, link.ErrNoSession) {
		t.Errorf("session %s stored (%+v, %v), want none", id, s, err)
	}
}

// Starting a gateway: the real wiring on a temp dir and a free port, with
// the embedded Mono sandbox unless a test points it elsewhere; each stops
// when its test ends. Its logs, and a clock a test can move.

// syncBuffer collects log output from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
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
	m.Config.Admin.Addr = "127.0.0.1:0"
	m.Config.USSD.Languages = []string{"en"} // one language: no choice asked (language tests offer more)
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

// testAPIKey is the partner API key startPartnerGateway accepts.
const testAPIKey = "pk_test_0123456789"

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

// The keys startSMSGateway gives Twilio and Termii to sign inbound texts.
const (
	twilioToken  = "twilio-auth-token-123"
	termiiSecret = "termii-secret-456"
)

// startSMSGateway runs the gateway with the sandbox SMS provider, and the
// inbound keys of Twilio and Termii set.
func startSMSGateway(t *testing.T, configure func(*Config)) *Main {
	t.Helper()
	m, _ := startSMSGatewayLogs(t, configure)
	return m
}

// startSMSGatewayLogs is startSMSGateway, with the gateway's logs.
func startSMSGatewayLogs(t *testing.T, configure func(*Config)) (*Main, *syncBuffer) {
	t.Helper()
	m, logs := startGateway(t, func(c *Config) {
		c.SMS.PartnerName = "Kudi Loans"
		c.SMS.Twilio.AuthToken = twilioToken
		c.SMS.Termii.SecretKey = termiiSecret
		c.USSD.CallbackToken = "cb-token"
		if configure != nil {
			configure(c)
		}
	})
	return m, logs
}

// testClock is a settable clock for the gateway.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

// Now is the clock's time, for Main.Now.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Mono sandboxes: the embedded one's call counts, and bare ones served
// apart from the gateway.

// sandboxCalls counts every call the embedded sandbox has answered.
func (m *Main) sandboxCalls() int {
	n := 0
	for _, op := range []string{"institutions", "session", "login", "commit", "exchange", "reauthorise", "account"} {
		n += m.sandboxMono.Calls(op)
	}
	return n
}

// newSandbox is a bare embedded sandbox with a key.
func newSandbox(key string) *sandbox.Sandbox { return sandbox.New(sandbox.Options{SecretKey: key}) }

// newExternalSandbox serves a sandbox whose webhooks go nowhere (the test
// posts Mono's webhooks itself).
func newExternalSandbox(t *testing.T) *httptest.Server {
	sb := newSandbox("test_sk_hooks")
	srv := httptest.NewServer(sb)
	t.Cleanup(func() { srv.Close(); sb.Close() })
	return srv
}

// Handsets: a phone dialling the gateway through one aggregator's wire.

// handset dials the gateway as a phone would, through one aggregator's
// dialect (its wire), keeping what that aggregator keeps: the cumulative
// transcript, or the latest input and a hop number.
type handset struct {
	// urls, when set, are several gateways on one store: each hop goes to
	// the next, as a round-robin load balancer would send it.
	urls       []string
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

// sessionSeq numbers the handsets' sessions, so that no two share an id.
var sessionSeq struct {
	sync.Mutex
	n int
}

// newHandset is a handset dialling m over Africa's Talking.
func newHandset(t *testing.T, m *Main, phone string) *handset {
	return newHandsetOn(t, m, atWire{}, phone)
}

// newHandsetOn is a handset dialling m over w, in a session of its own.
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
	base := h.url
	if len(h.urls) > 0 {
		base = h.urls[h.hops%len(h.urls)]
	}
	req.URL, _ = url.Parse(base + req.URL.String())
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

// Wires: each aggregator dialect's side of a USSD conversation.

// A wire is one aggregator's side of the conversation: it builds a hop's
// request (path and query relative to the gateway) and reads the reply.
type wire interface {
	name() string
	request(h *handset) *http.Request
	reply(body []byte) (text string, end bool, err error)
}

// wires lists every dialect, for tests that must hold in each.
var wires = []wire{atWire{}, hubtelWire{}, arkeselWire{}, naloWire{}, hollaWire{}}

// atWire is Africa's Talking: a form with the whole transcript on every
// hop, answered "CON text" or "END text".
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

// hubtelWire is Hubtel: JSON with the latest input and a sequence number.
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

// arkeselWire is Arkesel: JSON with the latest input and a new-session flag.
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

// naloWire is Nalo: JSON with the latest input and a message type.
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

// hollaWire is HollaTags: a GET query with the latest input, answered in
// JSON.
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

// atDeepWire is Africa's Talking dialled with an extension, passed either
// in the service code or as the first text.
type atDeepWire struct{ serviceCode, firstText string }

func (atDeepWire) name() string { return "africastalking" }

func (w atDeepWire) request(h *handset) *http.Request {
	text := h.transcript
	if w.firstText != "" {
		text = w.firstText
		if h.transcript != "" {
			text += "*" + h.transcript
		}
	}
	req := atWire{}.request(h)
	form := url.Values{"sessionId": {h.session}, "serviceCode": {w.serviceCode}, "phoneNumber": {h.phone}, "networkCode": {"62130"}, "text": {text}}
	req.Body = http.NoBody
	r2, _ := http.NewRequest(http.MethodPost, req.URL.String(), strings.NewReader(form.Encode()))
	r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r2
}

func (atDeepWire) reply(body []byte) (string, bool, error) { return atWire{}.reply(body) }

// Requests made by hand: the wires' JSON bodies, and what no handset sends.

// jsonRequest posts v as JSON to path.
func jsonRequest(path string, v any) *http.Request {
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return req
}

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

// Walks: whole conversations, typed input by input.

// A step is one thing the handset does in a walk: choose an option by its
// label, or type a value; then what the next screen must show.
type step struct {
	choose string
	typed  string
	want   []string
	end    bool
}

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

// dialCode dials a partner code over Africa's Talking, as a network that
// puts the extension in the service code does.
func dialCode(t *testing.T, m *Main, phone, dial string) *handset {
	t.Helper()
	h := newHandsetOn(t, m, atDeepWire{serviceCode: dial}, phone)
	h.dial()
	return h
}

// The partner API, called as a partner would.

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

// apiAnswer is one partner API answer with the headers the tests read.
type apiAnswer struct {
	status   int
	body     map[string]any
	replayed bool
}

// code is the error code of an error answer.
func (a apiAnswer) code() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// postLink posts an invitation, with an Idempotency-Key when key is set.
func postLink(t *testing.T, m *Main, key string, body map[string]any) apiAnswer {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", m.URL()+"/v1/links", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := apiAnswer{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	json.Unmarshal(raw, &a.body)
	return a
}

// The partner's webhook endpoint.

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

// webhookEvent is one webhook the receiver took.
type webhookEvent struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
	RequestID string         `json:"request_id"`
}

// newReceiver serves a receiver with a secret of its own until the test
// ends.
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

// types lists the types of the events that arrived, in order.
func (r *receiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
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

// Texts: inbound ones through each provider's webhook, and the sandbox
// provider's inbox.

// textTermii delivers an inbound text through Termii's signed webhook.
func textTermii(t *testing.T, m *Main, from, id, body string, sign bool) int {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "inbound", "id": id, "message_id": id, "sender": strings.TrimPrefix(from, "+"),
		"receiver": "USSDLINK", "message": body, "received_at": "2026-11-22 10:00:00"})
	req, _ := http.NewRequest("POST", m.URL()+"/sms/termii", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	sig := sms.SignTermii(termiiSecret, b)
	if !sign {
		sig = sms.SignTermii("another-secret", b)
	}
	req.Header.Set("X-Termii-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// textTwilio delivers an inbound text through Twilio's signed webhook and
// returns the status and TwiML.
func textTwilio(t *testing.T, m *Main, from, sid, body string, sign bool) (int, string) {
	t.Helper()
	form := url.Values{"MessageSid": {sid}, "AccountSid": {"AC123"}, "From": {from}, "To": {"+15550001111"}, "Body": {body}, "NumMedia": {"0"}}
	full := m.URL() + "/sms/twilio"
	token := twilioToken
	if !sign {
		token = "wrong-token"
	}
	req, _ := http.NewRequest("POST", full, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sms.SignTwilio(token, full, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// textAT delivers an inbound text through Africa's Talking's form post.
func textAT(t *testing.T, m *Main, from, id, body, token string) int {
	t.Helper()
	form := url.Values{"from": {from}, "to": {"38412"}, "text": {body}, "date": {"2026-11-22 10:00:00"}, "id": {id}, "linkId": {"l1"}}
	resp, err := http.PostForm(m.URL()+"/sms/africastalking?token="+token, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// inboxWith waits for a text to phone containing want.
func inboxWith(t *testing.T, m *Main, phone, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, msg := range m.smsSandbox.Inbox(phone) {
			if strings.Contains(msg.Text, want) {
				return msg.Text
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no text to %s containing %q; inbox: %v", phone, want, m.smsSandbox.Inbox(phone))
	return ""
}

// Quiescence: what a test waits for before it checks that something did
// not happen.

// settled waits until the gateway has nothing left to send: the embedded
// Mono sandbox has delivered every webhook it queued, and the text queue
// and (when a partner webhook URL is set) the webhook outbox are empty. A
// message leaves its queue only once it was sent, skipped or given up, so
// once settled returns every webhook and text the gateway was going to send
// has been sent, and a count of them is final.
func settled(t *testing.T, m *Main) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if m.sandboxMono != nil {
		if err := m.sandboxMono.WaitWebhooks(ctx); err != nil {
			t.Fatalf("the Mono sandbox's webhooks were not all delivered: %v", err)
		}
	}
	type queue interface {
		NextDue(ctx context.Context) (time.Time, bool, error)
	}
	queues := map[string]queue{"text": m.textQueue}
	if m.deliverer != nil {
		queues["webhook"] = m.webhookQueue
	}
	for {
		var busy []string
		for name, q := range queues {
			_, pending, err := q.NextDue(ctx)
			if err != nil {
				t.Fatalf("reading the %s queue: %v", name, err)
			}
			if pending {
				busy = append(busy, name)
			}
		}
		if len(busy) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the gateway did not settle: its %v queues still hold messages", busy)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
