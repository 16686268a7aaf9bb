package lang

import (
	"slices"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/gsm"
)

func TestEveryMessageExistsInEveryLanguageWithTheSamePlaceholders(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err) // Load checks the parity; its error names the message
	}
	for _, code := range All {
		for _, key := range c.Keys() {
			msg := c.msgs[code][key]
			if !slices.Equal(Placeholders(msg), Placeholders(c.msgs[English][key])) {
				t.Errorf("%s %s: placeholders %v", code, key, Placeholders(msg))
			}
			said := c.Text(code, key)
			if gsm.Transliterate(said) != said {
				t.Errorf("%s %s is not GSM-7 once said: %q", code, key, said)
			}
			if gsm.Units(said) > 150 {
				t.Errorf("%s %s is %d units: too long for a screen", code, key, gsm.Units(said))
			}
		}
	}
}

func TestEachLanguageIsNamedInItself(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, code := range All {
		n := c.Name(code)
		if n == "" || names[n] {
			t.Errorf("%s is named %q", code, n)
		}
		names[n] = true
	}
	if c.Name(Yoruba) != "Yoruba" { // Yorùbá, in GSM-7
		t.Errorf("Yoruba is named %q", c.Name(Yoruba))
	}
}

func TestTextFillsPlaceholdersAndFallsBackToEnglish(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Text(English, "linked", "bank", "GTBank", "masked", "****1234"); got != "Done! GTBank account ****1234 is linked. Thank you." {
		t.Errorf("linked = %q", got)
	}
	if got := c.Text("xx", "goodbye"); got != c.Text(English, "goodbye") {
		t.Errorf("an unknown language = %q, want English", got)
	}
	if got := c.Text(English, "no_such_message"); got != "no_such_message" {
		t.Errorf("an unknown key = %q", got)
	}
	for _, code := range All {
		if got := c.Text(code, "linked", "bank", "GTBank", "masked", "****1234"); !strings.Contains(got, "GTBank") || !strings.Contains(got, "****1234") || strings.Contains(got, "{") {
			t.Errorf("%s linked = %q", code, got)
		}
	}
}

func TestFillPutsEachValueInItsPlaceholderOnce(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		{"{bank} {masked} {bank}", "GT **12 GT"},
		{"no placeholders", "no placeholders"},
		{"{unknown} stays", "{unknown} stays"},
		{"a value holding a brace {bank}", "a value holding a brace GT"},
		{"unclosed {bank", "unclosed {bank"},
		{"{masked}{bank}", "**12GT"},
	} {
		if got := fill(tt.msg, []string{"bank", "GT", "masked", "**12"}); got != tt.want {
			t.Errorf("fill(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
	if got := fill("{bank}", []string{"bank", "{masked}", "masked", "x"}); got != "{masked}" {
		t.Errorf("a value is filled in as it is, not filled again: %q", got)
	}
}

func TestAnOverrideChangesAMessageAndABadOneIsRefusedNamingIt(t *testing.T) {
	tests := []struct {
		name, file, wantErr string
	}{
		{"a message changes", "[en]\ngoodbye = \"Bye for now. Nothing was linked.\"\n[ha]\ngoodbye = \"Sai anjima.\"\n", ""},
		{"an unknown key is refused", "[en]\ngodbye = \"Bye\"\n", "godbye"},
		{"an unknown language is refused", "[fr]\ngoodbye = \"Au revoir\"\n", "[fr]"},
		{"a placeholder the message does not take is refused", "[en]\nresume = \"You were linking {account}.\"\n", "resume"},
		{"a placeholder left out is refused", "[yo]\nlinked = \"O ti pari.\"\n", "linked"},
		{"an empty message is refused", "[en]\ngoodbye = \"  \"\n", "goodbye"},
		{"a file that is not TOML is refused", "goodbye = [\n", "texts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			before := c.Text(English, "goodbye")
			err = c.Override([]byte(tt.file))
			if tt.wantErr == "" {
				if err != nil || c.Text(English, "goodbye") != "Bye for now. Nothing was linked." || c.Text(Hausa, "goodbye") != "Sai anjima." {
					t.Errorf("override = %v; en %q, ha %q", err, c.Text(English, "goodbye"), c.Text(Hausa, "goodbye"))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Override = %v, want an error naming %q", err, tt.wantErr)
			}
			if c.Text(English, "goodbye") != before {
				t.Error("a refused override changed a message")
			}
		})
	}
}

func TestTheLanguageSpokenBeforeAChoiceIsOneRule(t *testing.T) {
	tests := []struct {
		offered   []string
		preferred string
		want      string
	}{
		{[]string{"en", "ha"}, "ha", "ha"},
		{[]string{"ha", "yo"}, "", "ha"},
		{[]string{"ha", "en"}, "", "en"},
		{[]string{"ha", "yo"}, "ig", "ha"},
		{nil, "yo", "yo"},
		{nil, "", "en"},
	}
	for _, tt := range tests {
		if got := Spoken(tt.offered, tt.preferred); got != tt.want {
			t.Errorf("Spoken(%v, %q) = %q, want %q", tt.offered, tt.preferred, got, tt.want)
		}
	}
}
