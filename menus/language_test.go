package menus

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// withLanguages offers languages.
func withLanguages(codes ...string) rigOption {
	return func(c *Config, _ *sandbox.Options) { c.Languages = codes }
}

func TestEveryScreenInEveryLanguageFitsItsBudgetInGSM7(t *testing.T) {
	journeys := []struct {
		name   string
		inputs []string // after the language choice
	}{
		{"pages, a search that finds none, then leaves", []string{"98", "98", "0", "zzz", "0"}},
		{"a bank with two methods, an empty field, a challenge", []string{"zen", "1", "", "user_otp", "pass_good", "000000", "123456"}},
		{"a choice of accounts", []string{"1", "user_multi", "pass_good", "2"}},
		{"a refused login, then too many", []string{"1", "nobody", "x", "nobody", "x", "nobody", "x"}},
	}
	for _, limit := range []int{40, 64, 100, 160, 182} {
		for li, code := range lang.All {
			for ji, j := range journeys {
				t.Run(fmt.Sprintf("%d/%s/%s", limit, code, j.name), func(t *testing.T) {
					r := newRig(t, withLanguages(lang.All...))
					phone := fmt.Sprintf("+2348074%d%d%03d", ji, li, limit)
					session := "s" + phone
					var typed []string
					hop := func(input *string) link.Reply {
						t.Helper()
						if input != nil {
							typed = append(typed, *input)
						}
						rep, err := r.engine.Handle(context.Background(), link.Hop{SessionID: session, Phone: phone, ServiceCode: "*384*123#",
							Transcript: strings.Join(typed, "*"), Cumulative: true, Limit: limit})
						if err != nil {
							t.Fatalf("hop %v: %v", typed, err)
						}
						if gsm.Transliterate(rep.Text) != rep.Text {
							t.Errorf("after %v, not GSM-7:\n%s", typed, rep.Text)
						}
						if n := gsm.Units(rep.Text); n > limit {
							t.Errorf("after %v, %d units over %d:\n%s", typed, n, limit, rep.Text)
						}
						return rep
					}
					first := hop(nil)
					if !strings.Contains(first.Text, "1. ") || first.Screen != StateLanguage {
						t.Fatalf("first dial = %+v, want the language choice", first)
					}
					rep := first
					for page := 0; ; page++ { // a small screen pages the languages
						if n, ok := optionFor(rep.Text, englishWords.Name(code)); ok {
							rep = hop(&n)
							break
						}
						if page == 5 {
							t.Fatalf("%s is on no page:\n%s", code, rep.Text)
						}
						more := "98"
						rep = hop(&more)
					}
					for _, in := range j.inputs {
						if rep.End {
							break
						}
						in := in
						rep = hop(&in)
					}
					if s := r.store.stored(t, session); s.Lang != code {
						t.Errorf("the session speaks %q, want %q", s.Lang, code)
					}
				})
			}
		}
	}
}

// optionFor finds the number of the option named name on a screen.
func optionFor(screen, name string) (string, bool) {
	for _, line := range strings.Split(screen, "\n") {
		if n, label, ok := strings.Cut(line, ". "); ok && label == name {
			return n, true
		}
	}
	return "", false
}

func TestTheLanguageChoiceIsAskedOnceAndRemembered(t *testing.T) {
	r := newRig(t, withLanguages("en", "ha"))
	first := r.must(t, "a", "+234801", "")
	if first.Screen != StateLanguage || !strings.Contains(first.Text, "1. English\n2. Hausa") {
		t.Fatalf("first dial = %+v", first)
	}
	banks := r.must(t, "a", "+234801", "2")
	if want := englishWords.Text("ha", "choose_bank"); !strings.HasPrefix(banks.Text, want) || !strings.Contains(banks.Text, "99 "+englishWords.Text("ha", "change_language")) {
		t.Errorf("banks in Hausa = %q", banks.Text)
	}
	again := r.must(t, "b", "+234801", "")
	if again.Screen != StateBanks || !strings.HasPrefix(again.Text, englishWords.Text("ha", "choose_bank")) {
		t.Errorf("a later dial = %+v, want the banks in Hausa", again)
	}
	other := r.must(t, "c", "+234802", "")
	if other.Screen != StateLanguage {
		t.Errorf("another phone's first dial = %+v, want the choice", other)
	}
	one := newRig(t, withLanguages("yo"))
	if rep := one.must(t, "d", "+234803", ""); rep.Screen != StateBanks || !strings.HasPrefix(rep.Text, englishWords.Text("yo", "choose_bank")) || strings.Contains(rep.Text, "99 ") {
		t.Errorf("one language offered = %+v: no choice, no 99", rep)
	}
}
