package menus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
)

// Types of the events partners hear about, named as the Connect widget
// names them, plus what Mono's own webhooks tell.
const (
	TypeOpened                = "OPENED"
	TypeInstitutionSelected   = "INSTITUTION_SELECTED"
	TypeAuthMethodSwitched    = "AUTH_METHOD_SWITCHED"
	TypeSubmitCredentials     = "SUBMIT_CREDENTIALS"
	TypeSubmitMFA             = "SUBMIT_MFA"
	TypeAccountSelected       = "ACCOUNT_SELECTED"
	TypeAccountLinked         = "ACCOUNT_LINKED"
	TypeExit                  = "EXIT"
	TypeError                 = "ERROR"
	TypeAccountReauthorised   = "ACCOUNT_REAUTHORISED"
	TypeDataStatus            = "DATA_STATUS"
	TypeReauthorisationNeeded = "REAUTHORISATION_REQUIRED"
)

// EventTypes lists every event type, for configuration checks.
var EventTypes = []string{TypeOpened, TypeInstitutionSelected, TypeAuthMethodSwitched, TypeSubmitCredentials,
	TypeSubmitMFA, TypeAccountSelected, TypeAccountLinked, TypeExit, TypeError, TypeAccountReauthorised,
	TypeDataStatus, TypeReauthorisationNeeded}

// NewEventID returns a fresh webhook id.
func NewEventID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "msg_" + hex.EncodeToString(b)
}

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
	t.events = append(t.events, Event{ID: NewEventID(), Type: typ, Timestamp: t.now, Data: d})
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

// attachInvite looks for the partner invitation this dial follows: the one
// whose code was dialled, or else the phone's pending one. It claims it for
// the session first, so that of two sessions dialling one code at once only
// one follows it (the other continues as a plain link); then it attaches its
// reference to the session and, for a reauthorisation or an invitation to
// one institution, opens it. It reports whether it chose the first screen.
func (t *turn) attachInvite() bool {
	inv, err := t.claimInvite(InviteClaim{Code: t.code})
	if err != nil {
		return false
	}
	return t.follow(inv)
}

// claimInvite claims an invitation for the session (see Store.ClaimInvite).
// The error is ErrNoInvite (none usable, or another phone's code),
// ErrInviteInUse (held by another live session of this phone) or the
// store's, which is logged.
func (t *turn) claimInvite(c InviteClaim) (*Invite, error) {
	c.Phone, c.Session, c.Now = t.s.Phone, t.s.ID, t.now
	if t.s.Channel == ChannelSMS && !t.e.cfg.SMSCredentials {
		c.Kind = InviteLink // a reauthorisation may ask for an OTP: it is done over USSD
	}
	inv, err := t.e.store.ClaimInvite(t.ctx, c)
	switch {
	case err == nil:
	case errors.Is(err, ErrInviteInUse):
		t.log.Info().Msg("invite held by another session: continuing without it")
	case !errors.Is(err, ErrNoInvite):
		t.log.Warn().Err(err).Msg("claim invite")
	}
	return inv, err
}

// follow attaches a claimed invitation to the session and opens what it
// names. It reports whether it chose the screen.
func (t *turn) follow(inv *Invite) bool {
	t.s.Invite, t.s.InviteKind, t.s.Reference = inv.ID, inv.Kind, inv.Reference
	inv.Session, inv.Updated = t.s.ID, t.now
	t.invite = inv
	switch {
	case inv.Kind == InviteReauth:
		t.s.ReauthOf = inv.AccountID
		t.s.State = StateReauth // a new session's first state
		t.submit(&Pending{Kind: workReauth})
		return true
	case inv.Institution != "":
		return t.openInstitution(inv.Institution, inv.AuthMethod)
	}
	return false
}

// keepInvite passes the claim on the invitation of prev, the dropped
// session this one resumes, to this session. When another session took it
// meanwhile (prev had lapsed), this one continues without its reference;
// an invitation no longer usable by anyone stays as prev left it.
func (t *turn) keepInvite(prev *Session) {
	if prev.Invite == "" {
		return
	}
	inv, err := t.claimInvite(InviteClaim{ID: prev.Invite, From: prev.ID})
	switch {
	case err == nil:
		t.invite = inv
	case errors.Is(err, ErrInviteInUse):
		t.s.Invite, t.s.Reference = "", ""
	}
}

// startOverInvite lets a session that replaces prev (the user chose to
// start over) follow prev's invitation when it has none of its own: the
// claim passes on, unless Mono work prev leaves behind may still link with
// it.
func (t *turn) startOverInvite(prev *Session) {
	if prev == nil || prev.Invite == "" || prev.Pending != nil || t.s.Invite != "" {
		return
	}
	if inv, err := t.claimInvite(InviteClaim{ID: prev.Invite, From: prev.ID}); err == nil {
		t.follow(inv)
	}
}

// loadInvite returns the session's invitation, loading it once per turn.
func (t *turn) loadInvite() *Invite {
	if t.invite == nil && t.s.Invite != "" {
		inv, err := t.e.store.Invite(t.ctx, t.s.Invite)
		if err != nil {
			t.log.Warn().Err(err).Msg("read invite")
			return nil
		}
		t.invite = inv
	}
	return t.invite
}

// settleInvite records the session's outcome on its invitation.
func (t *turn) settleInvite(status string, link *Link) {
	inv := t.loadInvite()
	if inv == nil || inv.Status != StatusPending {
		return
	}
	inv.Status, inv.Updated, inv.Session = status, t.now, t.s.ID
	if link != nil {
		inv.Link = link
		inv.AccountID = link.AccountID
	}
}

// reauthorised finishes a reauthorisation: the stored link is marked
// re-authorised, the invitation completed, and the partner told.
func (t *turn) reauthorised(res result) {
	link, ok, err := t.e.store.Link(t.ctx, t.s.ReauthOf)
	if err != nil || !ok {
		link = t.newLink(result{accountID: t.s.ReauthOf})
	}
	link.ReauthRequired, link.Reauthorised = false, t.now
	if link.Reference == "" {
		link.Reference = t.s.Reference
	}
	t.fire(EventLink, link)
	t.s.Reason = ReasonReauthorised
	t.settleInvite(StatusReauthorised, link)
	// Mono's account_reauthorized webhook may complete the invitation first:
	// the partner hears of it once, from whichever commits first.
	n := len(t.events)
	t.emit(TypeAccountReauthorised, map[string]any{"account_id": link.AccountID})
	t.inviteEvents, t.events = append(t.inviteEvents, t.events[n:]...), t.events[:n]
}

// bankByID finds an institution in the catalogue.
func (t *turn) bankByID(id string) *Bank {
	banks, _ := t.e.banks.get(t.bounded, t.e, t.now)
	for _, b := range banks {
		if b.ID == id {
			return b
		}
	}
	return nil
}

// openInstitution goes straight to an institution (and auth method, when
// given and offered), as a shortcut or an invitation asks. It reports
// whether the institution could be opened.
func (t *turn) openInstitution(id, method string) bool {
	b := t.bankByID(id)
	if b == nil {
		t.log.Warn().Str("institution", id).Msg("institution not in Mono's list")
		return false
	}
	if method != "" {
		for _, m := range b.Methods {
			if m.Type == method {
				t.s.Bank = b
				t.emit(TypeInstitutionSelected, map[string]any{"authMethod": method})
				t.fire(EventOpenForm, b, m.Type)
				return true
			}
		}
	}
	t.chooseBank(b)
	return t.s.State != StateBanks
}

// linkedData is what ACCOUNT_LINKED tells the partner.
func linkedData(l *Link) map[string]any {
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
	t.texts = append(t.texts, Text{ID: "sms_" + NewEventID()[4:], Kind: kind, To: t.s.Phone, Data: data, Created: t.now})
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
	t.text(TextLateOutcome, data)
	if len(t.texts) > n { // one text says it all
		t.texts = slices.DeleteFunc(t.texts, func(x Text) bool { return x.Kind == TextReceipt })
	}
}

// handover ends an SMS conversation at the credentials screen when
// credentials may not be typed by text: the user gets a code that opens the
// same bank (and auth method) over USSD, valid for a few minutes.
//
// It is checked after every turn of a text conversation, so no path
// (a resumed session, a reauthorisation's OTP) asks for a secret by text.
func (t *turn) handover() {
	if t.s.Channel != ChannelSMS || t.e.cfg.SMSCredentials {
		return
	}
	switch {
	case t.s.State == StateChallenge || t.s.State == StateReauth || (t.s.State == StateCredentials && t.s.Bank == nil):
		// Not a login form that a code can reopen: USSD has to start it.
		t.forget()
		t.s.Handover = t.e.cfg.ServiceCode
		t.fire(EventEnd, ReasonHandover)
		return
	case t.s.State != StateCredentials:
		return
	}
	t.forget()
	inv := t.loadInvite()
	if inv != nil && inv.Kind == InviteLink && inv.Status == StatusPending {
		// The partner's own invitation carries on over USSD, at this bank.
		inv.Institution, inv.AuthMethod, inv.Updated = t.s.Bank.ID, t.s.Method, t.now
		t.inviteChanged = true
	} else {
		inv = &Invite{ID: "hnd_" + NewEventID()[4:], Kind: InviteLink, Phone: t.s.Phone, Reference: t.s.Reference,
			Institution: t.s.Bank.ID, AuthMethod: t.s.Method, Status: StatusPending,
			Created: t.now, Updated: t.now, Expires: t.now.Add(t.e.cfg.HandoverTTL)}
		if err := t.e.store.CreateInvite(t.ctx, inv, 4, t.now); err != nil {
			t.log.Error().Err(err).Msg("hand over to USSD")
			t.end(ReasonFailed)
			return
		}
	}
	t.s.Handover = strings.TrimSuffix(t.e.cfg.ServiceCode, "#") + "*" + inv.Code + "#"
	t.fire(EventEnd, ReasonHandover)
}
