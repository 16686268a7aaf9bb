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
// (link.FirstLook) in one round trip: the four reads of their own, in one
// batch, each what it would read alone.
func (db *DB) FirstLook(ctx context.Context, phone string, since, now time.Time) (link.FirstLook, error) {
	key := link.PhoneKey(phone)
	b := &pgx.Batch{}
	b.Queue(countFailuresSQL, key, since)
	b.Queue(phoneLanguageSQL, key)
	b.Queue(latestSQL, key)
	b.Queue(pendingInvitesSQL, key, link.StatusPending, now)
	br := db.pool.SendBatch(ctx, b)
	l, err := readFirstLook(br, phone, now)
	if err = errors.Join(err, br.Close()); err != nil {
		return link.FirstLook{}, fmt.Errorf("first look: %w", err) // the latest session's secrets still sealed
	}
	if l.Latest != nil {
		l.Latest = db.openSecrets(l.Latest, l.sealed)
	}
	return l.FirstLook, nil
}

// firstLook is a link.FirstLook as read, its latest session's secrets
// still sealed.
type firstLook struct {
	link.FirstLook
	sealed []byte
}

// readFirstLook reads the results of FirstLook's batch, in its order.
func readFirstLook(br pgx.BatchResults, phone string, now time.Time) (firstLook, error) {
	var l firstLook
	if err := br.QueryRow().Scan(&l.Failures); err != nil {
		return l, fmt.Errorf("count login failures: %w", err)
	}
	if err := br.QueryRow().Scan(&l.Language); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("read phone language: %w", err)
	}
	r, sealed, err := scanSession(br.QueryRow())
	switch {
	case err == nil:
		l.Latest, l.sealed = r, sealed
	case !errors.Is(err, pgx.ErrNoRows):
		return l, fmt.Errorf("read latest session: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return l, fmt.Errorf("read invites: %w", err)
	}
	invites, err := scanInvites(rows)
	if err != nil {
		return l, fmt.Errorf("read invites: %w", err)
	}
	if inv, err := usableInvite(invites, phone, now); err == nil {
		l.Invite = inv
	}
	return l, nil
}
