package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leases are the database's leases on background work, timed by the
// database's clock so that instances whose clocks differ agree on when one
// lapsed.
type Leases struct{ db *DB }

// Leases returns the database's work leases.
func (db *DB) Leases() *Leases { return &Leases{db: db} }

// Hold takes key's lease for owner for ttl, or renews owner's; false when
// another owner holds it and it has not lapsed.
func (l *Leases) Hold(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	var got string
	err := l.db.pool.QueryRow(ctx, `
		INSERT INTO leases (key, owner, until) VALUES ($1, $2, now() + $3::interval)
		ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.owner = excluded.owner OR leases.until <= now()
		RETURNING owner`, key, owner, ttl.String()).Scan(&got)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("hold lease %s: %w", key, err)
	}
	return true, nil
}

// Release lets owner's lease of key go.
func (l *Leases) Release(ctx context.Context, key, owner string) error {
	if _, err := l.db.pool.Exec(ctx, `DELETE FROM leases WHERE key = $1 AND owner = $2`, key, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", key, err)
	}
	return nil
}

// SweepLeases deletes leases that lapsed before a time, at most max, and
// reports how many.
func (l *Leases) SweepLeases(ctx context.Context, before time.Time, max int) (int, error) {
	tag, err := l.db.pool.Exec(ctx, `
		DELETE FROM leases WHERE key IN (SELECT key FROM leases WHERE until < $1 ORDER BY until LIMIT $2)`, before, max)
	if err != nil {
		return 0, fmt.Errorf("sweep leases: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
