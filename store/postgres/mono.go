package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// MonoEvent applies one of Mono's webhooks exactly once, across
// instances: its id is inserted first in the transaction, so a retry
// arriving at another instance meanwhile waits for this one and, once it
// commits, does nothing and returns false. Otherwise, under the account's
// lock (see Commit), apply is handed the account's link and its latest
// reauthorisation invitation (either may be nil), both with their rows
// locked; what apply changed is written back (and what Mono changed in the
// link, its data status and unlinking, into the invitations carrying it
// and into the reauthorisation), the events and the nudge apply
// decided are queued, and the account update it returned is remembered.
// A nudge carrying the stored reauthorisation (the same id) reuses it as
// written back; any other is stored as a new invitation with a fresh code
// of out.CodeDigits digits. Anything that fails leaves nothing, the event
// id included: its retry is applied.
func (db *DB) MonoEvent(ctx context.Context, eventID string, at time.Time, accountID string,
	apply func(l *link.Link, reauth *link.Invite) link.MonoOutcome) (bool, error) {
	applied := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		applied = false
		tag, err := tx.Exec(ctx, `INSERT INTO mono_events (id, seen) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, eventID, at)
		if err != nil {
			return fmt.Errorf("record the event id: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // applied before
		}
		if err := lockKey(ctx, tx, lockAccount, accountID); err != nil {
			return err
		}
		l, err := lockLink(ctx, tx, accountID)
		if err != nil {
			return err
		}
		reauth, err := readInvite(ctx, tx, `SELECT `+inviteColumns+` FROM reauths r JOIN invitations i ON i.id = r.invite_id
			WHERE r.account_id = $1 FOR UPDATE OF i`, accountID)
		switch {
		case errors.Is(err, link.ErrNoInvite):
			reauth = nil
		case err != nil:
			return err
		}
		out := apply(l, reauth)
		if out.Update != nil {
			if err := rememberUpdate(ctx, tx, *out.Update); err != nil {
				return err
			}
		}
		if l != nil {
			if err := putLink(ctx, tx, l); err != nil {
				return err
			}
			if err := syncInviteLinks(ctx, tx, l); err != nil {
				return err
			}
		}
		if reauth != nil {
			reauth = kit.WithLinkStatus(reauth, l) // as the invitations carrying the link
			if err := putInvite(ctx, tx, reauth); err != nil {
				return err
			}
		}
		if err := db.nudge(ctx, tx, out, reauth, at); err != nil {
			return err
		}
		msgs, err := kit.EventMessages(out.Events)
		if err != nil {
			return err
		}
		if err := db.putMessages(ctx, tx, queueWebhooks, msgs); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("apply mono event %s: %w", eventID, err)
	}
	return applied, nil
}

// nudge queues the text out asks for, with the invitation it carries: the
// stored reauthorisation (already written back) when out.Nudge is it, else
// a new invitation, stored with a fresh code.
func (db *DB) nudge(ctx context.Context, tx pgx.Tx, out link.MonoOutcome, reauth *link.Invite, at time.Time) error {
	if out.Nudge == nil || out.NudgeText == nil {
		return nil
	}
	inv := out.Nudge
	if reauth != nil && inv.ID == reauth.ID {
		inv = reauth
	} else {
		if out.CodeDigits < 1 {
			return fmt.Errorf("nudge invitation %s: %d code digits, want at least 1", inv.ID, out.CodeDigits)
		}
		if err := allocateCode(ctx, tx, inv, out.CodeDigits, at); err != nil {
			return err
		}
		if err := putInvite(ctx, tx, inv); err != nil {
			return err
		}
	}
	msgs, err := kit.TextMessages([]link.Text{out.NudgeText(inv)})
	if err != nil {
		return err
	}
	return db.putMessages(ctx, tx, queueTexts, msgs)
}

// syncInviteLinks gives the invitations that carry l (found through its
// reference, made by its session) what Mono changed in l (its data status,
// its unlinking), so the partner API shows it.
func syncInviteLinks(ctx context.Context, tx pgx.Tx, l *link.Link) error {
	if l.Reference == "" {
		return nil
	}
	invs, err := readInvites(ctx, tx, `SELECT `+inviteColumns+` FROM invitations i
		WHERE i.reference = $1 AND i.link IS NOT NULL ORDER BY i.id FOR UPDATE`, l.Reference)
	if err != nil {
		return err
	}
	for i := range invs {
		inv := &invs[i]
		if inv.Link == nil || inv.Link.SessionID != l.SessionID {
			continue
		}
		if w := kit.WithLinkStatus(inv, l); w != inv {
			if err := putInvite(ctx, tx, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// rememberUpdate keeps u as its account's latest update, replacing the one
// before. An update of no account is not kept.
func rememberUpdate(ctx context.Context, tx pgx.Tx, u link.MonoUpdate) error {
	if u.AccountID == "" {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO mono_updates (account_id, data_status, event_at, received) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id) DO UPDATE SET data_status = EXCLUDED.data_status, event_at = EXCLUDED.event_at,
			received = EXCLUDED.received`, u.AccountID, u.DataStatus, nullTime(u.EventAt), u.Received)
	if err != nil {
		return fmt.Errorf("remember account update: %w", err)
	}
	return nil
}

// latestUpdate returns the remembered update of an account, or nil.
func latestUpdate(ctx context.Context, r querier, accountID string) (*link.MonoUpdate, error) {
	return scanUpdate(r.QueryRow(ctx, latestUpdateSQL, accountID), accountID)
}

// latestUpdateSQL reads an account's remembered update, for scanUpdate.
const latestUpdateSQL = `SELECT data_status, event_at, received FROM mono_updates WHERE account_id = $1`

// scanUpdate reads the row of latestUpdateSQL, or nil when there is none.
func scanUpdate(row pgx.Row, accountID string) (*link.MonoUpdate, error) {
	u := link.MonoUpdate{AccountID: accountID}
	var eventAt *time.Time
	err := row.Scan(&u.DataStatus, &eventAt, &u.Received)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read account update: %w", err)
	}
	u.EventAt, u.Received = fromNullTime(eventAt), u.Received.UTC()
	return &u, nil
}

// LatestUpdate returns the remembered account_updated of an account, if
// one is still kept.
func (db *DB) LatestUpdate(ctx context.Context, accountID string) (*link.MonoUpdate, bool, error) {
	u, err := latestUpdate(ctx, db.pool, accountID)
	if err != nil {
		return nil, false, err
	}
	return u, u != nil, nil
}
