package main

import (
	"fmt"
	"testing"
)

func TestReauthorise(t *testing.T) {
	cases := []struct {
		name  string
		user  string
		steps []string
	}{
		{name: "Mono logs in in the background", user: "user_good"},
		{name: "the bank asks for an OTP", user: "user_otp", steps: []string{"123456"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t)
			m, _ := startPartnerGateway(t, rcv, nil)
			phone := fmt.Sprintf("+23480710001%02d", i)
			linking := []string{"1", tc.user, "pass_good"}
			if tc.user == "user_otp" {
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
			if len(tc.steps) > 0 {
				h.expect("OTP")
				for _, in := range tc.steps {
					h.send(in)
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
		})
	}
}
