package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// During a rolling upgrade an instance of the version before the shards
// (migration 00012) still adds to funnel: a read sums its rows with the
// shards' into one count per counter.
func TestCountsAnInstanceOfTheVersionBeforeAddedAreReadWithTheShards(t *testing.T) {
	db := gateways(t, 1)[0]
	ctx := t.Context()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	width := len(link.FunnelSecondsBounds) + 1
	old := make([]int64, width)
	old[0] = 2
	if _, err := db.pool.Exec(ctx, `INSERT INTO funnel (grouped_by, day, value, screen, reached, left_by, seconds)
		VALUES ('', $1, '', 'banks', 2, '{"exit": 1}', $2)`, day, old); err != nil {
		t.Fatal(err)
	}
	for i, reason := range []string{"exit", "failed", "exit"} {
		rec := &link.SessionRecord{ID: "s" + string(rune('0'+i)), Phone: "+2348030000001", Updated: day.Add(time.Hour),
			Purge: day.Add(48 * time.Hour), Data: []byte(`{}`)}
		e := &link.FunnelEntry{Day: day.Add(time.Hour), Dialect: "africastalking", Network: "MTN", Institution: "gtb",
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 0}}, EndedOn: "banks", Reason: reason}
		if err := db.Commit(ctx, link.Change{Session: rec, Funnel: e}); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := db.FunnelCounts(ctx, day, link.FunnelAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 1 {
		t.Fatalf("counts = %+v, want one counter", counts)
	}
	c := counts[0]
	if c.Screen != "banks" || c.Reached != 5 || c.Left["exit"] != 3 || c.Left["failed"] != 1 || c.Seconds[0] != 5 {
		t.Errorf("count = %+v, want banks reached 5, left exit 3 and failed 1, 5 in the first bucket", c)
	}
}

// endSessions commits n sessions of phone, each ending on otp after
// banks, the i-th for reason reasons[i%len(reasons)], on day.
func endSessions(t *testing.T, db *DB, prefix string, n int, day time.Time, reasons ...string) {
	t.Helper()
	for i := range n {
		rec := &link.SessionRecord{ID: fmt.Sprintf("%s-%d", prefix, i), Phone: "+2348030000001", Updated: day.Add(time.Hour),
			Purge: day.Add(48 * time.Hour), Data: []byte(`{}`)}
		e := &link.FunnelEntry{Day: day.Add(time.Hour), Dialect: "africastalking", Network: "MTN", Institution: "gtb",
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 1}, {Screen: "otp", Seconds: 400}}, EndedOn: "otp",
			Reason: reasons[i%len(reasons)]}
		if err := db.Commit(t.Context(), link.Change{Session: rec, Funnel: e}); err != nil {
			t.Fatal(err)
		}
	}
}

// staged is how many commits' counts wait in funnel_increments.
func staged(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM funnel_increments`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantEnded checks every grouping's counts of day: n sessions through
// banks and otp, left on otp as left says.
func wantEnded(t *testing.T, db *DB, day time.Time, n int, left map[string]int) {
	t.Helper()
	for _, by := range link.FunnelGroupings {
		counts, err := db.FunnelCounts(t.Context(), day, by)
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 2 {
			t.Fatalf("%q: %+v, want banks and otp", by, counts)
		}
		banks, otp := counts[0], counts[1]
		if banks.Screen != "banks" || banks.Reached != n || banks.Seconds[link.SecondsBucket(1)] != n || banks.Left != nil {
			t.Errorf("%q banks = %+v, want reached %d, all in 1 s's bucket, none left", by, banks, n)
		}
		last := len(otp.Seconds) - 1
		if otp.Screen != "otp" || otp.Reached != n || otp.Seconds[last] != n || len(otp.Left) != len(left) {
			t.Errorf("%q otp = %+v, want reached %d, all in the last bucket, left %v", by, otp, n, left)
		}
		for r, k := range left {
			if otp.Left[r] != k {
				t.Errorf("%q otp left %q %d times, want %d", by, r, otp.Left[r], k)
			}
		}
	}
}

// A commit keeps its funnel counts as one row; a read counts them before
// Sweep folds them into the counters and after, once.
func TestACommitsFunnelCountsAreReadOnceBeforeAndAfterTheirFold(t *testing.T) {
	db := gateways(t, 1)[0]
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	endSessions(t, db, "s", 5, day, "exit", "exit", "failed")
	if n := staged(t, db); n != 5 {
		t.Fatalf("%d commits' counts kept, want 5", n)
	}
	want := map[string]int{"exit": 4, "failed": 1}
	wantEnded(t, db, day, 5, want)
	if _, err := db.Sweep(t.Context(), day, 100); err != nil {
		t.Fatal(err)
	}
	if n := staged(t, db); n != 0 {
		t.Fatalf("%d commits' counts left after Sweep, want none", n)
	}
	wantEnded(t, db, day, 5, want)
	endSessions(t, db, "t", 2, day, "exit")
	want["exit"] += 2
	wantEnded(t, db, day, 7, want)
}

// Instances fold at once, each what the others do not hold: every count
// is added once.
func TestFoldsOfSeveralInstancesAtOnceAddEachCountOnce(t *testing.T) {
	dbs := gateways(t, 3)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const n = 2*foldBatch + 37 // more than one batch each
	arrays, err := funnelArrays(kit.FunnelCounts(&link.FunnelEntry{Day: day, Dialect: "africastalking", Network: "MTN", Institution: "gtb",
		Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 1}, {Screen: "otp", Seconds: 400}}, EndedOn: "otp", Reason: "exit"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].pool.Exec(t.Context(), `INSERT INTO funnel_increments (grouped_by, day, value, screen, reached, left_by, seconds, width)
		SELECT $1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::int FROM generate_series(1, $9::int)`,
		append(arrays, n)...); err != nil {
		t.Fatal(err)
	}
	moved := make([]int, len(dbs))
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Add(1)
		go func() { defer wg.Done(); moved[i], errs[i] = db.foldFunnel(t.Context()) }()
	}
	wg.Wait()
	total := 0
	for i := range dbs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += moved[i]
	}
	more, err := dbs[0].foldFunnel(t.Context()) // what a fold found held by another and left
	if err != nil {
		t.Fatal(err)
	}
	if left := staged(t, dbs[0]); total+more != n || left != 0 {
		t.Fatalf("the folds moved %d and then %d of %d rows, %d left", total, more, n, left)
	}
	wantEnded(t, dbs[0], day, n, map[string]int{"exit": n})
}

// Migration 00013's Down folds what is not folded yet, then drops the
// table: nothing counted is lost going back, and Up again starts empty.
func TestGoingBackBefore00013FoldsWhatWasKept(t *testing.T) {
	db := gateways(t, 1)[0]
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	endSessions(t, db, "s", 3, day, "exit", "failed")
	// Shard 0 already holds the counters: the fold adds to them.
	if _, err := db.Sweep(t.Context(), day, 100); err != nil {
		t.Fatal(err)
	}
	var moved int
	if err := db.pool.QueryRow(t.Context(), `WITH m AS (UPDATE funnel_shards SET shard = 0 RETURNING 1) SELECT count(*) FROM m`).Scan(&moved); err != nil || moved == 0 {
		t.Fatalf("moved %d counters to shard 0: %v", moved, err)
	}
	endSessions(t, db, "t", 2, day, "exit")
	err := withProvider(db.pool, func(p *goose.Provider) error {
		if _, err := p.DownTo(t.Context(), 12); err != nil {
			return err
		}
		var left bool
		if err := db.pool.QueryRow(t.Context(), `SELECT to_regclass('funnel_increments') IS NOT NULL`).Scan(&left); err != nil || left {
			return fmt.Errorf("funnel_increments still there (%v) after going back", err)
		}
		var reached int64
		if err := db.pool.QueryRow(t.Context(), `SELECT sum(reached) FROM funnel_shards WHERE grouped_by = '' AND screen = 'otp'`).Scan(&reached); err != nil || reached != 5 {
			return fmt.Errorf("otp reached %d times in funnel_shards (%v), want 5", reached, err)
		}
		_, err := p.Up(t.Context())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEnded(t, db, day, 5, map[string]int{"exit": 4, "failed": 1})
}

// A row the fold could not read back is refused when it is written (its
// commit fails), rather than stopping every fold after it.
func TestAKeptIncrementOfArraysThatDoNotMatchIsRefused(t *testing.T) {
	db := gateways(t, 1)[0]
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	arrays, err := funnelArrays(kit.FunnelCounts(&link.FunnelEntry{Day: day, Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 1}}}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spoil func(args []any) []any
	}{
		{"a screen too many", func(a []any) []any { a[3] = append(a[3].([]string), "otp"); return a }},
		{"a histogram cut short", func(a []any) []any { a[6] = a[6].([]int64)[1:]; return a }},
		{"no buckets", func(a []any) []any { a[7] = 0; return a }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.spoil(append([]any(nil), arrays...))
			if _, err := db.pool.Exec(t.Context(), stageFunnelSQL, args...); err == nil {
				t.Fatal("the row was kept")
			}
		})
	}
}
