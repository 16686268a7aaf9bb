package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// sweepOldest deletes, at most max at a time, the rows of a table whose
// time column is before a cut-off, oldest first (then by key), and returns
// how many it deleted. Rows another instance's sweep has locked are left
// to it. table, column and key are the code's own names, never input.
func (db *DB) sweepOldest(ctx context.Context, table, column, key, where string, before time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	if where != "" {
		where = " AND " + where
	}
	tag, err := db.pool.Exec(ctx, fmt.Sprintf(`DELETE FROM %[1]s WHERE %[3]s IN (
		SELECT %[3]s FROM %[1]s WHERE %[2]s < $1%[4]s ORDER BY %[2]s, %[3]s LIMIT $2 FOR UPDATE SKIP LOCKED)`,
		table, column, key, where), before, max)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// Sweep deletes the sessions whose purge time is before now, at most max
// of them, the longest due first, and returns how many it deleted; a
// phone's latest session goes with it. First, in the same transaction, it
// erases the sealed secrets that lapsed before now (at most max sessions)
// from the sessions that stay: their lapse goes too, and the record says
// its secrets lapsed. With WithFunnel, each session deleted is counted in
// the drop-off funnel as its hook decides, in the same transaction. Then
// it folds the funnel counts commits kept (funnel_increments) into the
// counters, a batch a transaction of its own (foldFunnel).
func (db *DB) Sweep(ctx context.Context, now time.Time, max int) (int, error) {
	n, err := db.sweepSessions(ctx, now, max)
	// The counts commits kept for the funnel go to its counters, whether
	// or not the sessions' sweep failed.
	if _, ferr := db.foldFunnel(ctx); ferr != nil {
		err = errors.Join(err, fmt.Errorf("sweep sessions: %w", ferr))
	}
	return n, err
}

// sweepSessions is Sweep's first transaction: the lapsed secrets erased,
// then the sessions due deleted.
func (db *DB) sweepSessions(ctx context.Context, now time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	n := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE sessions SET sealed = NULL, lapse = NULL, lapsed = true WHERE id IN (
			SELECT id FROM sessions WHERE sealed IS NOT NULL AND lapse < $1 ORDER BY lapse, id LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			now, max)
		if err != nil {
			return fmt.Errorf("erase lapsed secrets: %w", err)
		}
		if db.funnel != nil {
			n, err = db.sweepCounted(ctx, tx, now, max)
			return err
		}
		tag, err := tx.Exec(ctx, sweepSQL, now, max)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep sessions: %w", err)
	}
	return n, nil
}

// SweepFailures deletes refused-login records and reservations from
// before a time, at most max, the oldest first. It returns how many it
// deleted.
func (db *DB) SweepFailures(ctx context.Context, before time.Time, max int) (int, error) {
	n, err := db.sweepOldest(ctx, "login_failures", "at", "id", "", before, max)
	if err != nil {
		return 0, fmt.Errorf("sweep login failures: %w", err)
	}
	return n, nil
}

// SweepMonoEvents forgets Mono event ids seen before a time (Mono retries
// for about 48 hours: older ids cannot come back), at most max of them.
func (db *DB) SweepMonoEvents(ctx context.Context, before time.Time, max int) (int, error) {
	n, err := db.sweepOldest(ctx, "mono_events", "seen", "id", "", before, max)
	if err != nil {
		return 0, fmt.Errorf("sweep mono event ids: %w", err)
	}
	return n, nil
}

// SweepMonoUpdates forgets account updates received before a time, at
// most max of them. It returns how many it forgot.
func (db *DB) SweepMonoUpdates(ctx context.Context, before time.Time, max int) (int, error) {
	n, err := db.sweepOldest(ctx, "mono_updates", "received", "account_id", "", before, max)
	if err != nil {
		return 0, fmt.Errorf("sweep account updates: %w", err)
	}
	return n, nil
}

// SweepAnswers forgets idempotency answers saved before a time (the
// partner API's idempotency-ttl ago), each aged from its last save, at
// most max of them. It returns how many it forgot.
func (db *DB) SweepAnswers(ctx context.Context, before time.Time, max int) (int, error) {
	n, err := db.sweepOldest(ctx, "idempotency", "created", "key", "", before, max)
	if err != nil {
		return 0, fmt.Errorf("sweep idempotency answers: %w", err)
	}
	return n, nil
}

// SweepInvites deletes invitations past their retention, with every way
// to find them (their code and reauthorisation entries go with them):
// hand-over invitations whose use ended (the later of their expiry and
// their last change) before handoversBefore, and the partner's whose use
// ended before partnersBefore (now less the invite retention: the partner
// can still read them back until then). At most max of each class, the
// longest over first; it returns how many it deleted.
func (db *DB) SweepInvites(ctx context.Context, handoversBefore, partnersBefore time.Time, max int) (int, error) {
	n := 0
	for _, class := range []struct {
		where  string
		before time.Time
	}{
		{"handover", handoversBefore},
		{"NOT handover", partnersBefore},
	} {
		swept, err := db.sweepOldest(ctx, "invitations", "ended", "id", class.where, class.before, max)
		n += swept
		if err != nil {
			return 0, fmt.Errorf("sweep invitations: %w", err)
		}
	}
	return n, nil
}
