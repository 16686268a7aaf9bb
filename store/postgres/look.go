package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
)

// FirstLook reads what a new session's first screen asks of its phone
// (link.FirstLook) in one statement (firstLookSQL), each part what its
// read of its own would give, all of one snapshot.
func (db *DB) FirstLook(ctx context.Context, phone string, since, now time.Time) (link.FirstLook, error) {
	rows, err := db.pool.Query(ctx, firstLookSQL, link.PhoneKey(phone), since, link.StatusPending, now)
	if err != nil {
		return link.FirstLook{}, fmt.Errorf("first look: %w", err)
	}
	l, err := readFirstLook(rows, phone, now)
	if err != nil {
		return link.FirstLook{}, fmt.Errorf("first look: %w", err) // the latest session's secrets still sealed
	}
	if l.Latest != nil {
		l.Latest = db.openSecrets(l.Latest, l.sealed)
	}
	return l.FirstLook, nil
}

// firstLookSQL reads the first look of the phone of key $1 (the lockout
// counted since $2, invitations of status $3 usable after $4): a row for
// each of its invitations, newest first, or one without any. Each row
// holds the count, the language (NULL: none chosen) and the latest
// session (NULL: none) first, then its invitation (where each begins:
// lookFailures and the others).
const firstLookSQL = `SELECT f.n, l.language, ` + sessionColumns + `, ` + inviteColumns + `
	FROM (SELECT count(*) AS n FROM login_failures WHERE phone_key = $1 AND at >= $2) f
	LEFT JOIN phone_languages l ON l.phone_key = $1
	LEFT JOIN LATERAL (SELECT s.* FROM phone_sessions p JOIN sessions s ON s.id = p.session_id WHERE p.phone_key = $1) s ON true
	LEFT JOIN LATERAL (SELECT * FROM invitations i WHERE i.phone_key = $1 AND i.status = $3 AND i.expires > $4) i ON true
	ORDER BY i.created DESC, i.id DESC`

// Where the parts of a row of firstLookSQL begin: the count, the
// language, the latest session, the invitation.
const (
	lookFailures = 0
	lookLanguage = 1
	lookSession  = 2
	lookInvite   = lookSession + 8 // sessionColumns
)

// firstLook is a link.FirstLook as read, its latest session's secrets
// still sealed.
type firstLook struct {
	link.FirstLook
	sealed []byte
}

// readFirstLook reads the rows of firstLookSQL.
func readFirstLook(rows pgx.Rows, phone string, now time.Time) (firstLook, error) {
	defer rows.Close()
	var (
		l       firstLook
		invites []link.Invite
		first   = true
	)
	for rows.Next() {
		raw := rows.RawValues()
		if first {
			first = false
			var language *string
			if err := (columns{rows, lookFailures}).Scan(&l.Failures, &language); err != nil {
				return l, fmt.Errorf("count login failures: %w", err)
			}
			if language != nil {
				l.Language = *language
			}
			if raw[lookSession] != nil {
				r, sealed, err := scanSession(columns{rows, lookSession})
				if err != nil {
					return l, fmt.Errorf("read latest session: %w", err)
				}
				l.Latest, l.sealed = r, sealed
			}
		}
		if raw[lookInvite] != nil {
			inv, err := scanInvite(columns{rows, lookInvite})
			if err != nil {
				return l, fmt.Errorf("read invites: %w", err)
			}
			invites = append(invites, *inv)
		}
	}
	if err := rows.Err(); err != nil {
		return l, err
	}
	if first {
		return l, errors.New("no row") // the count's is always there
	}
	if inv, err := usableInvite(invites, phone, now); err == nil {
		l.Invite = inv
	}
	return l, nil
}

// columns is the row rows is on from column from: scanned into as many
// values as are given.
type columns struct {
	rows pgx.Rows
	from int
}

// Scan is pgx.Row's.
func (c columns) Scan(dest ...any) error {
	fields, raw := c.rows.FieldDescriptions(), c.rows.RawValues()
	if c.from+len(dest) > len(fields) || c.from+len(dest) > len(raw) {
		return fmt.Errorf("%d columns from %d for %d values", len(fields), c.from, len(dest))
	}
	types := c.rows.Conn().TypeMap()
	for i, d := range dest {
		f := fields[c.from+i]
		if err := types.Scan(f.DataTypeOID, f.Format, raw[c.from+i], d); err != nil {
			return fmt.Errorf("column %s: %w", f.Name, err)
		}
	}
	return nil
}
