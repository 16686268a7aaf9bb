package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

func TestASessionBatchLeavesWhatWritingItsSessionsInTurnWould(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	row := func(id, phoneKey, data string, latest bool) sessionRow {
		return sessionRow{id: id, phone: "+" + phoneKey, phoneKey: phoneKey, updated: at, purge: at, data: []byte(data), latest: latest}
	}
	tests := []struct {
		name                 string
		rows                 []sessionRow
		ids, data            []string // the sessions written, in order, and what each holds
		latestKeys, latestOf []string // the phones made a session's latest, and whose
	}{
		{"each session once, each phone once", []sessionRow{row("a", "1", "a1", false), row("b", "2", "b1", false)},
			[]string{"a", "b"}, []string{"a1", "b1"}, []string{"1", "2"}, []string{"a", "b"}},
		{"a session added twice is written as the second left it, in the place of the first",
			[]sessionRow{row("a", "1", "a1", false), row("b", "2", "b1", false), row("a", "1", "a2", false)},
			[]string{"a", "b"}, []string{"a2", "b1"}, []string{"1", "2"}, []string{"a", "b"}},
		{"a phone two sessions made their latest is the second's (a retired session, then its successor)",
			[]sessionRow{row("old", "3", "o", false), row("new", "3", "n", false)},
			[]string{"old", "new"}, []string{"o", "n"}, []string{"3"}, []string{"new"}},
		{"a session already its phone's latest leaves the phone unwritten",
			[]sessionRow{row("a", "1", "a1", true), row("b", "2", "b1", false)},
			[]string{"a", "b"}, []string{"a1", "b1"}, []string{"2"}, []string{"b"}},
		{"the phone's latest stays with the last session that made itself so",
			[]sessionRow{row("old", "3", "o", false), row("new", "3", "n", true)},
			[]string{"old", "new"}, []string{"o", "n"}, []string{"3"}, []string{"old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sb sessionBatch
			for _, r := range tt.rows {
				sb.add(r)
			}
			var data []string
			for _, d := range sb.data {
				data = append(data, string(d))
			}
			if !slices.Equal(sb.ids, tt.ids) || !slices.Equal(data, tt.data) {
				t.Errorf("sessions %q holding %q, want %q holding %q", sb.ids, data, tt.ids, tt.data)
			}
			if !slices.Equal(sb.latestKeys, tt.latestKeys) || !slices.Equal(sb.latestIDs, tt.latestOf) {
				t.Errorf("phones %q made the latest of %q, want %q of %q", sb.latestKeys, sb.latestIDs, tt.latestKeys, tt.latestOf)
			}
			b := &pgx.Batch{}
			if n, want := sb.queue(b), min(1, len(tt.ids))+min(1, len(tt.latestKeys)); n != want || b.Len() != want {
				t.Errorf("queued %d statements (%d in the batch), want %d", n, b.Len(), want)
			}
		})
	}
}

func TestAGroupCommitWritesItsSessionsInOneStatementAndASessionRefusedFailsItsCommitAlone(t *testing.T) {
	tests := []struct {
		name  string
		spoil string // the session the server refuses; "": none
	}{
		{"the group's sessions in one statement, its phones' latest in another", ""},
		{"a session the server refuses fails its own commit, the others are written", "sb-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			url := pgtest.URL(t)
			g := newLaneGate()
			db := openLane(t, url, g)
			admin := adminConn(t, url)
			at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			ids := []string{"sb-01", "sb-02", "sb-03"}
			changes := make([]link.Change, len(ids))
			for i, id := range ids {
				changes[i] = link.Change{Session: laneRecord(id, at)}
			}
			changes[1].Session.Secrets = nil // its sealed column stays NULL
			// sb-03 retires sb-09, of its phone: the phone's latest is
			// written twice in the group, the retired session first.
			retired := laneRecord("sb-09", at)
			retired.Phone = changes[2].Session.Phone
			changes[2].Retired = retired
			if tt.spoil != "" {
				changes[slices.Index(ids, tt.spoil)].Session.Phone = "+23480311100\xff" // not UTF-8
			}
			var queued []queuedCommit
			for i, id := range ids {
				hctx, _ := newHop(t, db, id)
				w, err := db.newCommitWrite(changes[i])
				if err != nil {
					t.Fatal(err)
				}
				queued = append(queued, queuedCommit{id, hctx, w})
			}
			for i, err := range commitTogether(t, db, g, "sb-99", queued) {
				if (err != nil) != (ids[i] == tt.spoil) {
					t.Errorf("commit of %s: %v, want an error: %v", ids[i], err, ids[i] == tt.spoil)
				}
			}
			for _, id := range append(ids, "sb-09") {
				r, err := db.Session(ctx, id)
				switch {
				case id == tt.spoil:
					if err == nil {
						t.Errorf("the refused %s was written: %+v", id, r)
					}
				case err != nil:
					t.Errorf("%s after its commit: %v", id, err)
				case r.ID == "sb-02" && r.Secrets != nil, r.ID != "sb-02" && string(r.Secrets) != "typed in "+id:
					t.Errorf("%s's secrets after its commit: %q", id, r.Secrets)
				}
			}
			var sealedNull bool
			if tt.spoil == "" {
				if err := admin.QueryRow(ctx, `SELECT sealed IS NULL FROM sessions WHERE id = 'sb-02'`).Scan(&sealedNull); err != nil || !sealedNull {
					t.Errorf("a session without secrets has a sealed value: null %v, %v", sealedNull, err)
				}
			}
			if latest, err := db.Latest(ctx, changes[2].Session.Phone); err != nil || latest.ID != "sb-03" {
				t.Errorf("the latest session of sb-03's phone: %+v, %v; want sb-03 (which retired sb-09)", latest, err)
			}
			batches, rows := g.groupBatchRows()
			if len(batches) == 0 {
				t.Fatal("no group commit")
			}
			first := batches[0]
			if n, w := statements(first, upsertSessionsSQL), sum(rows[0]); n != 1 || w != len(ids)+1 || statements(first, upsertSessionSQL) != 0 {
				t.Errorf("the first group wrote %d sessions in %d statements of many and %d of one, want %d in 1 and 0:\n%s",
					w, n, statements(first, upsertSessionSQL), len(ids)+1, first)
			}
			if statements(first, makeLatestManySQL) != 1 || statements(first, makeLatestSQL) != 0 {
				t.Errorf("the first group made its phones' latest in %d statements of many and %d of one, want 1 and 0",
					statements(first, makeLatestManySQL), statements(first, makeLatestSQL))
			}
			if tt.spoil == "" {
				if len(batches) != 1 {
					t.Errorf("%d group commits, want 1", len(batches))
				}
				return
			}
			// Sent again, each commit wrote its own sessions: the refused
			// one failed alone.
			if len(batches) < 2 || statements(batches[1], upsertSessionsSQL) != 0 || sum(rows[1]) != len(ids)+1 {
				t.Errorf("after the refusal, group commits %s", fmt.Sprint(batches[1:]))
			}
		})
	}
}

// batchRecorder records the statements of every batch, and their
// arguments.
type batchRecorder struct {
	noTrace
	mu      sync.Mutex
	batches [][]*pgx.QueuedQuery
}

func (r *batchRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, slices.Clone(data.Batch.QueuedQueries))
	return ctx
}

// linkBatch is the batch that wrote a link.
func (r *batchRecorder) linkBatch(t *testing.T) []*pgx.QueuedQuery {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		if slices.ContainsFunc(b, func(q *pgx.QueuedQuery) bool { return strings.HasPrefix(q.SQL, "INSERT INTO links") }) {
			return b
		}
	}
	t.Fatal("no batch wrote the link")
	return nil
}

// xactLocks are the statements of b taking transaction locks of keys
// with prefix, each as the keys it locks: by xactLockSQL, xactLocksSQL
// or (its fence) fencedSQL.
func xactLocks(b []*pgx.QueuedQuery, prefix string) [][]string {
	var out [][]string
	for _, q := range b {
		var keys []string
		switch q.SQL {
		case xactLockSQL, fencedSQL:
			keys = []string{q.Arguments[0].(string)}
		case xactLocksSQL:
			keys = q.Arguments[0].([]string)
		}
		if len(keys) > 0 && strings.HasPrefix(keys[0], prefix) {
			out = append(out, keys)
		}
	}
	return out
}

// batchSQLs are the statements of b.
func batchSQLs(b []*pgx.QueuedQuery) []string {
	out := make([]string, len(b))
	for i, q := range b {
		out[i] = q.SQL
	}
	return out
}

func TestALinkCommitTakesItsFenceAndTheLocksOfItsMessagesKeysInAStatementEach(t *testing.T) {
	tests := []struct {
		name  string
		onHop bool // under the session's lock, beside its lane; else a transaction of its own
	}{
		{"beside the lane", true},
		{"off any hop", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			rec := &batchRecorder{}
			db := openTraced(t, pgtest.URL(t), rec)
			at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			c := linkChange("lk-01", "acc_lk", at)
			c.Events = []link.Event{
				{ID: "evt_selected", Type: link.TypeInstitutionSelected, Timestamp: at, Data: map[string]any{"session": "lk-01"}},
				{ID: "evt_linked", Type: link.TypeAccountLinked, Timestamp: at, Data: map[string]any{"account_id": "acc_lk"}},
			}
			c.Texts = []link.Text{{ID: "txt_receipt", Kind: link.TextReceipt, To: "+2348031110001", Created: at}}
			hctx := ctx
			if tt.onHop {
				hctx, _ = newHop(t, db, "lk-01")
			}
			if err := db.Commit(hctx, c); err != nil {
				t.Fatal(err)
			}
			want := []string{"ussdlink:queue:" + queueWebhooks + ":account:acc_lk", "ussdlink:queue:" + queueWebhooks + ":session:lk-01",
				"ussdlink:queue:" + queueTexts + ":phone:2348031110001"}
			b := rec.linkBatch(t)
			if got := xactLocks(b, "ussdlink:queue:"); len(got) != 1 || !slices.Equal(got[0], want) {
				t.Errorf("the link's commit locked its messages' keys as %q, want one statement of %q", got, want)
			}
			// Beside the lane, the fence and the check that the lane still
			// holds the session are one statement.
			fences := xactLocks(b, fenceKey(""))
			if tt.onHop && (len(fences) != 1 || statements(batchSQLs(b), fencedSQL) != 1) || !tt.onHop && len(fences) != 0 {
				t.Errorf("the link's commit took its session's fence as %q, in %d fencedSQL", fences, statements(batchSQLs(b), fencedSQL))
			}
			var webhooks, texts int
			if err := db.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE queue = $1), count(*) FILTER (WHERE queue = $2) FROM messages`,
				queueWebhooks, queueTexts).Scan(&webhooks, &texts); err != nil || webhooks != 2 || texts != 1 {
				t.Errorf("queued %d webhooks and %d texts, %v; want 2 and 1", webhooks, texts, err)
			}
		})
	}
}
