package kit

import (
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// WithLinkStatus returns inv with what Mono's webhooks changed in its link
// (the data status, and when the account was unlinked) set to l's, when its
// link is l's account: a copy, the caller's invitation is not touched; inv
// itself when nothing differs.
func WithLinkStatus(inv *link.Invite, l *link.Link) *link.Invite {
	if inv == nil || inv.Link == nil || l == nil || inv.Link.AccountID != l.AccountID ||
		(inv.Link.DataStatus == l.DataStatus && inv.Link.Unlinked.Equal(l.Unlinked)) {
		return inv
	}
	cp, ln := *inv, *inv.Link
	ln.DataStatus, ln.Unlinked = l.DataStatus, l.Unlinked
	cp.Link = &ln
	return &cp
}

// After delays msgs so they are due just after every one of before:
// a link's status is told after the link, whatever order the outbox
// breaks ties in.
func After(msgs []link.Message, before ...[]link.Message) []link.Message {
	var last time.Time
	for _, b := range before {
		for _, m := range b {
			if m.Next.After(last) {
				last = m.Next
			}
		}
	}
	for i := range msgs {
		if !msgs[i].Next.After(last) {
			msgs[i].Next = last.Add(time.Nanosecond)
		}
	}
	return msgs
}

// KeepClaim carries the claim of the invitation as stored over to w, a
// session's copy about to be written while still pending: the copy may
// predate a claim made since.
func KeepClaim(held, w *link.Invite) *link.Invite {
	if held == nil || w.Status != link.StatusPending {
		return w
	}
	cp := *w
	cp.Session, cp.Claimed = held.Session, held.Claimed
	return &cp
}

// Claimable reports whether a claim may take inv, held or not.
func Claimable(inv *link.Invite, c link.InviteClaim) bool {
	return inv.Usable(c.Phone, c.Now) && (c.Kind == "" || inv.Kind == c.Kind)
}

// Claim gives c's session the first candidate it may take, in a backend's
// transaction: one claimable by c and not held by another live session
// (held says so), recorded with put. inUse reports that a claimable one
// was passed over as held.
func Claim(candidates []*link.Invite, c link.InviteClaim, held func(*link.Invite) (bool, error),
	put func(*link.Invite) error) (got *link.Invite, inUse bool, err error) {
	for _, inv := range candidates {
		if !Claimable(inv, c) {
			continue
		}
		h, err := held(inv)
		if err != nil {
			return nil, false, err
		}
		if h {
			inUse = true
			continue
		}
		inv.Session, inv.Claimed = c.Session, c.Now
		if err := put(inv); err != nil {
			return nil, false, err
		}
		return inv, false, nil
	}
	return nil, inUse, nil
}

// ClaimOutcome is what ClaimInvite returns for a claim's result: the
// invitation, link.ErrInviteInUse when only held ones were usable, or
// link.ErrNoInvite.
func ClaimOutcome(got *link.Invite, inUse bool, err error) (*link.Invite, error) {
	switch {
	case err != nil:
		return nil, fmt.Errorf("claim invite: %w", err)
	case got != nil:
		return got, nil
	case inUse:
		return nil, link.ErrInviteInUse
	}
	return nil, link.ErrNoInvite
}
