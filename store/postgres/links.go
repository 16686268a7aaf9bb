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

// linkColumns are the columns scanLink reads, in its order.
const linkColumns = `account_id, phone, institution, bank, auth_method, masked, currency, session_id, reference,
	linked, data_status, reauth_required, reauthorised, unlinked`

// scanLink reads a link row.
func scanLink(row pgx.Row) (*link.Link, error) {
	var (
		l            link.Link
		reauthorised *time.Time
		unlinked     *time.Time
	)
	err := row.Scan(&l.AccountID, &l.Phone, &l.Institution, &l.Bank, &l.AuthMethod, &l.Masked, &l.Currency, &l.SessionID,
		&l.Reference, &l.Linked, &l.DataStatus, &l.ReauthRequired, &reauthorised, &unlinked)
	if err != nil {
		return nil, err
	}
	l.Linked, l.Reauthorised, l.Unlinked = l.Linked.UTC(), fromNullTime(reauthorised), fromNullTime(unlinked)
	return &l, nil
}

// Link returns the link of a Mono account id, or false.
func (db *DB) Link(ctx context.Context, accountID string) (*link.Link, bool, error) {
	l, err := scanLink(db.pool.QueryRow(ctx, `SELECT `+linkColumns+` FROM links WHERE account_id = $1`, accountID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read link: %w", err)
	}
	return l, true, nil
}

// LinksByPhone returns the links made from a phone (with or without its
// "+"), in account id order.
func (db *DB) LinksByPhone(ctx context.Context, phone string) ([]link.Link, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+linkColumns+` FROM links WHERE phone_key = $1 ORDER BY account_id`, link.PhoneKey(phone))
	if err != nil {
		return nil, fmt.Errorf("read links of phone: %w", err)
	}
	var out []link.Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("read links of phone: %w", err)
		}
		out = append(out, *l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read links of phone: %w", err)
	}
	return out, nil
}

// lockLink reads the stored link of an account and locks its row until
// the transaction ends, or nil when there is none.
func lockLink(ctx context.Context, tx pgx.Tx, accountID string) (*link.Link, error) {
	l, err := scanLink(tx.QueryRow(ctx, `SELECT `+linkColumns+` FROM links WHERE account_id = $1 FOR UPDATE`, accountID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read link %s: %w", accountID, err)
	}
	return l, nil
}

// putLink writes a link within tx (queueLink).
func putLink(ctx context.Context, tx pgx.Tx, l *link.Link) error {
	b := &pgx.Batch{}
	queueLink(b, l)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write link %s: %w", l.AccountID, err)
	}
	return nil
}

// queueLink adds to b the statement that writes a link; its phone column
// moves it to the phone it was linked from.
func queueLink(b *pgx.Batch, l *link.Link) {
	b.Queue(`INSERT INTO links (account_id, phone, phone_key, institution, bank, auth_method, masked, currency,
			session_id, reference, linked, data_status, reauth_required, reauthorised, unlinked)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (account_id) DO UPDATE SET phone = EXCLUDED.phone, phone_key = EXCLUDED.phone_key,
			institution = EXCLUDED.institution, bank = EXCLUDED.bank, auth_method = EXCLUDED.auth_method,
			masked = EXCLUDED.masked, currency = EXCLUDED.currency, session_id = EXCLUDED.session_id,
			reference = EXCLUDED.reference, linked = EXCLUDED.linked, data_status = EXCLUDED.data_status,
			reauth_required = EXCLUDED.reauth_required, reauthorised = EXCLUDED.reauthorised, unlinked = EXCLUDED.unlinked`,
		l.AccountID, l.Phone, link.PhoneKey(l.Phone), l.Institution, l.Bank, l.AuthMethod, l.Masked, l.Currency,
		l.SessionID, l.Reference, l.Linked, l.DataStatus, l.ReauthRequired, nullTime(l.Reauthorised), nullTime(l.Unlinked))
}

// linkWrite is a link as a commit writes it, with what a remembered update
// added: the link (a copy when it changed) and the events announcing the
// status it took.
type linkWrite struct {
	link   *link.Link
	events []link.Message
}

// decideLink decides how a commit writes l, given the account's stored
// link and remembered update (each nil when there is none), read with the
// account's row locked. A link written again by the session that made it
// (a reauthorisation) keeps the data status Mono's webhooks gave the
// stored one. A new one (no stored link of the account from its session)
// is offered the account's remembered update, when it has a data status,
// through the LinkUpdates option: when the policy takes it, the link (a
// copy) gets the status, and the events the policy named announce it.
func (db *DB) decideLink(l, stored *link.Link, u *link.MonoUpdate) (linkWrite, error) {
	w := linkWrite{link: l}
	if stored != nil && stored.SessionID == l.SessionID {
		if stored.DataStatus != l.DataStatus {
			kept := *l
			kept.DataStatus = stored.DataStatus
			w.link = &kept
		}
		return w, nil
	}
	if db.linkUpdates == nil || u == nil || u.DataStatus == "" {
		return w, nil
	}
	offered := *l // the policy's own copy: what it does to it is not written
	take, events := db.linkUpdates(&offered, *u)
	if !take {
		return w, nil
	}
	taken := *l
	taken.DataStatus = u.DataStatus
	w.link = &taken
	var err error
	if w.events, err = kit.EventMessages(events); err != nil {
		return w, fmt.Errorf("announce the account update a new link took: %w", err)
	}
	return w, nil
}
