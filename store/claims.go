package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/menus"
)

// ClaimInvite gives one session the invitation c asks for, in one
// transaction: the invitation is taken when no session holds it, when the
// claiming session (or the one it takes over, c.From) already does, or when
// the session holding it no longer does (menus.Session.HoldsInvite). So two
// sessions dialling one code at once cannot both follow it. It returns the
// claimed invitation, ErrNoInvite when none is usable, or
// menus.ErrInviteInUse when the only usable ones are held by live sessions.
func (db *DB) ClaimInvite(_ context.Context, c menus.InviteClaim) (*menus.Invite, error) {
	// Most dials follow no invitation: find that out without a write
	// transaction, which would cost every dial a disk sync.
	found := false
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, inv := range claimCandidates(tx, c) {
			found = found || claimable(inv, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim invite: %w", err)
	}
	if !found {
		return nil, ErrNoInvite
	}
	var got *menus.Invite
	inUse := false
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		got, inUse = nil, false
		for _, inv := range claimCandidates(tx, c) {
			if !claimable(inv, c) {
				continue
			}
			if claimHeld(tx, inv, c) {
				inUse = true
				continue
			}
			inv.Session, inv.Claimed = c.Session, c.Now
			if err := putInvite(tx, inv); err != nil {
				return err
			}
			got = inv
			return nil
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("claim invite: %w", err)
	case got != nil:
		return got, nil
	case inUse:
		return nil, menus.ErrInviteInUse
	}
	return nil, ErrNoInvite
}

// claimable reports whether a claim may take inv, held or not.
func claimable(inv *menus.Invite, c menus.InviteClaim) bool {
	return inv.Usable(c.Phone, c.Now) && (c.Kind == "" || inv.Kind == c.Kind)
}

// claimCandidates lists the invitations a claim may take, in order of
// preference: the one its code or id names, or the phone's, newest first.
func claimCandidates(tx *bolt.Tx, c menus.InviteClaim) []*menus.Invite {
	invites := tx.Bucket(bucketInvites)
	one := func(id []byte) []*menus.Invite {
		if inv := getInvite(invites, id); inv != nil {
			return []*menus.Invite{inv}
		}
		return nil
	}
	switch {
	case c.Code != "":
		if id := tx.Bucket(bucketInviteCodes).Get([]byte(c.Code)); id != nil {
			return one(id)
		}
		return nil
	case c.ID != "":
		return one([]byte(c.ID))
	}
	var out []*menus.Invite
	prefix := append([]byte(menus.PhoneKey(c.Phone)), 0)
	cur := tx.Bucket(bucketInvitePhone).Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		if len(k) < len(prefix)+8 {
			continue
		}
		if inv := getInvite(invites, k[len(prefix)+8:]); inv != nil {
			out = append(out, inv)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// claimHeld reports whether a session other than the claiming one (and the
// one it takes over) still holds inv, by menus.Session.HoldsInvite.
func claimHeld(tx *bolt.Tx, inv *menus.Invite, c menus.InviteClaim) bool {
	if inv.Session == "" || inv.Session == c.Session || inv.Session == c.From {
		return false
	}
	var holder *menus.Session
	if rec := tx.Bucket(bucketSessions).Get([]byte(inv.Session)); rec != nil {
		holder = new(menus.Session) // the sealed answers are not opened: they are not needed
		if err := json.Unmarshal(rec, holder); err != nil {
			return false
		}
	}
	return holder.HoldsInvite(inv, c.Now)
}

// keepClaim carries the claim of the invitation as stored over to w, a
// session's copy about to be written while still pending: the copy may
// predate a claim made since.
func keepClaim(held, w *menus.Invite) *menus.Invite {
	if held == nil || w.Status != menus.StatusPending {
		return w
	}
	cp := *w
	cp.Session, cp.Claimed = held.Session, held.Claimed
	return &cp
}
