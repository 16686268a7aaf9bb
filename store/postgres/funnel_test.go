package postgres

import (
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
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
