package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
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
// transactions adding to the same rows lock them in one order). Sweep adds
// the counts of the sessions it deletes with it, and the sums of what it
// folds (foldFunnel); an instance of the version before 00013 adds its
// commits' counts with it too.
const addFunnelSQL = `INSERT INTO funnel_shards (grouped_by, day, value, screen, shard, reached, left_by, seconds)
	SELECT u.grouped_by, u.day, u.value, u.screen, $9::smallint, u.reached, u.left_by::jsonb,
		($7::bigint[])[(u.i::int - 1) * $8::int + 1 : u.i::int * $8::int]
	FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::text[])
		WITH ORDINALITY AS u(grouped_by, day, value, screen, reached, left_by, i)
	ORDER BY u.i
	` + mergeFunnelSQL

// mergeFunnelSQL adds an increment to the row of its counter and shard: a
// counter's reasons are merged key by key; an increment without any
// leaves them as they are.
const mergeFunnelSQL = `ON CONFLICT (grouped_by, day, value, screen, shard) DO UPDATE SET
		reached = funnel_shards.reached + EXCLUDED.reached,
		seconds = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)
			FROM unnest(funnel_shards.seconds, EXCLUDED.seconds) WITH ORDINALITY AS s(a, b, i) ORDER BY s.i),
		left_by = CASE WHEN EXCLUDED.left_by = '{}' THEN funnel_shards.left_by ELSE (
			SELECT jsonb_object_agg(r.key, r.n) FROM (
				SELECT e.key, sum(e.value::bigint) AS n
				FROM (SELECT * FROM jsonb_each_text(funnel_shards.left_by) UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED.left_by)) AS e
				GROUP BY e.key) AS r) END`

// stageFunnelSQL keeps a commit's funnel counts as one row of
// funnel_increments (migration 00013), in addFunnelSQL's arrays, for
// Sweep to fold into funnel_shards (foldFunnel): one row inserted
// where the upsert changed a row for each counter, the commit's costliest
// statement.
const stageFunnelSQL = `INSERT INTO funnel_increments (grouped_by, day, value, screen, reached, left_by, seconds, width)
	VALUES ($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::int)`

// incrementRowsSQL unnests the rows of funnel_increments into one row per
// counter increment, as funnel_shards' columns, for FunnelCounts.
const incrementRowsSQL = `SELECT u.grouped_by COLLATE "C" AS grouped_by, u.day, u.value COLLATE "C" AS value, u.screen COLLATE "C" AS screen,
		u.reached, u.left_by::jsonb AS left_by, t.seconds[(u.i::int - 1) * t.width + 1 : u.i::int * t.width] AS seconds
	FROM funnel_increments t, unnest(t.grouped_by, t.day, t.value, t.screen, t.reached, t.left_by)
		WITH ORDINALITY AS u(grouped_by, day, value, screen, reached, left_by, i)`

// takeIncrementsSQL deletes up to $1 rows of funnel_increments, the
// oldest first and none another fold holds, and hands them back.
const takeIncrementsSQL = `DELETE FROM funnel_increments WHERE id IN (
		SELECT id FROM funnel_increments ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
	RETURNING grouped_by, day, value, screen, reached, left_by, seconds, width`

// foldBatch is how many rows of funnel_increments one fold moves.
const foldBatch = 1000

// foldFunnel folds funnel_increments into funnel_shards, a batch a
// transaction, until a batch finds fewer rows than it could take (those
// other folds hold, or none). It returns how many rows it moved.
func (db *DB) foldFunnel(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := db.foldOnce(ctx)
		total += n
		if err != nil {
			return total, fmt.Errorf("fold funnel counts: %w", err)
		}
		if n < foldBatch {
			return total, nil
		}
	}
}

// foldOnce moves one batch: in one transaction the rows are deleted,
// their counts summed here (kit.SortCounters) and added to their counters
// with one upsert, in a shard chosen at random.
func (db *DB) foldOnce(ctx context.Context) (int, error) {
	n := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, takeIncrementsSQL, foldBatch)
		if err != nil {
			return err
		}
		lists, err := pgx.CollectRows(rows, scanIncrement)
		if err != nil {
			return err
		}
		n = len(lists)
		sum := kit.SortCounters(slices.Concat(lists...)) // the fold's own rows: summed in place
		if len(sum) == 0 {
			return nil
		}
		args, err := funnelArgs(sum)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, addFunnelSQL, args...)
		return err
	})
	return n, err
}

// scanIncrement reads a row of funnel_increments back into the counts it
// was written from.
func scanIncrement(row pgx.CollectableRow) ([]link.FunnelCount, error) {
	var (
		bys, values, screens, lefts []string
		days                        []time.Time
		reached, seconds            []int64
		width                       int
	)
	if err := row.Scan(&bys, &days, &values, &screens, &reached, &lefts, &seconds, &width); err != nil {
		return nil, err
	}
	n := len(bys)
	if len(days) != n || len(values) != n || len(screens) != n || len(reached) != n || len(lefts) != n || width <= 0 || len(seconds) != n*width {
		return nil, fmt.Errorf("a funnel increment of %d counters has arrays of other lengths", n)
	}
	counts := make([]link.FunnelCount, n)
	for i := range counts {
		var left map[string]int
		if err := json.Unmarshal([]byte(lefts[i]), &left); err != nil {
			return nil, fmt.Errorf("a funnel increment's departures: %w", err)
		}
		counts[i] = storedCount(bys[i], days[i], values[i], screens[i], reached[i], left, seconds[i*width:(i+1)*width])
	}
	return counts, nil
}

// storedCount is a counter as PostgreSQL keeps it, read back: a date
// comes back as its midnight, in whatever zone (the day is its date), and
// an empty map of departures is none.
func storedCount(by string, day time.Time, value, screen string, reached int64, left map[string]int, seconds []int64) link.FunnelCount {
	c := link.FunnelCount{By: by, Day: time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC),
		Value: value, Screen: screen, Reached: int(reached)}
	if len(left) > 0 {
		c.Left = left
	}
	histogram := make([]int, len(seconds))
	for i, n := range seconds {
		histogram[i] = int(n)
	}
	c.Seconds = kit.FunnelSeconds(histogram)
	return c
}

// funnelShards is how many rows of funnel_shards a counter may be kept in
// (migration 00012 says why).
const funnelShards = 16

// funnelArgs are addFunnelSQL's arguments for counts (kit.FunnelCounts'),
// in a shard chosen at random.
func funnelArgs(counts []link.FunnelCount) ([]any, error) {
	args, err := funnelArrays(counts)
	if err != nil {
		return nil, err
	}
	return append(args, rand.IntN(funnelShards)), nil
}

// funnelArrays are counts (kit.FunnelCounts') as addFunnelSQL's and
// stageFunnelSQL's first eight arguments.
func funnelArrays(counts []link.FunnelCount) ([]any, error) {
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
	return []any{bys, days, values, screens, reached, lefts, seconds, width}, nil
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
	// One statement, one snapshot: a count not folded yet is read from
	// funnel_increments, a folded one from funnel_shards, never both.
	rows, err := db.pool.Query(ctx, `SELECT day, value, screen, reached, left_by, seconds FROM (
			SELECT day, value, screen, reached, left_by, seconds FROM funnel WHERE grouped_by = $1 AND day >= $2
			UNION ALL
			SELECT day, value, screen, reached, left_by, seconds FROM funnel_shards WHERE grouped_by = $1 AND day >= $2
			UNION ALL
			SELECT day, value, screen, reached, left_by, seconds FROM (`+incrementRowsSQL+`) AS i
				WHERE grouped_by = $1 AND day >= $2) AS c
		ORDER BY day, value, screen`, by, kit.FunnelDay(since))
	if err != nil {
		return nil, fmt.Errorf("read funnel counts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (link.FunnelCount, error) {
		var (
			day           time.Time
			value, screen string
			reached       int64
			left          map[string]int
			seconds       []int64
		)
		if err := row.Scan(&day, &value, &screen, &reached, &left, &seconds); err != nil {
			return link.FunnelCount{}, err
		}
		return storedCount(by, day, value, screen, reached, left, seconds), nil
	})
	if err != nil {
		return nil, fmt.Errorf("read funnel counts: %w", err)
	}
	// A counter's rows (its shards, and its row in funnel from before
	// them) lie side by side in the query's order: summed into one.
	return kit.MergeCounters(out), nil
}
