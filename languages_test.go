package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/lang"
)

// fits fails the test when a screen is not GSM-7 or longer than a
// handset's 160 units.
func fits(t *testing.T, h *handset) {
	t.Helper()
	if gsm.Transliterate(h.screen) != h.screen {
		t.Errorf("screen is not GSM-7:\n%s", h.screen)
	}
	if n := gsm.Units(h.screen); n > 160 {
		t.Errorf("screen is %d units:\n%s", n, h.screen)
	}
}

func TestALinkFlowInEveryLanguageIsSaidInItAndRemembered(t *testing.T) {
	words, err := lang.Load()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "data", "ussdlink.db")
	start := func() *Main {
		m, _ := startMain(t, func(m *Main) {
			m.Config.Store.Path = path
			m.Config.USSD.Languages = append([]string(nil), lang.All...)
		})
		return m
	}
	m := start()
	for i, code := range lang.All {
		t.Run(code, func(t *testing.T) {
			phone := fmt.Sprintf("+2348073000%03d", i)
			h := newHandset(t, m, phone)
			h.dial()
			h.expect(words.Text(lang.English, "choose_language"), "1. English", "2. "+words.Name(lang.Pidgin), "5. Igbo")
			fits(t, h)
			h.send(fmt.Sprint(i + 1))
			h.expect(words.Text(code, "choose_bank"), "99 "+words.Text(code, "change_language"), "98 "+words.Text(code, "nav_more"))
			fits(t, h)
			h.send("1") // GTBank
			fits(t, h)
			h.send("user_otp")
			fits(t, h)
			h.send("pass_good")
			fits(t, h)
			h.send("123456")
			fits(t, h)
			s, err := latestSession(m, phone)
			if err != nil || s.Link == nil || s.Lang != code {
				t.Fatalf("session = %+v, %v", s, err)
			}
			if want := words.Text(code, "linked", "bank", "GTBank", "masked", s.Link.Masked); h.screen != want || !h.ended {
				t.Errorf("linked screen = %q, want %q", h.screen, want)
			}
			// The receipt is texted in the phone's language too.
			inboxWith(t, m, phone, words.Text(code, "sms_receipt", "bank", "GTBank", "masked", s.Link.Masked))
		})
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = start() // the choice outlives the process
	for i, code := range lang.All {
		h := newHandset(t, m, fmt.Sprintf("+2348073000%03d", i))
		h.dial()
		if !strings.HasPrefix(h.screen, words.Text(code, "choose_bank")) {
			t.Errorf("%s: a later dial asks again or forgets:\n%s", code, h.screen)
		}
	}
}

func TestTextsAreSentInThePhonesLanguage(t *testing.T) {
	words, _ := lang.Load()
	m, _ := startGateway(t, func(c *Config) {
		c.USSD.Languages = append([]string(nil), lang.All...)
		c.SMS.Termii.SecretKey = termiiSecret
		c.Partner.APIKeys = []string{testAPIKey}
	})
	const phone = "+2348073004001"
	h := newHandset(t, m, phone)
	h.dial()
	h.send("4") // Yoruba
	h.send("0") // and leave: the choice is kept
	// The text conversation's own replies speak it.
	if status := textTermii(t, m, phone, "yo-1", "HELLO", true); status != 200 {
		t.Fatalf("text = %d", status)
	}
	inboxWith(t, m, phone, words.Text("yo", "sms_help", "keyword", "LINK"))
	// A partner's invitation text follows the invitation's language.
	status, _ := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": "+2348073004002", "reference": "inv-ha", "language": "ha", "notify": "sms"}, nil)
	if status != 201 {
		t.Fatalf("create = %d", status)
	}
	before, _, _ := strings.Cut(words.Text("ha", "sms_invite", "dial", "<DIAL>", "expires", "<EXP>"), "<DIAL>")
	inboxWith(t, m, "+2348073004002", before)
}

func TestTheLanguageIsChangedFromTheFirstScreenWithoutCollidingWithBanks(t *testing.T) {
	m, _ := startMain(t, func(m *Main) { m.Config.USSD.Languages = []string{"en", "ha", "yo"} })
	words, _ := lang.Load()
	h := newHandset(t, m, "+2348073001001")
	h.dial()
	h.send("1") // English
	h.expect(words.Text("en", "choose_bank"), "99 Language")
	h.send("99")
	h.expect(words.Text("en", "choose_language"), "1. English", "2. Hausa", "3. Yoruba")
	h.send("2")
	h.expect(words.Text("ha", "choose_bank"))
	h.send("98") // the next page of banks, not a language
	h.expect(words.Text("ha", "more_banks"))
	if s, _ := latestSession(m, "+2348073001001"); s.Lang != "ha" {
		t.Errorf("session speaks %q", s.Lang)
	}
}

func TestAShortcutAndAnInvitationSetTheLanguage(t *testing.T) {
	words, _ := lang.Load()
	m, _ := startMain(t, func(m *Main) {
		m.Config.USSD.Languages = append([]string(nil), lang.All...)
		m.Config.Partner.APIKeys = []string{testAPIKey}
		m.Config.USSD.Shortcuts = []ShortcutConfig{{Code: "5", Language: "ha"}, {Code: "6", Institution: "5f2d08be60b92e2888287702", Language: "yo"}}
	})
	for _, tt := range []struct {
		name, phone, dial, want string
	}{
		{"a language shortcut opens the banks in it", "+2348073002001", "*384*123*5#", words.Text("ha", "choose_bank")},
		{"a bank shortcut with a language opens the bank's form in it", "+2348073002002", "*384*123*6#", words.Text("yo", "type_field", "field", "UserID or Account Number")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := dialCode(t, m, tt.phone, tt.dial)
			h.expect(tt.want)
		})
	}
	t.Run("an invitation's language is spoken and kept", func(t *testing.T) {
		const phone = "+2348073002003"
		status, inv := call(t, m, "POST", "/v1/links", testAPIKey, map[string]any{"phone": phone, "reference": "lang-1", "language": "ig"}, nil)
		if status != 201 || inv["language"] != "ig" {
			t.Fatalf("create = %d %v", status, inv)
		}
		h := dialCode(t, m, phone, inv["dial"].(string))
		h.expect(words.Text("ig", "choose_bank"))
		h.send("0")
		later := newHandset(t, m, phone)
		later.dial()
		later.expect(words.Text("ig", "choose_bank")) // kept for the phone: no question
	})
	for path, body := range map[string]map[string]any{
		"/v1/links":  {"phone": "+2348073002004", "reference": "lang-2", "language": "fr"},
		"/v1/reauth": {"phone": "+2348073002004", "account_id": "acct_1", "language": "fr"},
	} {
		if status, got := call(t, m, "POST", path, testAPIKey, body, nil); status != 400 {
			t.Errorf("POST %s with a language not offered = %d %v, want 400", path, status, got)
		}
	}
	status, re := call(t, m, "POST", "/v1/reauth", testAPIKey, map[string]any{"phone": "+2348073002005", "account_id": "acct_9", "language": "pcm"}, nil)
	if status != 201 || re["language"] != "pcm" {
		t.Errorf("a reauthorisation invitation's language = %d %v", status, re)
	}
}

func TestAnOverrideFileChangesAScreenAndABadOneStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "texts.toml")
	writeFile(t, good, "[en]\nchoose_bank = \"Pick the bank to link:\"\n")
	m, _ := startMain(t, func(m *Main) { m.Config.USSD.Texts = good })
	walk(t, m, "+2348073003001").expect("Pick the bank to link:")

	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "[en]\nchoose_bnak = \"Pick:\"\n")
	cfg := DefaultConfig()
	cfg.USSD.Texts = bad
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "choose_bnak") {
		t.Errorf("a bad override = %v, want a refusal naming choose_bnak", err)
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"-config", writeConfig(t, dir, "[ussd]\ntexts = \""+bad+"\"\n")}, nil, &out, &out); err == nil ||
		!strings.Contains(err.Error(), "choose_bnak") {
		t.Errorf("serve with a bad override = %v", err)
	}
}

// writeFile writes a file for the test.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeConfig writes a config.toml in dir and returns its path.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, body)
	return path
}
