package menus

import (
	"strings"

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
	page := t.screen().Render(limit)
	t.s.List.Shown = page.Shown
	t.s.Notice = ""
	return link.Reply{Text: page.Text, End: page.End}
}

// screen describes what the session's state shows.
func (t *turn) screen() screen.Screen {
	s := t.s
	sc := screen.Screen{Notice: s.Notice, Offset: s.List.Offset, Back: len(s.List.Prev) > 0}
	switch s.State {
	case StateBanks:
		banks, _ := t.e.banks.Get(t.bounded)
		shown := filterBanks(banks, s.Filter)
		sc.Title = textChooseBank
		if s.List.Offset > 0 {
			sc.Title = textMoreBanks
		}
		if s.Filter != "" {
			sc.Title = textMatching
			sc.Back = true
		}
		for _, b := range shown {
			sc.Items = append(sc.Items, b.Name)
		}
	case StateMethods:
		sc.Title = s.Bank.Name + ": " + textChooseMethod
		sc.Back = true // a bank picked by mistake is left with 0
		for _, m := range s.Bank.Methods {
			sc.Items = append(sc.Items, methodName(m))
		}
	case StateCredentials, StateChallenge:
		if s.Field < len(s.Form.Fields) {
			p := s.Form.Prompt(s.Field)
			p.Notice = s.Notice
			p.Back = s.State == StateCredentials && s.Bank != nil && s.InviteKind != link.InviteReauth
			return p
		}
	case StateAccounts:
		sc.Title = textChooseAccount
		for _, a := range s.Accounts {
			sc.Items = append(sc.Items, accountLabel(a))
		}
	case StateWaiting, StateReauth:
		sc.Title = textWaiting
		sc.Items = []string{textCheckAgain}
	case StateResume:
		bank := ""
		if s.Bank != nil {
			bank = s.Bank.Name
		}
		sc.Title = textResume(bank)
		sc.Items = []string{textContinue, textStartOver}
	case StateLinked:
		bank, masked := "", ""
		if s.Link != nil {
			bank, masked = s.Link.Bank, s.Link.Masked
		}
		if s.Reason == ReasonReauthorised {
			return screen.Screen{Title: textReauthorised(bank), End: true}
		}
		return screen.Screen{Title: textLinked(bank, masked), End: true}
	case StateEnded:
		if s.Reason == ReasonHandover {
			if s.Handover == t.e.cfg.ServiceCode {
				return screen.Screen{Title: textHandoverDial(s.Handover), End: true}
			}
			return screen.Screen{Title: textHandover(s.Handover, t.e.cfg.HandoverTTL), End: true}
		}
		text, ok := endTexts[s.Reason]
		if !ok {
			text = textFailed
		}
		return screen.Screen{Title: text, End: true}
	}
	return sc
}

// methodName is how an auth method is offered: Mono's name, or its type.
func methodName(m mono.AuthMethod) string {
	if m.Name != "" {
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
