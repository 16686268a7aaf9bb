package sms

import (
	"strings"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/link"
)

// Texts renders every text message the gateway sends, in the words of the
// catalogue (package lang) and the phone's language. Each is GSM 7-bit and
// at most 160 characters: names that would overflow are shortened, never
// the code to dial.
type Texts struct {
	PartnerName string          // who the customer links their account for
	Enabled     map[string]bool // kinds switched on; a kind missing is off
	// Words is the catalogue (nil: the embedded one); Language the one a
	// text is said in when neither it (Data["lang"]) nor its phone names
	// one.
	Words    *lang.Catalogue
	Language string
}

// maxText is one SMS of GSM 7-bit text.
const maxText = 160

// LangKey is the Data key of a text's language, set by what queued it when
// it knows (the session's language, the invitation's).
const LangKey = "lang"

// Render returns the message for a text intent, or false when its kind is
// switched off.
func (t Texts) Render(x link.Text) (string, bool) {
	if x.Kind != link.TextReply && !t.Enabled[x.Kind] {
		return "", false
	}
	d := x.Data
	words := t.Words
	if words == nil {
		words = defaultWords()
	}
	code := orDefault(d[LangKey], t.Language)
	say := func(key string, args ...string) string { return words.Text(code, key, args...) }
	partner := strings.TrimSpace(t.PartnerName)
	if r := []rune(partner); len(r) > 24 {
		partner = string(r[:24]) // a long name must not push the code out of the message
	}
	b := bank(d, say("sms_bank"))
	var s string
	switch x.Kind {
	case link.TextReply:
		s = d["text"]
	case link.TextReceipt:
		if partner != "" {
			s = say("sms_receipt_partner", "bank", b, "masked", d["masked"], "partner", partner)
		} else {
			s = say("sms_receipt", "bank", b, "masked", d["masked"])
		}
	case link.TextInvitation:
		key := "sms_invite"
		if d["kind"] == link.InviteReauth {
			key = "sms_reauth_invite"
		}
		if partner != "" {
			key += "_partner"
		}
		s = say(key, "partner", partner, "bank", b, "dial", d["dial"], "expires", d["expires"])
	case link.TextLateOutcome:
		switch d["outcome"] {
		case "linked":
			s = say("sms_late_linked", "bank", b, "masked", d["masked"])
		case "continue":
			s = say("sms_late_continue", "bank", b, "dial", d["dial"])
		default:
			s = say("sms_late_failed", "bank", b, "dial", d["dial"])
		}
	case link.TextReauthNudge:
		if partner != "" {
			s = say("sms_nudge_partner", "partner", partner, "bank", b, "dial", d["dial"])
		} else {
			s = say("sms_nudge", "bank", b, "dial", d["dial"])
		}
	default:
		return "", false
	}
	return fit(gsm.Transliterate(s)), true
}

// defaultWords is the catalogue used when none was given: the built-in
// one (lang.Embedded).
func defaultWords() *lang.Catalogue { return lang.Embedded() }

// bank is the bank's name, shortened to keep a message to one SMS, or the
// word for a bank when there is none.
func bank(d map[string]string, word string) string {
	b := strings.TrimSpace(d["bank"])
	if b == "" {
		return word
	}
	if r := []rune(b); len(r) > 24 {
		b = string(r[:24])
	}
	return b
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// fit keeps a message within one SMS, cutting at a word.
func fit(s string) string {
	if gsm.Units(s) <= maxText {
		return s
	}
	r := []rune(s)
	for gsm.Units(string(r)) > maxText-3 {
		r = r[:len(r)-1]
	}
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > maxText/2 {
		cut = cut[:i]
	}
	return cut + "..."
}
