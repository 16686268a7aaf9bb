package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCallbackAuthentication(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) {
		c.USSD.CallbackToken = "cb-secret-token"
		c.USSD.AllowIPs = []string{"127.0.0.0/8", "10.20.0.0/16"}
		c.USSD.TrustedProxyHeader = ""
	})
	proxied, _ := startGateway(t, func(c *Config) {
		c.USSD.AllowIPs = []string{"10.20.0.0/16"}
		c.USSD.TrustedProxyHeader = "X-Forwarded-For"
	})
	cases := []struct {
		name   string
		gw     *Main
		query  string
		header map[string]string
		want   int
	}{
		{name: "no token is refused", gw: m, want: 401},
		{name: "a wrong token is refused", gw: m, query: "?token=nope", want: 401},
		{name: "a token of another length is refused", gw: m, query: "?token=cb-secret-token-and-more", want: 401},
		{name: "the token in the URL is accepted", gw: m, query: "?token=cb-secret-token", want: 200},
		{name: "the token in the header is accepted", gw: m, header: map[string]string{"X-Callback-Token": "cb-secret-token"}, want: 200},
		{name: "a forwarded address is ignored without a trusted proxy header", gw: m, query: "?token=cb-secret-token", header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, want: 200},
		{name: "a caller outside the allowed networks is refused", gw: proxied, header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, want: 403},
		{name: "the trusted proxy header's rightmost address is the caller", gw: proxied, header: map[string]string{"X-Forwarded-For": "10.20.1.1, 203.0.113.9"}, want: 403},
		{name: "a caller inside the allowed networks is accepted", gw: proxied, header: map[string]string{"X-Forwarded-For": "203.0.113.9, 10.20.1.1"}, want: 200},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("auth-%d", i)
			form := url.Values{"sessionId": {id}, "serviceCode": {"*384*123#"}, "phoneNumber": {"+2348070000001"}, "text": {""}}
			req, _ := http.NewRequest(http.MethodPost, tc.gw.URL()+"/ussd/africastalking"+tc.query, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			_, err = storedSession(tc.gw, id)
			if created := err == nil; created != (tc.want == 200) {
				t.Errorf("session created = %v for status %d", created, tc.want)
			}
		})
	}
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
