package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// inviteColumns are the columns scanInvite reads, in its order, of the
// invitations table named i.
const inviteColumns = `i.id, i.kind, i.code, i.phone, i.reference, i.institution, i.auth_method, i.account_id, i.status,
	i.created, i.expires, i.updated, i.session, i.claimed, i.link, i.customer, i.language`

// scanInvite reads an invitation row.
func scanInvite(row pgx.Row) (*link.Invite, error) {
	var (
		inv      link.Invite
		claimed  *time.Time
		ln, cust []byte
	)
	err := row.Scan(&inv.ID, &inv.Kind, &inv.Code, &inv.Phone, &inv.Reference, &inv.Institution, &inv.AuthMethod,
		&inv.AccountID, &inv.Status, &inv.Created, &inv.Expires, &inv.Updated, &inv.Session, &claimed, &ln, &cust, &inv.Language)
	if err != nil {
		return nil, err
	}
	inv.Created, inv.Expires, inv.Updated, inv.Claimed = inv.Created.UTC(), inv.Expires.UTC(), inv.Updated.UTC(), fromNullTime(claimed)
	if ln != nil {
		inv.Link = new(link.Link)
		if err := json.Unmarshal(ln, inv.Link); err != nil {
			return nil, fmt.Errorf("decode the link of invitation %s: %w", inv.ID, err)
		}
	}
	if cust != nil {
		inv.Customer = new(link.Customer)
		if err := json.Unmarshal(cust, inv.Customer); err != nil {
			return nil, fmt.Errorf("decode the customer of invitation %s: %w", inv.ID, err)
		}
	}
	return &inv, nil
}

// scanInvites reads every invitation rows holds, in order.
func scanInvites(rows pgx.Rows) ([]link.Invite, error) {
	defer rows.Close()
	var out []link.Invite
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *inv)
	}
	return out, rows.Err()
}

// readInvite reads the invitation a query names, or link.ErrNoInvite.
func readInvite(ctx context.Context, r querier, query string, args ...any) (*link.Invite, error) {
	inv, err := scanInvite(r.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, link.ErrNoInvite
	}
	if err != nil {
		return nil, fmt.Errorf("read invite: %w", err)
	}
	return inv, nil
}

// readInvites reads the invitations a query lists.
func readInvites(ctx context.Context, r querier, query string, args ...any) ([]link.Invite, error) {
	rows, err := r.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read invites: %w", err)
	}
	out, err := scanInvites(rows)
	if err != nil {
		return nil, fmt.Errorf("read invites: %w", err)
	}
	return out, nil
}

// Invite returns an invitation by id, or link.ErrNoInvite.
func (db *DB) Invite(ctx context.Context, id string) (*link.Invite, error) {
	return readInvite(ctx, db.pool, `SELECT `+inviteColumns+` FROM invitations i WHERE i.id = $1`, id)
}

// InviteByCode returns the pending invitation holding a code, or
// link.ErrNoInvite.
func (db *DB) InviteByCode(ctx context.Context, code string) (*link.Invite, error) {
	return readInvite(ctx, db.pool, `SELECT `+inviteColumns+` FROM invite_codes c JOIN invitations i ON i.id = c.invite_id
		WHERE c.code = $1`, code)
}

// ReauthOf returns the latest reauthorisation invitation written for an
// account, or link.ErrNoInvite.
func (db *DB) ReauthOf(ctx context.Context, accountID string) (*link.Invite, error) {
	return readInvite(ctx, db.pool, `SELECT `+inviteColumns+` FROM reauths r JOIN invitations i ON i.id = r.invite_id
		WHERE r.account_id = $1`, accountID)
}

// InvitesByPhone returns a phone's invitations (with or without its "+"),
// oldest first.
func (db *DB) InvitesByPhone(ctx context.Context, phone string) ([]link.Invite, error) {
	return readInvites(ctx, db.pool, `SELECT `+inviteColumns+` FROM invitations i WHERE i.phone_key = $1
		ORDER BY i.created, i.id`, link.PhoneKey(phone))
}

// InvitesByReference returns the invitations carrying a partner
// reference, in id order.
func (db *DB) InvitesByReference(ctx context.Context, ref string) ([]link.Invite, error) {
	return readInvites(ctx, db.pool, `SELECT `+inviteColumns+` FROM invitations i WHERE i.reference = $1 AND i.reference <> ''
		ORDER BY i.id`, ref)
}

// PendingInvite returns the most recent invitation of a phone that can
// still be used at now, or link.ErrNoInvite.
func (db *DB) PendingInvite(ctx context.Context, phone string, now time.Time) (*link.Invite, error) {
	all, err := readInvites(ctx, db.pool, pendingInvitesSQL, link.PhoneKey(phone), link.StatusPending, now)
	if err != nil {
		return nil, err
	}
	return usableInvite(all, phone, now)
}

// pendingInvitesSQL reads a phone's ($1) invitations of status $2 (pending)
// not expired at $3, newest first: only those can be usable.
const pendingInvitesSQL = `SELECT ` + inviteColumns + ` FROM invitations i
	WHERE i.phone_key = $1 AND i.status = $2 AND i.expires > $3 ORDER BY i.created DESC, i.id DESC`

// usableInvite is the first of invites phone can use at now, or
// link.ErrNoInvite.
func usableInvite(invites []link.Invite, phone string, now time.Time) (*link.Invite, error) {
	for i := range invites {
		if invites[i].Usable(phone, now) {
			return &invites[i], nil
		}
	}
	return nil, link.ErrNoInvite
}

// CreateInvite stores a new invitation, giving it (the caller's value
// too) a code of digits that no usable invitation holds (codes of finished
// or expired ones are reused).
func (db *DB) CreateInvite(ctx context.Context, inv *link.Invite, digits int, now time.Time) error {
	return db.CreateInviteWith(ctx, inv, digits, now, nil)
}

// CreateInviteWith is CreateInvite that also queues the texts announcing
// the invitation (which need its code) in the same transaction.
func (db *DB) CreateInviteWith(ctx context.Context, inv *link.Invite, digits int, now time.Time, texts func(*link.Invite) []link.Text) error {
	return db.CreateInviteAnswered(ctx, inv, digits, now, texts, "", nil)
}

// CreateInviteAnswered is CreateInviteWith that also stores, under an
// idempotency key, the API answer that answer builds from the invitation
// once it has its code. The invitation, its texts and the answer reporting
// it commit together: a retry after a crash finds both or neither. An empty
// key stores no answer.
func (db *DB) CreateInviteAnswered(ctx context.Context, inv *link.Invite, digits int, now time.Time,
	texts func(*link.Invite) []link.Text, key string, answer func(*link.Invite) (link.Answer, error)) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := allocateCode(ctx, tx, inv, digits, now); err != nil {
			return err
		}
		if err := putInvite(ctx, tx, inv); err != nil {
			return err
		}
		if key != "" && answer != nil {
			a, err := answer(inv)
			if err != nil {
				return err
			}
			if err := putAnswer(ctx, tx, key, a); err != nil {
				return err
			}
		}
		if texts == nil {
			return nil
		}
		msgs, err := kit.TextMessages(texts(inv))
		if err != nil {
			return err
		}
		return db.putMessages(ctx, tx, queueTexts, msgs)
	})
	if err != nil {
		return fmt.Errorf("create invite: %w", err)
	}
	return nil
}

// codeTriesPerDigit is how many codes of one length allocateCode draws
// before it tries codes a digit longer: a crowded space grows.
const codeTriesPerDigit = 20

// allocateCode gives an invitation a code of digits that no invitation
// usable at now holds. Each code drawn is looked at under its lock, so
// that two instances creating at once never both take one: the lock is
// held until the transaction that takes the code commits. A code another
// transaction is looking at is passed over, not waited for: two
// transactions each holding a code the other drew would wait for ever.
func allocateCode(ctx context.Context, tx pgx.Tx, inv *link.Invite, digits int, now time.Time) error {
	for try := 0; ; try++ {
		code, err := kit.RandomCode(digits + try/codeTriesPerDigit)
		if err != nil {
			return fmt.Errorf("draw an invitation code: %w", err)
		}
		if got, err := tryLockKey(ctx, tx, lockCode, code); err != nil || !got {
			if err != nil {
				return err
			}
			continue
		}
		holder, err := readInvite(ctx, tx, `SELECT `+inviteColumns+` FROM invite_codes c JOIN invitations i ON i.id = c.invite_id
			WHERE c.code = $1`, code)
		switch {
		case errors.Is(err, link.ErrNoInvite):
		case err != nil:
			return err
		case holder.StatusAt(now) == link.StatusPending:
			continue
		}
		inv.Code = code
		return nil
	}
}

// putInvite writes an invitation within tx (queueInvite).
func putInvite(ctx context.Context, tx pgx.Tx, inv *link.Invite) error {
	b := &pgx.Batch{}
	if err := queueInvite(b, inv); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write invitation %s: %w", inv.ID, err)
	}
	return nil
}

// queueInvite adds to b the statements that write an invitation with what
// finds it: its code names it while it is pending (and no longer once it
// is not), and a reauthorisation is its account's latest.
func queueInvite(b *pgx.Batch, inv *link.Invite) error {
	var ln []byte
	if inv.Link != nil {
		var err error
		if ln, err = json.Marshal(inv.Link); err != nil {
			return fmt.Errorf("encode the link of invitation %s: %w", inv.ID, err)
		}
	}
	var cust []byte
	if inv.Customer != nil {
		var err error
		if cust, err = json.Marshal(inv.Customer); err != nil {
			return fmt.Errorf("encode the customer of invitation %s: %w", inv.ID, err)
		}
	}
	b.Queue(`INSERT INTO invitations (id, kind, code, phone, phone_key, reference, institution, auth_method,
			account_id, status, created, expires, updated, session, claimed, link, handover, customer, language)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, code = EXCLUDED.code, phone = EXCLUDED.phone,
			phone_key = EXCLUDED.phone_key, reference = EXCLUDED.reference, institution = EXCLUDED.institution,
			auth_method = EXCLUDED.auth_method, account_id = EXCLUDED.account_id, status = EXCLUDED.status,
			created = EXCLUDED.created, expires = EXCLUDED.expires, updated = EXCLUDED.updated,
			session = EXCLUDED.session, claimed = EXCLUDED.claimed, link = EXCLUDED.link, handover = EXCLUDED.handover,
			customer = EXCLUDED.customer, language = EXCLUDED.language`,
		inv.ID, inv.Kind, inv.Code, inv.Phone, link.PhoneKey(inv.Phone), inv.Reference, inv.Institution, inv.AuthMethod,
		inv.AccountID, inv.Status, inv.Created, inv.Expires, inv.Updated, inv.Session, nullTime(inv.Claimed), ln, inv.Handover(), cust, inv.Language)
	if inv.Status == link.StatusPending {
		b.Queue(`INSERT INTO invite_codes (code, invite_id) VALUES ($1, $2)
			ON CONFLICT (code) DO UPDATE SET invite_id = EXCLUDED.invite_id`, inv.Code, inv.ID)
	} else {
		b.Queue(`DELETE FROM invite_codes WHERE code = $1 AND invite_id = $2`, inv.Code, inv.ID)
	}
	if inv.Kind == link.InviteReauth && inv.AccountID != "" {
		b.Queue(`INSERT INTO reauths (account_id, invite_id) VALUES ($1, $2)
			ON CONFLICT (account_id) DO UPDATE SET invite_id = EXCLUDED.invite_id`, inv.AccountID, inv.ID)
	}
	return nil
}
