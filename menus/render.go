package menus

import (
	"strconv"
	"strings"

	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/screen"
)

// endTexts is the END screen for each way a session ends without a link.
var endTexts = map[string]string{
	ReasonExit:         textGoodbye,
	ReasonTooManyTries: textTooManyTries,
	ReasonUnavailable:  textUnavailable,
	ReasonFailed:       textFailed,
	ReasonNoBanks:      textNoBanks,
	ReasonExpired:      textExpired,
	ReasonLocked:       textLocked,
	ReasonBankLocked:   textBankLocked,
}

// render fits the session's screen to the budget, remembers which options
// it showed, and clears the one-time notice.
func (t *turn) render(limit int) link.Reply {
	sc := t.screen()
	sc.Words = t.words()
	page := sc.Render(limit)
	t.s.List.Shown = page.Shown
	t.s.Notice = ""
	return link.Reply{Text: page.Text, End: page.End}
}

// screen describes what the session's state shows.
func (t *turn) screen() screen.Screen {
	s := t.s
	sc := screen.Screen{Notice: t.sayNotice(s.Notice), Offset: s.List.Offset, Back: len(s.List.Prev) > 0}
	switch s.State {
	case StateBanks:
		banks, _ := t.e.banks.Get(t.bounded)
		shown := filterBanks(banks, s.Filter)
		sc.Title = t.say(textChooseBank)
		if s.List.Offset > 0 {
			sc.Title = t.say(textMoreBanks)
		}
		if s.Filter != "" {
			sc.Title = t.say(textMatching)
			sc.Back = true
		}
		for _, b := range shown {
			sc.Items = append(sc.Items, b.Name)
		}
		if s.Filter == "" && len(t.e.languages()) > 1 {
			sc.Aside = inputLanguage + " " + t.say(textChangeLanguage)
		}
	case StateLanguage:
		sc.Title = t.say(textChooseLanguage)
		for _, code := range t.e.languages() {
			sc.Items = append(sc.Items, t.e.words.Name(code))
		}
	case StateMethods:
		sc.Title = s.Bank.Name + ": " + t.say(textChooseMethod)
		sc.Back = true // a bank picked by mistake is left with 0
		for _, m := range s.Bank.Methods {
			sc.Items = append(sc.Items, t.methodName(m))
		}
	case StateCredentials, StateChallenge:
		if s.Field < len(s.Form.Fields) {
			p := s.Form.Prompt(s.Field)
			p.Prompt = t.say("type_field", "field", p.Prompt) // Mono's English hint, in the user's words
			p.Notice = t.sayNotice(s.Notice)
			p.Back = s.State == StateCredentials && s.Bank != nil && s.InviteKind != link.InviteReauth
			return p
		}
	case StateAccounts:
		sc.Title = t.say(textChooseAccount)
		for _, a := range s.Accounts {
			sc.Items = append(sc.Items, accountLabel(a))
		}
	case StateWaiting, StateReauth:
		sc.Title = t.say(textWaiting)
		sc.Items = []string{t.say(textCheckAgain)}
	case StateResume:
		bank := ""
		if s.Bank != nil {
			bank = s.Bank.Name
		}
		sc.Title = t.say("resume", "bank", bank)
		sc.Items = []string{t.say(textContinue), t.say(textStartOver)}
	case StateLinked:
		bank, masked := "", ""
		if s.Link != nil {
			bank, masked = s.Link.Bank, s.Link.Masked
		}
		switch {
		case s.Reason == ReasonReauthorised && bank == "":
			return screen.Screen{Title: t.say("reauthorised_any"), End: true}
		case s.Reason == ReasonReauthorised:
			return screen.Screen{Title: t.say("reauthorised", "bank", bank), End: true}
		case masked == "":
			return screen.Screen{Title: t.say("linked_unmasked", "bank", bank), End: true}
		}
		return screen.Screen{Title: t.say("linked", "bank", bank, "masked", masked), End: true}
	case StateEnded:
		if s.Reason == ReasonHandover {
			if s.Handover == t.e.cfg.ServiceCode {
				return screen.Screen{Title: t.say("handover_dial", "dial", s.Handover), End: true}
			}
			minutes := strconv.Itoa(int(t.e.cfg.HandoverTTL.Minutes()))
			return screen.Screen{Title: t.say("handover", "dial", s.Handover, "minutes", minutes), End: true}
		}
		text, ok := endTexts[s.Reason]
		if !ok {
			text = textFailed
		}
		return screen.Screen{Title: t.say(text), End: true}
	}
	return sc
}

// methodName is how an auth method is offered: Mono's name in English, the
// catalogue's words for the two known methods otherwise (and when Mono
// names none), its type for any other.
func (t *turn) methodName(m mono.AuthMethod) string {
	english := t.s.Lang == "" || t.s.Lang == lang.English
	switch {
	case m.Name != "" && english:
		return m.Name
	case m.Type == mono.InternetBanking:
		return t.say("method_internet")
	case m.Type == mono.MobileBanking:
		return t.say("method_mobile")
	case m.Name != "":
		return m.Name
	}
	return humanize(m.Type)
}

// accountLabel shows an account as its type or name, masked number and
// currency: "Savings ****7338 NGN".
func accountLabel(a mono.Account) string {
	name := strings.TrimSpace(a.Name)
	if a.Type != "" {
		name = humanize(strings.ToLower(strings.TrimSuffix(a.Type, "_ACCOUNT")))
	}
	parts := []string{name, mono.Mask(a.AccountNumber), a.Currency}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}
