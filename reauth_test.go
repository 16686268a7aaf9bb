package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

func TestReauthorise(t *testing.T) {
	cases := []struct {
		name   string
		user   string
		prompt string   // what the first screen after the dial asks
		steps  []string // what the customer types
	}{
		{name: "Mono logs in in the background", user: "user_good"},
		{name: "the bank asks for an OTP", user: "user_otp", prompt: "OTP", steps: []string{"123456"}},
		{name: "the bank wants the login again", user: "user_relogin", prompt: "UserID", steps: []string{"user_relogin", "pass_good"}},
	}
	for ai, api := range monoAPIs {
		for i, tc := range cases {
			t.Run("mono "+api+"/"+tc.name, func(t *testing.T) {
				reauthorise(t, api, fmt.Sprintf("+2348071%d001%02d", ai, i), tc.user, tc.prompt, tc.steps)
			})
		}
	}
}

// reauthorise links an account for user on phone, has the partner invite
// its re-authorisation, and walks it: the screens ask prompt, then the
// customer types steps, and the partner hears of it once.
func reauthorise(t *testing.T, api, phone, user, prompt string, steps []string) {
	t.Helper()
	rcv := newReceiver(t)
	m, logs := startPartnerGateway(t, rcv, func(c *Config) { c.Mono.API = api })
	linking := []string{"1", user, "pass_good"}
	if user == "user_otp" {
		linking = append(linking, "123456")
	}
	walk(t, m, phone, linking...).expect("is linked")
	account := rcv.await("ACCOUNT_LINKED", nil)["account_id"].(string)

	status, re := call(t, m, "POST", "/v1/reauth", testAPIKey, map[string]any{"account_id": account, "phone": phone, "reference": "reauth-1"}, nil)
	if status != 201 || re["status"] != "pending" || re["dial"] == "" {
		t.Fatalf("reauth = %d %v", status, re)
	}
	reauths := m.sandboxMono.Calls("reauthorise")
	if reauths != 0 {
		t.Errorf("a token was asked for before the customer dialled")
	}
	h := dialCode(t, m, phone, re["dial"].(string))
	if len(steps) > 0 {
		h.expect(prompt)
		for _, in := range steps {
			h.send(in)
		}
	}
	relogins := 0
	if user == "user_relogin" {
		relogins = 1
	}
	wantCalls := map[string]int{"reauthorise": 1, sandbox.OpReauthSession: 0, sandbox.OpReauthLogin: 0} // v1: a token, then a session
	if api == "v2" {
		wantCalls = map[string]int{"reauthorise": 0, sandbox.OpReauthSession: 1, sandbox.OpReauthLogin: relogins}
	}
	for op, n := range wantCalls {
		if got := m.sandboxMono.Calls(op); got != n {
			t.Errorf("%s calls = %d, want %d", op, got, n)
		}
	}
	h.expect("GTBank", "re-authorised")
	if !h.ended {
		t.Fatalf("reauth did not end: %s", h.screen)
	}
	_, got := call(t, m, "GET", "/v1/reauth/"+re["id"].(string), testAPIKey, nil, nil)
	if got["status"] != "reauthorised" || got["account_id"] != account {
		t.Errorf("GET reauth = %v", got)
	}
	d := rcv.await("ACCOUNT_REAUTHORISED", nil)
	if d["account_id"] != account || d["reference"] != "reauth-1" {
		t.Errorf("ACCOUNT_REAUTHORISED = %v", d)
	}
	// Mono's own account_reauthorized webhook follows; it must not
	// tell the partner a second time.
	settled(t, m)
	if n := rcv.count("ACCOUNT_REAUTHORISED"); n != 1 {
		t.Errorf("ACCOUNT_REAUTHORISED sent %d times", n)
	}
	for _, secret := range steps {
		if strings.Contains(logs.String(), secret) && secret != user {
			t.Errorf("logs contain %q", secret)
		}
	}
}
