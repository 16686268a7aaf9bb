package menus

import (
	"strconv"
	"strings"
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
	header := make([]string, 0, 3)
	for _, t := range []string{s.Notice, s.Title, s.Prompt} {
		if t = strings.TrimSpace(Transliterate(t)); t != "" {
			header = append(header, t)
		}
	}
	if len(s.Items) == 0 || s.Offset >= len(s.Items) {
		lines := header
		if s.Exit && !s.End {
			lines = append(lines, InputBack+" Exit")
		}
		return Page{Text: fit(lines, limit), End: s.End}
	}

	nav := InputBack + " Exit"
	if s.Back {
		nav = InputBack + " Back"
	}
	more := InputMore + " More"
	// The header may use at most half the budget, so options always fit.
	head := fit(header, limit/2)
	for {
		used := Units(head) + 1 + Units(nav)
		if head == "" {
			used = Units(nav)
		}
		var lines []string
		for i := s.Offset; i < len(s.Items); i++ {
			n := len(lines) + 1
			label := strconv.Itoa(n) + ". " + strings.TrimSpace(Transliterate(s.Items[i]))
			cost := Units(label) + 1
			reserve := 0
			if i < len(s.Items)-1 {
				reserve = Units(more) + 1
			}
			if used+cost+reserve > limit {
				if len(lines) == 0 {
					// A lone option longer than the page is shortened, never split.
					label = cut(label, limit-used-reserve-1)
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
		if Units(text) <= limit || head == "" {
			return Page{Text: cut(text, limit), Shown: shown, More: hasMore, End: s.End}
		}
		head = "" // unreachable with sane limits; drop the header rather than overflow
	}
}

// fit joins lines and shortens the result to limit units, dropping whole
// lines from the end first (the notice and title matter more than a footer),
// then cutting the last line kept.
func fit(lines []string, limit int) string {
	text := strings.Join(lines, "\n")
	if Units(text) <= limit {
		return text
	}
	return strings.TrimRight(cut(text, limit), "\n")
}
