package menus

import (
	"errors"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// ClaimGrace is how long a claim holds past its session's expiry, and how
// long it holds for a session not yet written: longer than any hop takes to
// commit, so a hop that began before the expiry cannot lose its claim while
// it runs.
const ClaimGrace = time.Minute

// HoldsInvite reports whether s, the session that claimed inv, still
// holds it at now. A claim holds while its session follows the invitation
// and is live (not ended, not closed by the aggregator, not expired), or
// while Mono work it started may still link an account. It lapses when the
// session ends without using the invitation, so the code can be dialled
// again. A session stored before it claimed (the claiming hop is not
// committed yet) holds it for ClaimGrace; so does a session not stored at
// all (s nil).
func (s *Session) HoldsInvite(inv *link.Invite, now time.Time) bool {
	if s == nil || s.Updated.Before(inv.Claimed) {
		return now.Before(inv.Claimed.Add(ClaimGrace))
	}
	if s.Invite != inv.ID {
		return false // it took over another conversation, or never got this far
	}
	if s.Pending != nil && now.Before(s.Purge) {
		return true
	}
	return !s.Done() && s.Closed == "" && now.Before(s.Expires.Add(ClaimGrace))
}

// attachInvite looks for the partner invitation this dial follows: the one
// whose code was dialled, or else the phone's pending one. It claims it for
// the session first, so that of two sessions dialling one code at once only
// one follows it (the other continues as a plain link); then it attaches its
// reference to the session and, for a reauthorisation or an invitation to
// one institution, opens it. It reports whether it chose the first screen.
func (t *turn) attachInvite() bool {
	if t.code == "" && t.look != nil && t.look.Invite == nil {
		return false // the first look found none the phone could use
	}
	inv, err := t.claimInvite(link.InviteClaim{Code: t.code})
	if err != nil {
		return false
	}
	return t.follow(inv)
}

// claimInvite claims an invitation for the session (see Store.ClaimInvite).
// The error is ErrNoInvite (none usable, or another phone's code),
// ErrInviteInUse (held by another live session of this phone) or the
// store's, which is logged.
func (t *turn) claimInvite(c link.InviteClaim) (*link.Invite, error) {
	c.Phone, c.Session, c.Now, c.Holds = t.s.Phone, t.s.ID, t.now, holds(t.now)
	if t.s.Channel == link.ChannelSMS && !t.e.cfg.SMSCredentials {
		c.Kind = link.InviteLink // a reauthorisation may ask for an OTP: it is done over USSD
	}
	inv, err := t.e.store.ClaimInvite(t.ctx, c)
	switch {
	case err == nil:
	case errors.Is(err, link.ErrInviteInUse):
		t.log.Info().Msg("invite held by another session: continuing without it")
	case !errors.Is(err, link.ErrNoInvite):
		t.log.Warn().Err(err).Msg("claim invite")
	}
	return inv, err
}

// follow attaches a claimed invitation to the session and opens what it
// names. It reports whether it chose the screen.
func (t *turn) follow(inv *link.Invite) bool {
	t.s.Invite, t.s.InviteKind, t.s.Reference = inv.ID, inv.Kind, inv.Reference
	if c := inv.Customer; c != nil {
		t.s.CustomerName, t.s.CustomerEmail = c.Name, c.Email
	}
	if inv.Language != "" {
		t.useLanguage(inv.Language)
	}
	inv.Session, inv.Updated = t.s.ID, t.now
	t.invite = inv
	switch {
	case inv.Kind == link.InviteReauth:
		t.s.ReauthOf = inv.AccountID
		t.fire(EventReauth, args{})
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
	inv, err := t.claimInvite(link.InviteClaim{ID: prev.Invite, From: prev.ID})
	switch {
	case err == nil:
		t.invite = inv
	case errors.Is(err, link.ErrInviteInUse):
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
	if inv, err := t.claimInvite(link.InviteClaim{ID: prev.Invite, From: prev.ID}); err == nil {
		t.follow(inv)
	}
}

// loadInvite returns the session's invitation, loading it once per turn.
func (t *turn) loadInvite() *link.Invite {
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
func (t *turn) settleInvite(status string, made *link.Link) {
	inv := t.loadInvite()
	if inv == nil || inv.Status != link.StatusPending {
		return
	}
	inv.Status, inv.Updated, inv.Session = status, t.now, t.s.ID
	if made != nil {
		inv.Link = made
		inv.AccountID = made.AccountID
	}
}

// reauthorised finishes a reauthorisation: the stored link is marked
// re-authorised, the invitation completed, and the partner told.
func (t *turn) reauthorised(res result) {
	made, ok, err := t.e.store.Link(t.ctx, t.s.ReauthOf)
	if err != nil || !ok {
		made = t.newLink(result{accountID: t.s.ReauthOf})
	}
	made.ReauthRequired, made.Reauthorised = false, t.now
	t.linkedAt, t.reauthed = made.Institution, true
	if made.Reference == "" {
		made.Reference = t.s.Reference
	}
	t.fire(EventLink, args{link: made})
	t.s.Reason = ReasonReauthorised
	t.settleInvite(link.StatusReauthorised, made)
	// Mono's account_reauthorized webhook may complete the invitation first:
	// the partner hears of it once, from whichever commits first.
	n := len(t.events)
	t.emit(link.TypeAccountReauthorised, map[string]any{"account_id": made.AccountID})
	t.inviteEvents, t.events = append(t.inviteEvents, t.events[n:]...), t.events[:n]
}
