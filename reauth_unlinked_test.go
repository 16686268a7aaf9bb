package main

import "testing"

// Once Mono has said an account is unlinked, its id no longer opens a
// reauthorisation: POST /v1/reauth should refuse it rather than store an
// invitation (and text the customer a code) that can only fail at Mono.
// The webhook side already knows this: it does not nudge an unlinked link.
func TestReauthOfAnUnlinkedAccountIsRefused(t *testing.T) {
	g := startHookGateway(t, "+2348071000691", "unlink-reauth")
	g.hook(t, monoV2("account_unlinked", "evt_unlinked_r", map[string]any{"account": map[string]any{"id": g.account}}))
	g.rcv.await("ACCOUNT_UNLINKED", nil)
	status, got := call(t, g.m, "POST", "/v1/reauth", testAPIKey,
		map[string]any{"account_id": g.account, "phone": g.phone, "reference": "reauth-unlinked", "notify": "sms"}, nil)
	if status < 400 || status >= 500 {
		t.Errorf("POST /v1/reauth for an unlinked account = %d %v, want a 4xx refusal", status, got)
	}
}
