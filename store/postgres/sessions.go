package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// querier is what a statement needs: the pool (a statement of its own) or
// the transaction it is part of.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// sessionColumns are the columns scanSession reads, in its order.
const sessionColumns = `s.id, s.phone, s.updated, s.purge, s.lapse, s.data, s.sealed, s.lapsed`

// holderColumns are sessionColumns without the sealed secrets, which a
// claim's policy is never shown: they are not even read.
const holderColumns = `s.id, s.phone, s.updated, s.purge, s.lapse, s.data, NULL::bytea, s.lapsed`

// scanSession reads a session row into its record, and returns its
// secrets still sealed (nil when it has none).
func scanSession(row pgx.Row) (*link.SessionRecord, []byte, error) {
	var (
		r      link.SessionRecord
		lapse  *time.Time
		sealed []byte
	)
	if err := row.Scan(&r.ID, &r.Phone, &r.Updated, &r.Purge, &lapse, &r.Data, &sealed, &r.SecretsLapsed); err != nil {
		return nil, nil, err
	}
	r.Updated, r.Purge, r.Lapse = r.Updated.UTC(), r.Purge.UTC(), fromNullTime(lapse)
	return &r, sealed, nil
}

// openSecrets opens a record's sealed secrets into it. Sealed under a key
// no longer held (lost, or rotated out of previous-seal-keys), they are
// lost, not an error: the session goes on without them, and whatever
// needed them is asked again.
func (db *DB) openSecrets(r *link.SessionRecord, sealed []byte) *link.SessionRecord {
	if len(sealed) == 0 {
		return r
	}
	plain, err := db.sealer.Open(sealed, []byte(r.ID))
	if err != nil {
		r.SecretsLost = true
		return r
	}
	r.Secrets = plain
	return r
}

// readSession reads one session, its secrets opened, or link.ErrNoSession.
func (db *DB) readSession(ctx context.Context, query string, arg string) (*link.SessionRecord, error) {
	r, sealed, err := scanSession(db.pool.QueryRow(ctx, query, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, link.ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	return db.openSecrets(r, sealed), nil
}

// Session returns the stored session, or link.ErrNoSession.
func (db *DB) Session(ctx context.Context, id string) (*link.SessionRecord, error) {
	const query = `SELECT ` + sessionColumns + ` FROM sessions s WHERE s.id = $1`
	if h := hopOf(ctx, id); h != nil {
		return db.readOnHop(ctx, h, query)
	}
	return db.readSession(ctx, query, id)
}

// Latest returns the most recently written session of a phone (with or
// without its "+"), or link.ErrNoSession.
func (db *DB) Latest(ctx context.Context, phone string) (*link.SessionRecord, error) {
	return db.readSession(ctx, `SELECT `+sessionColumns+` FROM phone_sessions p JOIN sessions s ON s.id = p.session_id
		WHERE p.phone_key = $1`, link.PhoneKey(phone))
}

// sessionRow is a session ready to be written: its secrets sealed, before
// the transaction, which stays short.
type sessionRow struct {
	id, phone, phoneKey string
	updated, purge      time.Time
	lapse               *time.Time
	data, sealed        []byte // sealed is nil without secrets
}

// sessionRow seals r's secrets (with its id as additional data) and takes
// copies of what is written: the caller erases its plain secrets and may
// change the record once the commit returns.
func (db *DB) sessionRow(r *link.SessionRecord) sessionRow {
	w := sessionRow{id: r.ID, phone: r.Phone, phoneKey: link.PhoneKey(r.Phone), updated: r.Updated, purge: r.Purge,
		lapse: nullTime(r.Lapse), data: append([]byte{}, r.Data...)}
	if len(r.Secrets) > 0 {
		w.sealed = db.sealer.Seal(r.Secrets, []byte(r.ID))
	}
	return w
}

// queueSession adds to b the statements that write a session (its secrets
// no longer lapsed: they are as written) and make it its phone's latest;
// a phone whose latest session it already is keeps its row unwritten.
func queueSession(b *pgx.Batch, w sessionRow) {
	b.Queue(`INSERT INTO sessions (id, phone, phone_key, updated, purge, lapse, data, sealed, lapsed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false)
		ON CONFLICT (id) DO UPDATE SET phone = EXCLUDED.phone, phone_key = EXCLUDED.phone_key, updated = EXCLUDED.updated,
			purge = EXCLUDED.purge, lapse = EXCLUDED.lapse, data = EXCLUDED.data, sealed = EXCLUDED.sealed, lapsed = false`,
		w.id, w.phone, w.phoneKey, w.updated, w.purge, w.lapse, w.data, w.sealed)
	b.Queue(`INSERT INTO phone_sessions (phone_key, session_id) VALUES ($1, $2)
		ON CONFLICT (phone_key) DO UPDATE SET session_id = EXCLUDED.session_id
		WHERE phone_sessions.session_id <> EXCLUDED.session_id`, w.phoneKey, w.id)
}

// putSession writes a session within tx (queueSession).
func putSession(ctx context.Context, tx pgx.Tx, w sessionRow) error {
	b := &pgx.Batch{}
	queueSession(b, w)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write session %s: %w", w.id, err)
	}
	return nil
}

// Commit writes everything one hop decided in one transaction, durable
// before it returns: the session and the one it retired (each its phone's
// latest, in that order), the partner events and texts, the login failure
// and the released reservations, the link (see prepareLink: a new one may
// take the account's remembered update, told after the link's own events)
// and the invitation, moved on only if it is still pending (Mono's webhook
// may have completed it first), with its events.
//
// Across instances: a login failure is recorded under its phone's lock,
// so a reservation counts it before or after, never beside it; a link is
// written under its account's lock, which Mono's webhook takes too, so
// an update Mono sends while the link commits is either taken by the link
// or applied to it; the invitation's row is locked while it is decided.
func (db *DB) Commit(ctx context.Context, c link.Change) error {
	if c.Session == nil {
		return errors.New("commit: a change without its session")
	}
	var recs []sessionRow
	for _, r := range []*link.SessionRecord{c.Retired, c.Session} {
		if r != nil {
			recs = append(recs, db.sessionRow(r))
		}
	}
	msgs, err := kit.EventMessages(c.Events)
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	inviteMsgs, err := kit.EventMessages(c.InviteEvents)
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	texts, err := kit.TextMessages(c.Texts)
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	if h := hopOf(ctx, c.Session.ID); h != nil && pipelined(c) {
		err := db.commitOnHop(ctx, h, func(b *pgx.Batch) {
			for _, w := range recs {
				queueSession(b, w)
			}
			queueMessages(b, queueWebhooks, msgs)
			queueMessages(b, queueTexts, texts)
		})
		if err != nil {
			return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
		}
		return nil
	}
	phone := link.PhoneKey(c.Session.Phone)
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		// Advisory locks first, in one order: phone, then account.
		if c.LoginFailure {
			if err := lockKey(ctx, tx, lockLogin, phone); err != nil {
				return err
			}
		}
		if c.Link != nil {
			if err := lockKey(ctx, tx, lockAccount, c.Link.AccountID); err != nil {
				return err
			}
		}
		for _, w := range recs {
			if err := putSession(ctx, tx, w); err != nil {
				return err
			}
		}
		if err := db.putMessages(ctx, tx, queueWebhooks, msgs); err != nil {
			return err
		}
		if err := db.putMessages(ctx, tx, queueTexts, texts); err != nil {
			return err
		}
		if c.LoginFailure {
			if _, err := putFailure(ctx, tx, phone, c.Session.Updated); err != nil {
				return err
			}
		}
		if err := releaseFailures(ctx, tx, c.Release); err != nil {
			return err
		}
		var lw linkWrite
		if c.Link != nil {
			var err error
			if lw, err = db.prepareLink(ctx, tx, c.Link); err != nil {
				return err
			}
		}
		if c.Invite != nil {
			held, err := lockInvite(ctx, tx, c.Invite.ID)
			if err != nil {
				return err
			}
			if held == nil || held.Status == link.StatusPending {
				if err := putInvite(ctx, tx, kit.WithLinkStatus(kit.KeepClaim(held, c.Invite), lw.link)); err != nil {
					return err
				}
				if err := db.putMessages(ctx, tx, queueWebhooks, inviteMsgs); err != nil {
					return err
				}
			}
		}
		if lw.link == nil {
			return nil
		}
		if err := putLink(ctx, tx, lw.link); err != nil {
			return err
		}
		return db.putMessages(ctx, tx, queueWebhooks, kit.After(lw.events, msgs, inviteMsgs)) // told after the link
	})
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	return nil
}

// nullTime is t for a column where NULL stands for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNullTime is the time a nullable column holds, in UTC; zero for NULL.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
