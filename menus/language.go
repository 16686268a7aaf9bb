package menus

import (
	"slices"

	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/screen"
)

// inputLanguage, on the first screen, opens the choice of language: never
// a bank's number (a page of at most 182 units has room for fewer than 40
// options, numbered from 1), nor 98 (More) or 0.
const inputLanguage = "99"

// languages are the languages offered, in order: the configured ones the
// catalogue holds; none of them, the default language alone.
func (e *Engine) languages() []string { return e.offered }

// defaultLanguage is the one spoken until a phone chooses: the configured
// default when it is offered, else English when offered, else the first
// offered.
func (e *Engine) defaultLanguage() string { return e.spoken }

// offer works out, once, the languages offered and the default spoken.
func (e *Engine) offer() {
	for _, code := range e.cfg.Languages {
		if e.words.Has(code) && !slices.Contains(e.offered, code) {
			e.offered = append(e.offered, code)
		}
	}
	d := e.cfg.DefaultLanguage
	if !e.words.Has(d) {
		d = "" // the rule's own choice
	}
	if len(e.offered) == 0 {
		e.offered = []string{lang.Spoken(nil, d)}
	}
	e.nav = make(map[string]screen.Words, len(e.offered))
	for _, code := range e.offered {
		e.nav[code] = navWords(e.words, code)
	}
	e.spoken = lang.Spoken(e.offered, d)
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
	if len(offered) == 1 {
		return false // the one language offered is spoken: no choice to read
	}
	code, err := t.phoneLanguage()
	if err != nil {
		t.log.Warn().Err(err).Msg("phone language unavailable: the default is spoken")
		return false
	}
	if code != "" && slices.Contains(offered, code) {
		t.s.Lang = code
		return false
	}
	return true
}

// phoneLanguage is the language the phone chose, from the first look
// when there is one.
func (t *turn) phoneLanguage() (string, error) {
	if t.look != nil {
		return t.look.Language, nil
	}
	return t.e.store.PhoneLanguage(t.ctx, t.s.Phone)
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
