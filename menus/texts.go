package menus

import (
	"strconv"
	"strings"

	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/screen"
)

// Every sentence a user reads is a message of the catalogue (package lang),
// in the session's language. These are their keys. A notice (Session.Notice)
// is stored as its key, with any values after it ("too_long|max=12"), and
// put into words when shown, so a session's language can change under it.
const (
	textChooseBank         = "choose_bank"
	textMoreBanks          = "more_banks"
	textChooseMethod       = "choose_method"
	textChooseAccount      = "choose_account"
	textInvalidChoice      = "invalid_choice"
	textEmpty              = "empty"
	textUnreadable         = "unreadable"
	textDigitsOnly         = "digits_only"
	textLoginFailed        = "login_failed"
	textAnswerRejected     = "answer_rejected"
	textGoodbye            = "goodbye"
	textTooManyTries       = "too_many_tries"
	textUnavailable        = "unavailable"
	textFailed             = "failed"
	textNoBanks            = "no_banks"
	textSessionOver        = "session_over"
	textExpired            = "expired"
	textBankUnavailable    = "bank_unavailable"
	textWaiting            = "waiting"
	textCheckAgain         = "check_again"
	textNoAnswer           = "no_answer"
	textNoAnswerRetype     = "no_answer_retype"
	textNewCode            = "new_code"
	textStartedAgain       = "started_again"
	textBankLocked         = "bank_locked"
	textRetype             = "retype"
	textBankSessionExpired = "bank_session_expired"
	textLocked             = "locked"
	textContinue           = "continue"
	textBusy               = "busy"
	textStartOver          = "start_over"
	textNoMatch            = "no_match"
	textMatching           = "matching"
	textChooseLanguage     = "choose_language"
	textChangeLanguage     = "change_language"
)

// What was typed is never repeated on a screen: a password typed into the
// wrong screen must not come back in a reply, a stored screen or a text.

// textTooLong says how long a field may be: a notice with its value.
func textTooLong(max int) string { return notice("too_long", "max", strconv.Itoa(max)) }

// notice is a stored notice: the message key and its values.
func notice(key string, args ...string) string {
	var b strings.Builder
	b.WriteString(key)
	for i := 0; i+1 < len(args); i += 2 {
		b.WriteString("|" + args[i] + "=" + strings.ReplaceAll(args[i+1], "|", "/"))
	}
	return b.String()
}

// say is a message in the session's language.
func (t *turn) say(key string, args ...string) string {
	return t.e.words.Text(t.s.Lang, key, args...)
}

// sayNotice puts a stored notice into words. A notice from before the
// catalogue (English text, not a key) comes back as it was.
func (t *turn) sayNotice(n string) string {
	if n == "" {
		return ""
	}
	key, rest, _ := strings.Cut(n, "|")
	var args []string
	for _, kv := range strings.Split(rest, "|") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			args = append(args, k, v)
		}
	}
	return t.say(key, args...)
}

// words are the navigation's words in the session's language: worked out
// once per language at start (Engine.offer), not on every screen.
func (t *turn) words() screen.Words {
	if w, ok := t.e.nav[t.s.Lang]; ok {
		return w
	}
	return navWords(t.e.words, t.s.Lang)
}

// navWords are the navigation's words in a language.
func navWords(c *lang.Catalogue, code string) screen.Words {
	return screen.Words{More: c.Text(code, "nav_more"), Back: c.Text(code, "nav_back"), Exit: c.Text(code, "nav_exit")}
}

// defaultWords is the catalogue used when none was given: the built-in
// one (lang.Embedded).
func defaultWords() *lang.Catalogue { return lang.Embedded() }
