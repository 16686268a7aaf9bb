package main

import (
	"fmt"
	"strings"
	"testing"
)

// linkFlow is one branch of the link journey, step by step, with the
// secrets typed on the way.
type linkFlow struct {
	name    string
	phone   string
	steps   []step
	masked  string
	secrets []string
}

// linkFlows are every branch of the link journey, as one handset walks
// them: on one gateway (TestLinkFlowsEndToEnd) and across several
// (TestEveryHopOnAnotherInstance).
var linkFlows = []linkFlow{
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
			{typed: "zen", want: []string{"Zenith Bank", "How do you log in?", "1. Internet", "2. Mobile"}}, // the one match opens: v1 names the methods, v2 leaves the names to the gateway
			{choose: "Mobile", want: []string{"Phone"}},
			{typed: "user_good", want: []string{"PIN"}},
			{typed: "1234", want: []string{"Zenith Bank", "is linked"}, end: true},
		},
	},
}

func TestLinkFlowsEndToEnd(t *testing.T) {
	for _, api := range monoAPIs {
		t.Run("mono "+api, func(t *testing.T) {
			m, logs := startGateway(t, func(c *Config) { c.Mono.API = api })
			cases := linkFlows
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
			checkCustomers(t, m, api)
		})
	}
}

// monoAPIs are the versions of Mono's API the gateway speaks; the whole
// journey is walked in each.
var monoAPIs = []string{"v1", "v2"}

// checkCustomers checks whom the sandbox saw the sessions opened for: on
// v2 every one names the phone's customer from the default templates (no
// USSD user typed an e-mail address), on v1 none names any.
func checkCustomers(t *testing.T, m *Main, api string) {
	t.Helper()
	seen := m.sandboxMono.SessionCustomers()
	if api == "v1" {
		if len(seen) != 0 {
			t.Errorf("v1 sessions named customers: %+v", seen)
		}
		return
	}
	if len(seen) == 0 {
		t.Fatal("no v2 session named a customer")
	}
	for _, c := range seen {
		digits, ok := strings.CutSuffix(c.Email, "@ussdlink.invalid")
		if !ok || c.Name != "USSD "+digits || !strings.HasPrefix(digits, "234") {
			t.Errorf("customer %+v: want USSD <digits>, <digits>@ussdlink.invalid", c)
		}
	}
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

func TestAMonoServerSpeakingV2IsReachedByBaseURLWithoutAnAppID(t *testing.T) {
	srv := newExternalSandbox(t)
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID, c.Mono.API = srv.URL, "test_sk_hooks", "", "v2"
	})
	if m.sandboxMono != nil {
		t.Fatal("the embedded sandbox was started beside a base-url")
	}
	walk(t, m, "+2348071000401", "1", "user_multi", "pass_good").expect("Choose the account")
	h := walk(t, m, "+2348071000402", "1", "user_mfa", "pass_good", "123456")
	h.expect("Choose the account")
	h.send("2")
	h.expect("is linked")
	if d := rcv.await("ACCOUNT_LINKED", nil); d["phone"] != "+2348071000402" {
		t.Errorf("ACCOUNT_LINKED = %v", d)
	}
}
