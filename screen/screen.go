// Package screen fits a USSD screen into a handset's budget: a header and
// a numbered list of options, transliterated to GSM-7, paged with 98 More
// and 0 Back, never splitting an option or a header line.
package screen

import (
	"strconv"
	"strings"

	"github.com/ussdlink/ussdlink/gsm"
)

// Navigation inputs understood on every list screen.
const (
	InputMore = "98" // next page of a list
	InputBack = "0"  // previous page, or exit on a first page and on prompts
)

// Screen is one USSD screen before it is fitted to a handset's budget: a
// header (notice, title, prompt) and, for menus, a list of options that is
// paged from Offset.
type Screen struct {
	Notice string   // one line saying why the screen is shown again ("Invalid choice")
	Title  string   // what the screen is about
	Prompt string   // what to type, on free-text screens
	Items  []string // options of a menu, numbered from 1 on each page
	Offset int      // index in Items of this page's first option
	Back   bool     // 0 goes to the previous page rather than exiting
	Exit   bool     // show "0 Exit" on a screen without options
	End    bool     // the session ends with this screen
	// Words are the navigation's words in the user's language; empty
	// ones are English.
	Words Words
	// Aside is one more option line shown just above the navigation of a
	// menu ("99 Language"), kept within the budget like it.
	Aside string
}

// Words name the navigation options: "More" after 98, "Back" and "Exit"
// after 0.
type Words struct {
	More, Back, Exit string
}

// or is w in one GSM-7 line each, with English for what it leaves empty.
func (w Words) or() Words {
	w.More, w.Back, w.Exit = oneLine(w.More), oneLine(w.Back), oneLine(w.Exit)
	if w.More == "" {
		w.More = "More"
	}
	if w.Back == "" {
		w.Back = "Back"
	}
	if w.Exit == "" {
		w.Exit = "Exit"
	}
	return w
}

// Page is a Screen fitted to a budget: the text to send and which options it
// holds, so that the next input can be matched to what the user saw.
type Page struct {
	Text  string
	Shown int  // options shown, numbered 1..Shown
	More  bool // options remain after this page: 98 shows them
	End   bool
}

// Render fits the screen into limit GSM-7 units. Every text is
// transliterated to GSM-7 first; an option is never split across pages, and
// every page of a non-empty list shows at least one option.
func (s Screen) Render(limit int) Page {
	if limit < 20 {
		limit = 20
	}
	if s.Offset < 0 {
		s.Offset = 0 // a corrupt offset shows the first page rather than panicking
	}
	if len(s.Items) == 0 || s.Offset >= len(s.Items) {
		if !s.Exit || s.End {
			return Page{Text: s.header(limit), End: s.End}
		}
		// "0 Exit" (or "0 Back") is how a prompt is left: the header is
		// shortened, never it.
		w := s.Words.or()
		exit := InputBack + " " + w.Exit
		if s.Back {
			exit = InputBack + " " + w.Back
		}
		if head := s.header(limit - gsm.Units(exit) - 1); head != "" {
			exit = head + "\n" + exit
		}
		return Page{Text: exit}
	}

	w := s.Words.or()
	nav := InputBack + " " + w.Exit
	if s.Back {
		nav = InputBack + " " + w.Back
	}
	more := InputMore + " " + w.More
	if s.Aside != "" {
		nav = oneLine(s.Aside) + "\n" + nav
	}
	// The header may use at most half the budget, and must leave room for the
	// first option's number and one character of it (two units, should that be
	// an extension character), "98 More", the navigation and three newlines,
	// so options always fit.
	room := len("1. ") + 2 + 1 + gsm.Units(more) + 1 + gsm.Units(nav) + 1
	head := s.header(min(limit/2, limit-room))
	for {
		used := gsm.Units(head) + 1 + gsm.Units(nav)
		if head == "" {
			used = gsm.Units(nav)
		}
		var lines []string
		for i := s.Offset; i < len(s.Items); i++ {
			n := len(lines) + 1
			label := strconv.Itoa(n) + ". " + oneLine(s.Items[i])
			cost := gsm.Units(label) + 1
			reserve := 0
			if i < len(s.Items)-1 {
				reserve = gsm.Units(more) + 1
			}
			if used+cost+reserve > limit {
				if len(lines) == 0 {
					// A lone option longer than the page is shortened, never split.
					label = gsm.Cut(label, limit-used-reserve-1)
					lines = append(lines, label)
				}
				break
			}
			lines = append(lines, label)
			used += cost
		}
		shown := len(lines)
		hasMore := s.Offset+shown < len(s.Items)
		if hasMore {
			lines = append(lines, more)
		}
		lines = append(lines, nav)
		if head != "" {
			lines = append([]string{head}, lines...)
		}
		text := strings.Join(lines, "\n")
		if gsm.Units(text) <= limit || head == "" {
			return Page{Text: gsm.Cut(text, limit), Shown: shown, More: hasMore, End: s.End}
		}
		head = "" // unreachable with sane limits; drop the header rather than overflow
	}
}

// header returns the notice, title and prompt within budget units. When they
// do not all fit, the title goes first, then the notice: what to type
// matters most, then why the screen is shown again. A notice or title is
// shown whole or not at all, never cut mid-phrase; only a prompt too long
// for the budget on its own is shortened, since without it nobody knows
// what to type.
func (s Screen) header(budget int) string {
	notice, title, prompt := oneLine(s.Notice), oneLine(s.Title), oneLine(s.Prompt)
	tries := [][]string{{notice, title, prompt}}
	if prompt != "" {
		tries = append(tries, []string{notice, prompt}, []string{prompt})
	} else {
		tries = append(tries, []string{notice}, []string{title})
	}
	for _, lines := range tries {
		if text := joinLines(lines); text != "" && gsm.Units(text) <= budget {
			return text
		}
	}
	switch {
	case prompt != "":
		return gsm.Cut(prompt, budget)
	case s.End && notice == "":
		return gsm.Cut(title, budget) // an END screen's message is all it has
	}
	return ""
}

// joinLines joins the non-empty lines with newlines.
func joinLines(lines []string) string {
	kept := lines[:0:0]
	for _, l := range lines {
		if l != "" {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// oneLine transliterates text from Mono to GSM-7 on a single line, so a
// stray newline in a bank name cannot forge a line such as "98 More".
func oneLine(s string) string {
	if tidy(s) {
		return s // as bank names and hints nearly always are: nothing to copy
	}
	return strings.Join(strings.Fields(gsm.Transliterate(s)), " ")
}

// tidy reports whether s is already what oneLine makes of it: printable
// ASCII that Transliterate keeps as it is, its words one space apart.
func tidy(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if i == 0 || i == len(s)-1 || s[i-1] == ' ' {
				return false
			}
		case c == '\n' || !gsm.KeptASCII(c):
			return false
		}
	}
	return true
}
