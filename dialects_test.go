package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestDeepDialsOpenAShortcutWhereverTheCodeArrives(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) {
		c.USSD.Shortcuts = []ShortcutConfig{
			{Code: "7", Institution: "5f2d08be60b92e2888287702", AuthMethod: "internet_banking"}, // GTBank
			{Code: "8", Institution: zenithID(t)},                                                // two methods: the choice is shown
		}
	})
	cases := []struct {
		name string
		w    wire
		code string // how the network passes the extension
		want string
	}{
		{name: "Africa's Talking with the code in the service code", w: atDeepWire{serviceCode: "*384*123*7#"}, want: "Log in to GTBank"},
		{name: "Africa's Talking with the code as the first input", w: atDeepWire{serviceCode: "*384*123#", firstText: "7"}, want: "Log in to GTBank"},
		{name: "Hubtel with the code in the dialled string", w: hubtelDeepWire{dialled: "*384*123*7#"}, want: "Log in to GTBank"},
		{name: "a shortcut without an auth method offers the choice", w: atDeepWire{serviceCode: "*384*123*8#"}, want: "How do you log in?"},
		{name: "an unknown code shows the banks", w: atDeepWire{serviceCode: "*384*123*99#"}, want: "Choose bank"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandsetOn(t, m, tc.w, fmt.Sprintf("+23480600000%02d", i))
			h.dial()
			h.expect(tc.want)
			if tc.want != "Log in to GTBank" {
				return
			}
			h.send("user_good")
			h.send("pass_good")
			h.expect("GTBank", "is linked")
		})
	}
}

// zenithID finds Zenith Bank's id in the sandbox catalogue.
func zenithID(t *testing.T) string {
	t.Helper()
	for _, b := range sandboxBanks() {
		if b.Name == "Zenith Bank" {
			return b.ID
		}
	}
	t.Fatal("no Zenith Bank in the sandbox")
	return ""
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

// hubtelDeepWire is Hubtel with a dialled string carrying an extension.
type hubtelDeepWire struct{ dialled string }

func (hubtelDeepWire) name() string { return "hubtel" }
func (w hubtelDeepWire) request(h *handset) *http.Request {
	if h.inputs > 0 {
		return hubtelWire{}.request(h)
	}
	return jsonRequest("/ussd/hubtel", map[string]any{"Type": "Initiation", "Mobile": strings.TrimPrefix(h.phone, "+"),
		"SessionId": h.session, "ServiceCode": "384*123", "Message": w.dialled, "Operator": "mtn", "Sequence": 1})
}
func (hubtelDeepWire) reply(body []byte) (string, bool, error) { return hubtelWire{}.reply(body) }

func TestAggregatorEndOfSessionClosesItAndRecordsWhy(t *testing.T) {
	m, _ := startGateway(t, nil)
	t.Run("Africa's Talking session-end notification", func(t *testing.T) {
		h := walk(t, m, "+2348061000001", "1", "user_good")
		form := url.Values{"sessionId": {h.session}, "serviceCode": {"*384*123#"}, "networkCode": {"62130"}, "phoneNumber": {h.phone},
			"status": {"Incomplete"}, "input": {"1*user_good*S3cr3t-typed"}, "lastAppResponse": {"CON Password"},
			"durationInMillis": {"35000"}, "hopsCount": {"3"}, "errorMessage": {"user timed out"}, "date": {"2026-11-22 10:00:00"}}
		resp, err := http.PostForm(m.URL()+"/ussd/africastalking/events", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("events status = %d", resp.StatusCode)
		}
		s, err := storedSession(m, h.session)
		if err != nil {
			t.Fatal(err)
		}
		if s.Closed != "Incomplete" || s.ClosedError != "user timed out" {
			t.Errorf("closed = %q (%q), want Incomplete with the error recorded", s.Closed, s.ClosedError)
		}
		h.send("pass_good")
		h.expect("session has ended")
		// The link under way can be resumed from a new dial.
		h2 := walk(t, m, h.phone)
		h2.expect("You were linking your GTBank account")
	})
	for _, kind := range []string{"Release", "Timeout"} {
		t.Run("Hubtel "+kind, func(t *testing.T) {
			h := newHandsetOn(t, m, hubtelWire{}, "23324100000"+fmt.Sprint(len(kind)))
			h.dial()
			h.send("1")
			req := jsonRequest("/ussd/hubtel", map[string]any{"Type": kind, "Mobile": h.wirePhone(), "SessionId": h.session,
				"ServiceCode": "384*123", "Message": "", "Operator": "mtn", "Sequence": 3})
			req.URL, _ = url.Parse(m.URL() + req.URL.String())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if s, _ := storedSession(m, h.session); s == nil || s.Closed != kind {
				t.Fatalf("session closed = %+v, want %s", s, kind)
			}
		})
	}
}

func TestRepeatedDeliveriesFromLatestInputDialects(t *testing.T) {
	m, _ := startGateway(t, nil)
	for i, w := range []wire{hubtelWire{}, arkeselWire{}, naloWire{}, hollaWire{}} {
		t.Run(w.name(), func(t *testing.T) {
			h := newHandsetOn(t, m, w, fmt.Sprintf("+23324400000%d", i))
			h.dial()
			first := h.screen
			h.post() // a duplicate session start
			if h.screen != first {
				t.Fatalf("duplicate start shows %q, want %q", h.screen, first)
			}
			h.send("1")
			h.send("user_good")
			logins := m.sandboxMono.Calls("login")
			h.send("pass_good")
			linked := h.screen
			h.ended = false
			h.post() // the aggregator delivers the last hop again
			if h.screen != linked {
				t.Errorf("repeat shows %q, want %q", h.screen, linked)
			}
			if got := m.sandboxMono.Calls("login") - logins; got != 1 {
				t.Errorf("logins for one password = %d, want 1", got)
			}
		})
	}
}

func TestScreenBudgetsPerDialectAndNetwork(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) {
		c.USSD.ScreenLimits = map[string]int{"hubtel": 80, "62130": 100}
	})
	cases := []struct {
		w     wire
		limit int
	}{
		{hubtelWire{}, 80},   // the dialect's budget
		{atWire{}, 100},      // Africa's Talking on MTN NG (62130): the network's budget
		{arkeselWire{}, 160}, // the default
	}
	for i, tc := range cases {
		t.Run(tc.w.name(), func(t *testing.T) {
			h := newHandsetOn(t, m, tc.w, fmt.Sprintf("+23324400001%d", i))
			h.limit = tc.limit // post checks every screen against it
			h.dial()
			for _, in := range []string{"98", "98", "98", "0"} {
				h.send(in)
			}
			if n := len(strings.Split(h.screen, "\n")); tc.limit < 160 && n > 9 {
				t.Errorf("a %d-unit screen shows %d lines", tc.limit, n)
			}
		})
	}
}

func TestNamesFromMonoAreTransliteratedToGSM7(t *testing.T) {
	m, _ := startGateway(t, nil)
	h := walk(t, m, "+2348062000001", "lotus")
	h.expect("Lotus Bank - Islamic")
	h = walk(t, m, "+2348062000002", "microfinance") // two matches: a list
	h.expect("Ibile Microfinance Bank")
	h.choose("Ibile")
	h.expect("Log in to Ibile MFB's online banking")
}
