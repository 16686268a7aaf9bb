package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
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

// sandboxBanks is the embedded sandbox's catalogue.
func sandboxBanks() []mono.Institution { return sandbox.Banks() }

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
