package screen

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/gsm"
)

var screenLimits = []int{40, 80, 120, 160, 182}

// Screen texts of the link journey, as sample headers.
const (
	textBankUnavailable = "This bank is not available right now. Please choose another."
	textChooseAccount   = "Choose the account to link:"
	textChooseBank      = "Link your bank. Choose bank or type its name:"
	textChooseMethod    = "How do you log in?"
	textDigitsOnly      = "Digits only, please."
	textFailed          = "Sorry, your bank could not be reached. Nothing was linked. Please try again later."
	textGoodbye         = "Goodbye. Nothing was linked."
	textInvalidChoice   = "Invalid choice. Try again."
)

// randomLabel returns a label of 1..60 runes mixing plain letters, spaces,
// GSM extension characters and characters Transliterate changes or drops.
func randomLabel(rng *rand.Rand) string {
	plain := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
	other := []rune(" .-&()'éÌłñ“”‘’–—…€^{}[]~|\\😀🏦中银₦\u00a0\t")
	rs := make([]rune, rng.IntN(60)+1)
	for i := range rs {
		if rng.IntN(4) == 0 {
			rs[i] = other[rng.IntN(len(other))]
		} else {
			rs[i] = plain[rng.IntN(len(plain))]
		}
	}
	return string(rs)
}

// clean is a text as Render shows it when it is not shortened.
// clean is how a text from Mono reaches a screen: GSM-7, on one line, with
// runs of white space folded.
func clean(s string) string { return strings.Join(strings.Fields(gsm.Transliterate(s)), " ") }

// walkPages renders every page of sc by following Offset += Shown until no
// More, checks what must hold on each page, and returns the pages.
func walkPages(t *testing.T, sc Screen, limit int) []Page {
	t.Helper()
	var header []string
	for _, h := range []string{sc.Notice, sc.Title, sc.Prompt} {
		if h = clean(h); h != "" {
			header = append(header, h)
		}
	}
	fullHeader := strings.Join(header, "\n")
	w := sc.Words.or()
	nav := "0 " + w.Exit
	if sc.Back {
		nav = "0 " + w.Back
	}
	more := "98 " + w.More

	var pages []Page
	seen := make([]int, len(sc.Items))
	sc.Offset = 0
	for {
		if len(pages) > len(sc.Items) {
			t.Fatalf("limit %d: more pages than options (%d)", limit, len(sc.Items))
		}
		p := sc.Render(limit)
		pages = append(pages, p)
		where := "limit " + strconv.Itoa(limit) + " offset " + strconv.Itoa(sc.Offset) + ":\n" + p.Text

		if got, want := gsm.Units(p.Text), limit; got > want {
			t.Fatalf("%s\n%d units, want at most %d", where, got, want)
		}
		if !gsm.Valid(p.Text) {
			t.Fatalf("%s\nnot GSM-7", where)
		}
		if p.Shown < 1 {
			t.Fatalf("%s\nno option shown", where)
		}
		if got, want := p.More, sc.Offset+p.Shown < len(sc.Items); got != want {
			t.Fatalf("%s\nMore = %v, want %v", where, got, want)
		}

		lines := strings.Split(p.Text, "\n")
		if got, want := lines[len(lines)-1], nav; got != want {
			t.Fatalf("%s\nlast line %q, want %q", where, got, want)
		}
		rest := lines[:len(lines)-1]
		if sc.Aside != "" {
			if got, want := rest[len(rest)-1], sc.Aside; got != want {
				t.Fatalf("%s\nline before navigation %q, want the aside %q", where, got, want)
			}
			rest = rest[:len(rest)-1]
		}
		if p.More {
			if got, want := rest[len(rest)-1], more; got != want {
				t.Fatalf("%s\nline before navigation %q, want %q", where, got, want)
			}
			rest = rest[:len(rest)-1]
		}
		for _, l := range rest {
			if l == more {
				t.Fatalf("%s\n%q shown with nothing more", where, more)
			}
		}
		if len(rest) < p.Shown {
			t.Fatalf("%s\n%d lines for %d options", where, len(rest), p.Shown)
		}
		head, options := rest[:len(rest)-p.Shown], rest[len(rest)-p.Shown:]

		// Each header line is shown whole or left out, never cut mid-phrase.
		gotHead := strings.Join(head, "\n")
		if !wholeLinesOf(head, header) {
			t.Fatalf("%s\nheader %q, want whole lines of %q", where, gotHead, fullHeader)
		}

		for j, line := range options {
			i := sc.Offset + j
			seen[i]++
			want := strconv.Itoa(j+1) + ". " + clean(sc.Items[i])
			if line == want {
				continue
			}
			// Only a lone option that cannot fit may be shortened.
			if p.Shown != 1 || !strings.HasPrefix(want, line) || len(line) <= len("1. ") {
				t.Fatalf("%s\noption %d shown as %q, want %q", where, i, line, want)
			}
			need := gsm.Units(gotHead) + 1 + gsm.Units(want) + 1 + gsm.Units(nav)
			if gotHead == "" {
				need--
			}
			if i < len(sc.Items)-1 {
				need += gsm.Units(more) + 1
			}
			if sc.Aside != "" {
				need += gsm.Units(sc.Aside) + 1
			}
			if need <= limit {
				t.Fatalf("%s\noption %d shortened to %q though %q fits", where, i, line, want)
			}
		}

		if !p.More {
			break
		}
		sc.Offset += p.Shown
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("limit %d: option %d (%q) shown %d times, want once", limit, i, sc.Items[i], n)
		}
	}
	return pages
}

// wholeLinesOf reports whether got is some of want's lines, whole, in order.
func wholeLinesOf(got, want []string) bool {
	i := 0
	for _, g := range got {
		for i < len(want) && want[i] != g {
			i++
		}
		if i == len(want) {
			return false
		}
		i++
	}
	return true
}

// TestRenderPagesRandomLists walks every page of random lists and checks
// that each fits, each option appears exactly once and whole (or shortened
// when alone and too long), numbering restarts, and navigation is right.
func TestRenderPagesRandomLists(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	titles := []string{"", textChooseBank, "Banks matching “GT”:", textChooseAccount,
		"Access Bank: " + textChooseMethod, strings.Repeat("A very long title indeed. ", 8)}
	notices := []string{"", textInvalidChoice, textBankUnavailable}
	// The navigation in every language's words, short and long, with and
	// without the language option beside it.
	words := []Words{{}, {More: "Siwaju", Back: "Pada", Exit: "Jade"}, {More: "Ci gaba", Back: "Koma baya", Exit: "Fita"},
		{More: "Gaa n'ihu", Back: "Azu", Exit: "Puo"}, {More: "Next one", Back: "Go back", Exit: "Comot"}}
	asides := []string{"", "99 Language", "99 Asusu"}
	for _, limit := range screenLimits {
		for n := 1; n <= 60; n++ {
			for k := 0; k < 4; k++ {
				sc := Screen{
					Notice: notices[rng.IntN(len(notices))],
					Title:  titles[rng.IntN(len(titles))],
					Back:   rng.IntN(2) == 0,
					Items:  make([]string, n),
					Words:  words[rng.IntN(len(words))],
					Aside:  asides[rng.IntN(len(asides))],
				}
				for i := range sc.Items {
					sc.Items[i] = randomLabel(rng)
				}
				walkPages(t, sc, limit)
			}
		}
	}
}

func TestRenderPages(t *testing.T) {
	many := make([]string, 40)
	for i := range many {
		many[i] = "Bank number " + strconv.Itoa(i+1)
	}
	tests := []struct {
		name      string
		screen    Screen
		limit     int
		wantPages int
	}{
		{"a short list fits one page", Screen{Title: textChooseBank, Items: []string{"Access Bank", "GTBank", "Kuda"}}, 160, 1},
		{"a long list pages", Screen{Title: textChooseBank, Items: many}, 160, 8},
		{"a long list pages on a small budget", Screen{Title: textChooseBank, Items: many}, 40, 40},
		{"a back list pages", Screen{Title: textChooseBank, Items: many, Back: true}, 182, 7},
		{"a list without header pages", Screen{Items: many}, 80, 13},
		{"a lone over-long label is shortened not split",
			Screen{Title: textChooseBank, Items: []string{strings.Repeat("Very long bank name ", 15), "Kuda"}}, 160, 2},
		{"every over-long label is shortened on its own page",
			Screen{Items: []string{strings.Repeat("x", 200), strings.Repeat("y", 200), strings.Repeat("z", 200)}}, 40, 3},
		{"a lone shortened label under a full header still shows a character",
			Screen{Notice: textInvalidChoice, Items: []string{"}" + strings.Repeat("z", 60), "Kuda"}, Back: true}, 40, 2},
		{"over-long extension characters are shortened whole",
			Screen{Items: []string{strings.Repeat("€[", 100), "ok"}}, 40, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := len(walkPages(t, tt.screen, tt.limit)), tt.wantPages
			if got != want {
				t.Errorf("%d pages, want %d", got, want)
			}
		})
	}
}

func TestRenderPageContents(t *testing.T) {
	banks := []string{"Access Bank", "GTBank", "Kuda", "Opay", "Zenith Bank"}
	tests := []struct {
		name   string
		screen Screen
		limit  int
		want   string
	}{
		{"options are numbered from 1 with exit",
			Screen{Title: textChooseBank, Items: banks[:3]}, 160,
			textChooseBank + "\n1. Access Bank\n2. GTBank\n3. Kuda\n0 Exit"},
		{"a later page numbers from 1 again",
			Screen{Title: "Choose:", Items: banks, Offset: 3}, 160,
			"Choose:\n1. Opay\n2. Zenith Bank\n0 Exit"},
		{"back replaces exit",
			Screen{Title: "Choose:", Items: banks[:1], Back: true}, 160,
			"Choose:\n1. Access Bank\n0 Back"},
		{"more comes before navigation when options remain",
			Screen{Title: "Choose:", Items: banks}, 50,
			"Choose:\n1. Access Bank\n2. GTBank\n98 More\n0 Exit"},
		{"the notice appears first on a list",
			Screen{Notice: textInvalidChoice, Title: "Choose:", Items: banks[:2]}, 160,
			textInvalidChoice + "\nChoose:\n1. Access Bank\n2. GTBank\n0 Exit"},
		{"a title with curly quotes is transliterated",
			Screen{Title: "Banks matching “GT” – all:", Items: banks[1:2], Back: true}, 160,
			"Banks matching \"GT\" - all:\n1. GTBank\n0 Back"},
		{"labels are transliterated",
			Screen{Items: []string{"Société Générale 🏦", "Ecobank—Retail"}}, 160,
			"1. Societe Generale\n2. Ecobank-Retail\n0 Exit"},
		{"a prompt with exit ends with 0 Exit",
			Screen{Prompt: "Enter your password", Exit: true}, 160,
			"Enter your password\n0 Exit"},
		{"a prompt screen shows title, then prompt, then exit",
			Screen{Title: "Log in to GTBank", Prompt: "Enter your User ID", Exit: true}, 160,
			"Log in to GTBank\nEnter your User ID\n0 Exit"},
		{"the notice appears first on a prompt",
			Screen{Notice: textDigitsOnly, Prompt: "Account number", Exit: true}, 160,
			textDigitsOnly + "\nAccount number\n0 Exit"},
		{"a prompt without exit has no navigation",
			Screen{Prompt: "Reply 1 to continue"}, 160,
			"Reply 1 to continue"},
		{"an offset past the list shows only the header",
			Screen{Title: "Choose:", Items: banks, Offset: 5, Exit: true}, 160,
			"Choose:\n0 Exit"},
		{"a negative offset shows the first page",
			Screen{Title: "Choose:", Items: banks[:1], Offset: -3}, 160,
			"Choose:\n1. Access Bank\n0 Exit"},
		{"a long prompt is shortened to keep 0 Exit",
			Screen{Prompt: strings.Repeat("x", 100), Exit: true}, 40,
			strings.Repeat("x", 33) + "\n0 Exit"},
		{"an end screen has no exit",
			Screen{Title: textGoodbye, End: true}, 160,
			textGoodbye},
		{"an end screen has no exit even when exit is set",
			Screen{Title: textGoodbye, End: true, Exit: true}, 160,
			textGoodbye},
		{"a long end screen is cut to the limit",
			Screen{Title: strings.Repeat("x", 300), End: true}, 160,
			strings.Repeat("x", 160)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := tt.screen.Render(tt.limit).Text, tt.want
			if got != want {
				t.Errorf("Render(%d) =\n%s\nwant\n%s", tt.limit, got, want)
			}
		})
	}
}

// TestRenderHeaderOnly checks header-only screens at every limit, long
// headers included: within the limit, the notice first when it fits,
// "0 Exit" last on prompts, and never on End screens.
func TestRenderHeaderOnly(t *testing.T) {
	long := strings.Repeat("Please type the one-time password your bank sent you by SMS. ", 4)
	tests := []struct {
		name     string
		screen   Screen
		wantExit bool
	}{
		{"a prompt with exit ends with 0 Exit", Screen{Prompt: "Enter your password", Exit: true}, true},
		{"a titled prompt with exit ends with 0 Exit", Screen{Title: "GTBank login", Prompt: "User ID", Exit: true}, true},
		{"a prompt with a notice ends with 0 Exit",
			Screen{Notice: textInvalidChoice, Title: "GTBank login", Prompt: "User ID", Exit: true}, true},
		{"a long prompt still ends with 0 Exit", Screen{Prompt: long, Exit: true}, true},
		{"a long title, notice and prompt still end with 0 Exit",
			Screen{Notice: textInvalidChoice, Title: long, Prompt: "Enter your OTP", Exit: true}, true},
		{"a prompt with extension characters ends with 0 Exit",
			Screen{Prompt: strings.Repeat("[€]", 80), Exit: true}, true},
		{"an end screen has no exit", Screen{Title: textFailed, End: true}, false},
		{"an end screen with exit set has no exit", Screen{Title: textFailed, End: true, Exit: true}, false},
		{"a long end screen has no exit", Screen{Notice: textInvalidChoice, Title: long, End: true, Exit: true}, false},
		{"a screen without exit has no exit", Screen{Title: "Please wait", Prompt: "Reply 1 to continue"}, false},
	}
	for _, tt := range tests {
		for _, limit := range screenLimits {
			t.Run(tt.name+"/"+strconv.Itoa(limit), func(t *testing.T) {
				p := tt.screen.Render(limit)
				if got, want := gsm.Units(p.Text), limit; got > want {
					t.Fatalf("%q: %d units, want at most %d", p.Text, got, want)
				}
				if !gsm.Valid(p.Text) {
					t.Fatalf("%q is not GSM-7", p.Text)
				}
				if got, want := p.End, tt.screen.End; got != want {
					t.Errorf("End = %v, want %v", got, want)
				}
				if got, want := p.Shown, 0; got != want {
					t.Errorf("Shown = %d, want %d", got, want)
				}
				lines := strings.Split(p.Text, "\n")
				if got, want := lines[len(lines)-1] == "0 Exit", tt.wantExit; got != want {
					t.Errorf("%q: ends with 0 Exit = %v, want %v", p.Text, got, want)
				}
				if !tt.wantExit && strings.Contains(p.Text, "0 Exit") {
					t.Errorf("%q shows 0 Exit", p.Text)
				}
				// What to type matters most, then why the screen is shown
				// again, then the title.
				n, pr := clean(tt.screen.Notice), clean(tt.screen.Prompt)
				if pr != "" && !strings.Contains(p.Text, gsm.Cut(pr, 10)) {
					t.Errorf("%q lacks the prompt %q", p.Text, pr)
				}
				if n != "" && pr != "" && gsm.Units(n)+1+gsm.Units(pr)+len("\n0 Exit") <= limit && !strings.HasPrefix(p.Text, n+"\n") {
					t.Errorf("%q does not start with the notice %q", p.Text, n)
				}
				if pr == "" && !strings.HasPrefix(p.Text, gsm.Cut(clean(tt.screen.Notice+"\n"+tt.screen.Title), 10)) {
					t.Errorf("%q does not start with the header", p.Text)
				}
			})
		}
	}
}

// TestRenderNoticeFirst checks that a notice within the header's share of
// the budget opens every list page.
func TestRenderNoticeFirst(t *testing.T) {
	items := make([]string, 30)
	for i := range items {
		items[i] = "Microfinance Bank " + strconv.Itoa(i)
	}
	notices := []string{textInvalidChoice, textBankUnavailable, textDigitsOnly}
	for _, limit := range screenLimits {
		for _, notice := range notices {
			// The header's share: half the budget, less what the first option
			// needs to show at least "1. " and one character on a page with
			// "98 More" and navigation.
			if share := min(limit/2, limit-21); gsm.Units(notice) > share {
				continue // longer than the header may be on a list
			}
			t.Run(strconv.Itoa(limit)+"/"+notice, func(t *testing.T) {
				for _, p := range walkPages(t, Screen{Notice: notice, Title: textChooseBank, Items: items}, limit) {
					if got, want := strings.SplitN(p.Text, "\n", 2)[0], notice; got != want {
						t.Fatalf("first line %q, want %q", got, want)
					}
				}
			})
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("", textChooseBank, "", "Access Bank\x1fGTBank\x1fKuda", 0, 160, false, false, false)
	f.Add(textInvalidChoice, "Banks matching “GT”:", "", "GTBank\x1fGT Microfinance", 0, 40, true, false, false)
	f.Add("", "GTBank login", "Enter your password", "", 0, 160, false, true, false)
	f.Add("", textGoodbye, "", "", 0, 182, false, true, true)
	f.Add(textDigitsOnly, strings.Repeat("Société Générale — ", 10), "Account number 🏦", "", 0, 80, false, true, false)
	f.Add("", "Choose:", "", strings.Repeat("€[]^ long label ", 20)+"\x1fok\x1f中文", 1, 40, true, false, false)
	f.Add("", "", "", "a\x1fb\x1fc", 5, 20, false, true, false)
	f.Fuzz(func(t *testing.T, notice, title, prompt, items string, offset, limit int, back, exit, end bool) {
		sc := Screen{Notice: notice, Title: title, Prompt: prompt, Offset: offset, Back: back, Exit: exit, End: end}
		if len(notice) > 3 { // the navigation's words and the aside, from the same bytes
			sc.Words = Words{More: notice[:1], Back: notice[1:2], Exit: notice[2:3]}
			sc.Aside = "99 " + notice[3:]
		}
		if items != "" {
			sc.Items = strings.Split(items, "\x1f")
		}
		p := sc.Render(limit)
		max := max(limit, 20)
		if got := gsm.Units(p.Text); got > max {
			t.Fatalf("Render(%d) = %q: %d units, want at most %d", limit, p.Text, got, max)
		}
		if !gsm.Valid(p.Text) {
			t.Fatalf("Render(%d) = %q, not GSM-7", limit, p.Text)
		}
		if p.Shown < 0 || p.Shown > len(sc.Items) {
			t.Fatalf("Render(%d) shows %d of %d options", limit, p.Shown, len(sc.Items))
		}
	})
}

// FuzzOneLineTakesTheShortcutOnlyWhenNothingChanges holds oneLine's
// shortcut for text already tidy to the full rule: transliterated, then
// its words joined by single spaces.
func FuzzOneLineTakesTheShortcutOnlyWhenNothingChanges(f *testing.F) {
	for _, s := range []string{"", "GTBank", "Access Bank", " lead", "trail ", "two  spaces", "tab\there",
		"new\nline", "back`tick", "Société Générale", "€[]^", "\x7f", "a b c", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := oneLine(s), strings.Join(strings.Fields(gsm.Transliterate(s)), " "); got != want {
			t.Fatalf("oneLine(%q) = %q, want %q", s, got, want)
		}
	})
}
