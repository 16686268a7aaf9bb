package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// ClaimInvite gives one session the invitation c asks for, in one
// transaction with the candidates' rows locked, so that two sessions
// dialling one code at once, on any instances, cannot both follow it: the
// second waits for the first and sees its claim. An invitation is taken
// when no session holds it, when the claiming session (or the one it
// takes over, c.From) already does, or when the session holding it no
// longer does (c.Holds: see claimHeld). It returns the claimed invitation,
// link.ErrNoInvite when none is usable, or link.ErrInviteInUse when the
// only usable ones are held by live sessions.
func (db *DB) ClaimInvite(ctx context.Context, c link.InviteClaim) (*link.Invite, error) {
	// Most dials follow no invitation: find that out with one statement,
	// without a transaction or a lock.
	candidates, err := claimCandidates(ctx, db.pool, c, false)
	if err != nil {
		return nil, fmt.Errorf("claim invite: %w", err)
	}
	if !slices.ContainsFunc(candidates, func(inv link.Invite) bool { return kit.Claimable(&inv, c) }) {
		return nil, link.ErrNoInvite
	}
	var got *link.Invite
	inUse := false
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		got, inUse = nil, false
		candidates, err := claimCandidates(ctx, tx, c, true)
		if err != nil {
			return err
		}
		ptrs := make([]*link.Invite, len(candidates))
		for i := range candidates {
			ptrs[i] = &candidates[i]
		}
		got, inUse, err = kit.Claim(ptrs, c,
			func(inv *link.Invite) (bool, error) { return claimHeld(ctx, tx, inv, c) },
			func(inv *link.Invite) error { return putInvite(ctx, tx, inv) })
		return err
	})
	return kit.ClaimOutcome(got, inUse, err)
}

// claimCandidates reads the invitations a claim may take, in order of
// preference: the one its code or id names, or the phone's, newest first;
// with lock, their rows are locked until the transaction ends. Of the
// phone's, only those pending and not expired at the claim's time are
// read (no other is claimable); kit.Claimable decides.
func claimCandidates(ctx context.Context, q querier, c link.InviteClaim, lock bool) ([]link.Invite, error) {
	forUpdate := func(clause string) string {
		if lock {
			return clause
		}
		return ""
	}
	switch {
	case c.Code != "":
		return readInvites(ctx, q, `SELECT `+inviteColumns+` FROM invite_codes c JOIN invitations i ON i.id = c.invite_id
			WHERE c.code = $1`+forUpdate(` FOR UPDATE OF i`), c.Code)
	case c.ID != "":
		return readInvites(ctx, q, `SELECT `+inviteColumns+` FROM invitations i WHERE i.id = $1`+forUpdate(` FOR UPDATE`), c.ID)
	}
	return readInvites(ctx, q, `SELECT `+inviteColumns+` FROM invitations i
		WHERE i.phone_key = $1 AND i.status = $2 AND i.expires > $3
		ORDER BY i.created DESC, i.id DESC`+forUpdate(` FOR UPDATE`), link.PhoneKey(c.Phone), link.StatusPending, c.Now)
}

// claimHeld reports whether a session other than the claiming one (and the
// one it takes over) still holds inv, as c.Holds decides from the holder's
// stored record, read without its sealed secrets (nil when the holder is
// not stored). Without c.Holds a held invitation stays held: the store
// cannot tell, and refusing a claim only asks the customer to dial again,
// where handing one invitation to two sessions cannot be undone.
func claimHeld(ctx context.Context, tx pgx.Tx, inv *link.Invite, c link.InviteClaim) (bool, error) {
	if inv.Session == "" || inv.Session == c.Session || inv.Session == c.From {
		return false, nil
	}
	if c.Holds == nil {
		return true, nil
	}
	holder, _, err := scanSession(tx.QueryRow(ctx, `SELECT `+holderColumns+` FROM sessions s WHERE s.id = $1`, inv.Session))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		holder = nil
	case err != nil:
		return false, fmt.Errorf("read the session holding invitation %s: %w", inv.ID, err)
	}
	return c.Holds(inv, holder), nil
}
