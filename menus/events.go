package menus

import (
	"slices"
	"strings"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/reqid"
)

// emit records an event for the partner, with what every event carries:
// the partner's reference, the phone, the session, and the institution and
// auth method once known. Nothing typed is ever part of it.
func (t *turn) emit(typ string, data map[string]any) {
	if t.e.cfg.Emits == nil || !t.e.cfg.Emits(typ) {
		return
	}
	d := map[string]any{"session": t.s.ID, "phone": t.s.Phone}
	if t.s.Reference != "" {
		d["reference"] = t.s.Reference
	}
	if t.s.Bank != nil {
		d["institution"] = map[string]any{"id": t.s.Bank.ID, "name": t.s.Bank.Name}
	}
	if t.s.Method != "" {
		d["authMethod"] = t.s.Method
	}
	for k, v := range data {
		d[k] = v
	}
	t.events = append(t.events, link.Event{ID: link.NewEventID(), Type: typ, Timestamp: t.now, Data: d, RequestID: reqid.From(t.ctx)})
}

// pageNames names the screen a user left on, as the widget's EXIT does.
var pageNames = map[string]string{
	StateBanks:       "INSTITUTION_SELECTION",
	StateMethods:     "AUTH_METHOD_SELECTION",
	StateCredentials: "LOGIN",
	StateChallenge:   "MFA",
	StateAccounts:    "ACCOUNT_SELECTION",
	StateWaiting:     "LOADING",
	StateResume:      "RESUME",
	StateReauth:      "REAUTH",
}

// errorTypes names the failure behind each unhappy ending.
var errorTypes = map[string]string{
	ReasonTooManyTries: "TOO_MANY_ATTEMPTS",
	ReasonUnavailable:  "SERVICE_UNAVAILABLE",
	ReasonFailed:       "INSTITUTION_ERROR",
	ReasonNoBanks:      "SERVICE_UNAVAILABLE",
	ReasonLocked:       "LOCKED_OUT",
	ReasonBankLocked:   "ACCOUNT_LOCKED",
}

// mfaType names what a challenge form asks for, from its field names.
func mfaType(f Form) string {
	for _, fd := range f.Fields {
		switch n := strings.ToLower(fd.Name); {
		case strings.Contains(n, "otp"):
			return "OTP"
		case strings.Contains(n, "answer") || strings.Contains(n, "question"):
			return "SECURITY_QUESTION"
		case strings.Contains(n, "token"):
			return "TOKEN"
		case strings.Contains(n, "password") || strings.Contains(n, "pin"):
			return "PASSWORD"
		}
	}
	return "INPUT"
}

// linkedData is what ACCOUNT_LINKED tells the partner.
func linkedData(l *link.Link) map[string]any {
	return map[string]any{
		"account_id": l.AccountID,
		"exchange":   map[string]any{"id": l.AccountID},
		"account":    map[string]any{"masked": l.Masked, "currency": l.Currency},
		"authMethod": l.AuthMethod,
	}
}

// notify wakes the partner deliverer and the text sender after a commit
// that queued something for them.
func (t *turn) notify() {
	if len(t.events)+len(t.inviteEvents) > 0 && t.e.cfg.Notify != nil {
		t.e.cfg.Notify()
	}
	if len(t.texts) > 0 && t.e.cfg.NotifyTexts != nil {
		t.e.cfg.NotifyTexts()
	}
}

// text queues a text message to the session's phone.
func (t *turn) text(kind string, data map[string]string) {
	if t.e.cfg.Texts == nil || !t.e.cfg.Texts(kind) {
		return
	}
	if t.s.Lang != "" {
		if data == nil {
			data = map[string]string{}
		}
		data["lang"] = t.s.Lang // said in the session's language
	}
	t.texts = append(t.texts, link.Text{ID: "sms_" + link.NewEventID()[4:], Kind: kind, To: t.s.Phone, Data: data, Created: t.now})
}

// lateOutcome texts the user what their bank answered after they left the
// USSD session: linked, or the code to dial to continue.
func (t *turn) lateOutcome() {
	bank := ""
	if t.s.Bank != nil {
		bank = t.s.Bank.Name
	}
	data := map[string]string{"bank": bank, "dial": t.e.cfg.ServiceCode}
	switch {
	case t.s.State == StateLinked && t.s.Link != nil:
		data["outcome"], data["masked"] = "linked", t.s.Link.Masked
	case t.s.State == StateAccounts || t.s.State == StateChallenge:
		data["outcome"] = "continue"
	default:
		data["outcome"] = "failed"
	}
	n := len(t.texts)
	t.text(link.TextLateOutcome, data)
	if len(t.texts) > n { // one text says it all
		t.texts = slices.DeleteFunc(t.texts, func(x link.Text) bool { return x.Kind == link.TextReceipt })
	}
}

// handover ends an SMS conversation at the credentials screen when
// credentials may not be typed by text: the user gets a code that opens the
// same bank (and auth method) over USSD, valid for a few minutes.
//
// It is checked after every turn of a text conversation, so no path
// (a resumed session, a reauthorisation's OTP) asks for a secret by text.
func (t *turn) handover() {
	if t.s.Channel != link.ChannelSMS || t.e.cfg.SMSCredentials {
		return
	}
	switch {
	case t.s.State == StateChallenge || t.s.State == StateReauth || (t.s.State == StateCredentials && t.s.Bank == nil):
		// Not a login form that a code can reopen: USSD has to start it.
		t.forget()
		t.s.Handover = t.e.cfg.ServiceCode
		t.fire(EventEnd, args{reason: ReasonHandover})
		return
	case t.s.State != StateCredentials:
		return
	}
	t.forget()
	inv := t.loadInvite()
	if inv != nil && inv.Kind == link.InviteLink && inv.Status == link.StatusPending {
		// The partner's own invitation carries on over USSD, at this bank.
		inv.Institution, inv.AuthMethod, inv.Updated = t.s.Bank.ID, t.s.Method, t.now
		t.inviteChanged = true
	} else {
		inv = &link.Invite{ID: link.HandoverPrefix + link.NewEventID()[4:], Kind: link.InviteLink, Phone: t.s.Phone, Reference: t.s.Reference,
			Institution: t.s.Bank.ID, AuthMethod: t.s.Method, Status: link.StatusPending,
			Created: t.now, Updated: t.now, Expires: t.now.Add(t.e.cfg.HandoverTTL)}
		if err := t.e.store.CreateInvite(t.ctx, inv, 4, t.now); err != nil {
			t.log.Error().Err(err).Msg("hand over to USSD")
			t.end(ReasonFailed)
			return
		}
	}
	t.s.Handover = strings.TrimSuffix(t.e.cfg.ServiceCode, "#") + "*" + inv.Code + "#"
	t.fire(EventEnd, args{reason: ReasonHandover})
}
