package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// ClaimInvite gives one session the invitation c asks for, in one
// transaction: the invitation is taken when no session holds it, when the
// claiming session (or the one it takes over, c.From) already does, or when
// the session holding it no longer does (c.Holds: see claimHeld). So two
// sessions dialling one code at once cannot both follow it. It returns the
// claimed invitation, link.ErrNoInvite when none is usable, or
// link.ErrInviteInUse when the only usable ones are held by live sessions.
func (db *DB) ClaimInvite(_ context.Context, c link.InviteClaim) (*link.Invite, error) {
	// Most dials follow no invitation: find that out without a write
	// transaction, which would cost every dial a disk sync.
	found := false
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for _, inv := range claimCandidates(tx, c) {
			found = found || kit.Claimable(inv, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim invite: %w", err)
	}
	if !found {
		return nil, link.ErrNoInvite
	}
	var got *link.Invite
	inUse := false
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		var err error
		got, inUse, err = kit.Claim(claimCandidates(tx, c), c,
			func(inv *link.Invite) (bool, error) { return claimHeld(tx, inv, c), nil },
			func(inv *link.Invite) error { return putInvite(tx, inv) })
		return err
	})
	return kit.ClaimOutcome(got, inUse, err)
}

// claimCandidates lists the invitations a claim may take, in order of
// preference: the one its code or id names, or the phone's, newest first.
func claimCandidates(tx *bolt.Tx, c link.InviteClaim) []*link.Invite {
	invites := tx.Bucket(bucketInvites)
	one := func(id []byte) []*link.Invite {
		if inv := getInvite(invites, id); inv != nil {
			return []*link.Invite{inv}
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
	var out []*link.Invite
	prefix := append([]byte(link.PhoneKey(c.Phone)), 0)
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
// one it takes over) still holds inv, as c.Holds decides from the holder's
// stored record (read without opening its sealed secrets; nil when the
// holder is not stored). Without c.Holds a held invitation stays held: the
// store cannot tell, and refusing a claim only asks the customer to dial
// again, where handing one invitation to two sessions cannot be undone.
func claimHeld(tx *bolt.Tx, inv *link.Invite, c link.InviteClaim) bool {
	if inv.Session == "" || inv.Session == c.Session || inv.Session == c.From {
		return false
	}
	if c.Holds == nil {
		return true
	}
	var holder *link.SessionRecord
	if v := sessionsOf(tx, nil).get([]byte(inv.Session)); v != nil {
		r, _, err := readEnvelope(v) // the sealed secrets are not opened: they are not needed
		if err != nil {
			return false
		}
		holder = r
	}
	return c.Holds(inv, holder)
}
