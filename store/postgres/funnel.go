package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// WithFunnel makes Sweep count each session it deletes in the drop-off
// funnel: f is asked, in the sweep's transaction, for the entry of each
// record (given without its secrets, which the funnel never names), and a
// non-nil entry's counts are added in that transaction. So a session
// abandoned mid-conversation is counted once, when it is swept, even
// across a crash. Without it Sweep counts nothing (see store.WithFunnel:
// the same rule).
func WithFunnel(f link.FunnelOf) Option { return func(db *DB) { db.funnel = f } }

// addFunnelSQL adds a set of increments to their counters' rows in one
// shard ($9) of funnel_shards (migration 00012), all in one statement whatever their number: each column is
// an array ($7 the histograms one after the other, $8 buckets each),
// unnested row by row in the order given (kit.FunnelCounts', so that
// commits adding to the same rows lock them in one order). A counter's
// reasons are merged key by key; an increment without any leaves them as
// they are.
const addFunnelSQL = `INSERT INTO funnel_shards (grouped_by, day, value, screen, shard, reached, left_by, seconds)
	SELECT u.grouped_by, u.day, u.value, u.screen, $9::smallint, u.reached, u.left_by::jsonb,
		($7::bigint[])[(u.i::int - 1) * $8::int + 1 : u.i::int * $8::int]
	FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::text[])
		WITH ORDINALITY AS u(grouped_by, day, value, screen, reached, left_by, i)
	ORDER BY u.i
	ON CONFLICT (grouped_by, day, value, screen, shard) DO UPDATE SET
		reached = funnel_shards.reached + EXCLUDED.reached,
		seconds = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
			FROM unnest(funnel_shards.seconds, EXCLUDED.seconds) WITH ORDINALITY AS s(a, b, i) ORDER BY s.i),
		left_by = CASE WHEN EXCLUDED.left_by = '{}' THEN funnel_shards.left_by ELSE (
			SELECT jsonb_object_agg(r.key, r.n) FROM (
				SELECT e.key, sum(e.value::bigint) AS n
				FROM (SELECT * FROM jsonb_each_text(funnel_shards.left_by) UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED.left_by)) AS e
				GROUP BY e.key) AS r) END`

// funnelShards is how many rows of funnel_shards a counter may be kept in
// (migration 00012 says why).
const funnelShards = 16

// funnelArgs are addFunnelSQL's arguments for counts (kit.FunnelCounts'),
// in a shard chosen at random.
func funnelArgs(counts []link.FunnelCount) ([]any, error) {
	width := len(link.FunnelSecondsBounds) + 1
	var (
		bys, values, screens, lefts = make([]string, len(counts)), make([]string, len(counts)), make([]string, len(counts)), make([]string, len(counts))
		days                        = make([]time.Time, len(counts))
		reached                     = make([]int64, len(counts))
		seconds                     = make([]int64, 0, width*len(counts))
	)
	for i, c := range counts {
		bys[i], days[i], values[i], screens[i], reached[i] = c.By, c.Day, c.Value, c.Screen, int64(c.Reached)
		left := c.Left
		if left == nil {
			left = map[string]int{}
		}
		raw, err := json.Marshal(left)
		if err != nil {
			return nil, fmt.Errorf("encode funnel departures: %w", err)
		}
		lefts[i] = string(raw)
		for _, n := range kit.FunnelSeconds(c.Seconds) {
			seconds = append(seconds, int64(n))
		}
	}
	return []any{bys, days, values, screens, reached, lefts, seconds, width, rand.IntN(funnelShards)}, nil
}

// queueFunnel adds to b the statement that adds counts, when there are any.
func queueFunnel(b *pgx.Batch, counts []link.FunnelCount) error {
	if len(counts) == 0 {
		return nil
	}
	args, err := funnelArgs(counts)
	if err != nil {
		return err
	}
	b.Queue(addFunnelSQL, args...)
	return nil
}

// sweepSQL deletes the sessions Sweep takes; sweepCountedSQL does too,
// and hands each back (without its secrets) for the funnel's hook.
const (
	sweepSQL = `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE purge < $1 ORDER BY purge, id LIMIT $2 FOR UPDATE SKIP LOCKED)`
	sweepCountedSQL = `DELETE FROM sessions s WHERE s.id IN (
		SELECT id FROM sessions WHERE purge < $1 ORDER BY purge, id LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING ` + holderColumns
)

// sweepCounted deletes the sessions due before now (at most max) in tx,
// asking the funnel's hook for the entry of each and adding their counts
// in tx. It returns how many it deleted.
func (db *DB) sweepCounted(ctx context.Context, tx pgx.Tx, now time.Time, max int) (int, error) {
	rows, err := tx.Query(ctx, sweepCountedSQL, now, max)
	if err != nil {
		return 0, err
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*link.SessionRecord, error) {
		r, _, err := scanSession(row)
		return r, err
	})
	if err != nil {
		return 0, err
	}
	ended := make([]*link.FunnelEntry, 0, len(recs))
	for _, r := range recs {
		ended = append(ended, db.funnel(r))
	}
	counts := kit.FunnelCounts(ended...)
	if len(counts) == 0 {
		return len(recs), nil
	}
	args, err := funnelArgs(counts)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, addFunnelSQL, args...); err != nil {
		return 0, fmt.Errorf("count swept sessions in the funnel: %w", err)
	}
	return len(recs), nil
}

// FunnelCounts returns the counters of one grouping (one of
// link.FunnelGroupings) from since's UTC day on, in (day, value, screen)
// order. Left is nil for a screen no session ended on.
func (db *DB) FunnelCounts(ctx context.Context, since time.Time, by string) ([]link.FunnelCount, error) {
	if err := kit.FunnelGrouping(by); err != nil {
		return nil, fmt.Errorf("read funnel counts: %w", err)
	}
	rows, err := db.pool.Query(ctx, `SELECT day, value, screen, reached, left_by, seconds FROM (
			SELECT day, value, screen, reached, left_by, seconds FROM funnel WHERE grouped_by = $1 AND day >= $2
			UNION ALL
			SELECT day, value, screen, reached, left_by, seconds FROM funnel_shards WHERE grouped_by = $1 AND day >= $2) AS c
		ORDER BY day, value, screen`, by, kit.FunnelDay(since))
	if err != nil {
		return nil, fmt.Errorf("read funnel counts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (link.FunnelCount, error) {
		c := link.FunnelCount{By: by}
		var (
			reached int64
			left    map[string]int
			seconds []int64
		)
		if err := row.Scan(&c.Day, &c.Value, &c.Screen, &reached, &left, &seconds); err != nil {
			return c, err
		}
		// A date comes back as its midnight, in whatever zone: the
		// day is its date.
		c.Day, c.Reached = time.Date(c.Day.Year(), c.Day.Month(), c.Day.Day(), 0, 0, 0, 0, time.UTC), int(reached)
		if len(left) > 0 {
			c.Left = left
		}
		histogram := make([]int, len(seconds))
		for i, n := range seconds {
			histogram[i] = int(n)
		}
		c.Seconds = kit.FunnelSeconds(histogram)
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read funnel counts: %w", err)
	}
	// A counter's rows (its shards, and its row in funnel from before
	// them) lie side by side in the query's order: summed into one.
	return kit.MergeCounters(out), nil
}
