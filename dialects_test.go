package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

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
