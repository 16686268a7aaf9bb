package menus

import (
	"slices"

	"github.com/ussdlink/ussdlink/lang"
)

// inputLanguage, on the first screen, opens the choice of language: never
// a bank's number (a page numbers at most nine), nor 98 (More) or 0.
const inputLanguage = "99"

// languages are the languages offered, in order: the configured ones the
// catalogue holds; none configured, the default language alone.
func (e *Engine) languages() []string {
	if len(e.cfg.Languages) == 0 {
		return []string{e.defaultLanguage()}
	}
	out := make([]string, 0, len(e.cfg.Languages))
	for _, code := range e.cfg.Languages {
		if e.words.Has(code) {
			out = append(out, code)
		}
	}
	return out
}

// defaultLanguage is the one spoken until a phone chooses.
func (e *Engine) defaultLanguage() string {
	if d := e.cfg.DefaultLanguage; d != "" && e.words.Has(d) {
		return d
	}
	return lang.English
}

// knowLanguage sets a new session's language: the one its phone chose
// before, else the default. It reports whether to ask the phone (several
// languages offered, none chosen yet).
func (t *turn) knowLanguage() bool {
	if t.s.Lang != "" {
		return false
	}
	t.s.Lang = t.e.defaultLanguage()
	offered := t.e.languages()
	code, err := t.e.store.PhoneLanguage(t.ctx, t.s.Phone)
	if err != nil {
		t.log.Warn().Err(err).Msg("phone language unavailable: the default is spoken")
		return false
	}
	if code != "" && slices.Contains(offered, code) {
		t.s.Lang = code
		return false
	}
	return len(offered) > 1
}

// useLanguage speaks code from now on and remembers it for the phone, when
// it is one of those offered (a shortcut's, an invitation's, the user's
// choice).
func (t *turn) useLanguage(code string) bool {
	if !slices.Contains(t.e.languages(), code) {
		return false
	}
	t.s.Lang, t.langChosen = code, code
	return true
}

// onLanguage takes the choice of language.
func (t *turn) onLanguage(input string) {
	offered := t.e.languages()
	i, res := t.pick(input, len(offered))
	switch res {
	case picked:
		t.useLanguage(offered[i])
		t.fire(EventLanguage, args{})
	case leaving:
		t.end(ReasonExit)
	default:
		t.s.Notice = textInvalidChoice
	}
}
