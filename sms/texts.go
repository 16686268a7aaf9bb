package sms

import (
	"fmt"
	"strings"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/link"
)

// Texts renders every text message the gateway sends; the words live here,
// in one place. Each is GSM 7-bit and at most 160 characters: names that
// would overflow are shortened, never the code to dial.
type Texts struct {
	PartnerName string          // who the customer links their account for
	Enabled     map[string]bool // kinds switched on; a kind missing is off
}

// maxText is one SMS of GSM 7-bit text.
const maxText = 160

// Render returns the message for a text intent, or false when its kind is
// switched off.
func (t Texts) Render(x link.Text) (string, bool) {
	if x.Kind != link.TextReply && !t.Enabled[x.Kind] {
		return "", false
	}
	d := x.Data
	partner := strings.TrimSpace(t.PartnerName)
	if r := []rune(partner); len(r) > 24 {
		partner = string(r[:24]) // a long name must not push the code out of the message
	}
	var s string
	switch x.Kind {
	case link.TextReply:
		s = d["text"]
	case link.TextReceipt:
		if partner != "" {
			s = fmt.Sprintf("Your %s account %s is now linked to %s. If this was not you, call %s.", bank(d), d["masked"], partner, partner)
		} else {
			s = fmt.Sprintf("Your %s account %s is now linked. If this was not you, call your bank.", bank(d), d["masked"])
		}
	case link.TextInvitation:
		who := "You are invited"
		if partner != "" {
			who = partner + " invites you"
		}
		if d["kind"] == link.InviteReauth {
			s = fmt.Sprintf("%s to re-authorise your %s account. Dial %s from this phone before %s.", who, bank(d), d["dial"], d["expires"])
		} else {
			s = fmt.Sprintf("%s to link your bank account. Dial %s from this phone before %s.", who, d["dial"], d["expires"])
		}
	case link.TextLateOutcome:
		switch d["outcome"] {
		case "linked":
			s = fmt.Sprintf("Your bank answered: your %s account %s is now linked. Thank you.", bank(d), d["masked"])
		case "continue":
			s = fmt.Sprintf("Your bank answered. Dial %s within 10 minutes and choose Continue to finish linking your %s account.", d["dial"], bank(d))
		default:
			s = fmt.Sprintf("We could not link your %s account. Nothing was linked. Dial %s to try again.", bank(d), d["dial"])
		}
	case link.TextReauthNudge:
		prefix := ""
		if partner != "" {
			prefix = partner + ": "
		}
		s = fmt.Sprintf("%syour %s account needs you to log in again. Dial %s from this phone to re-authorise it.", prefix, bank(d), d["dial"])
		s = strings.ToUpper(s[:1]) + s[1:]
	default:
		return "", false
	}
	return fit(gsm.Transliterate(s)), true
}

// bank is the bank's name, shortened to keep a message to one SMS, or
// "bank".
func bank(d map[string]string) string {
	b := strings.TrimSpace(d["bank"])
	if b == "" {
		return "bank"
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
