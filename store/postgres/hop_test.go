package postgres_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/postgres"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// roundTrips counts what the store sends the database, one round trip per
// statement sent alone, per batch and per statement prepared.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (r *roundTrips) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// hopRecord is the session s1 as a hop leaves it.
func hopRecord(data string, at time.Time) *link.SessionRecord {
	return &link.SessionRecord{ID: "s1", Phone: "+2348031110001", Updated: at, Purge: at.Add(time.Hour),
		Lapse: at.Add(time.Minute), Data: []byte(data), Secrets: []byte("typed " + data)}
}

func TestACommonHopCostsTwoRoundTrips(t *testing.T) {
	ctx := context.Background()
	trips := &roundTrips{}
	db, err := postgres.Open(ctx, pgtest.URL(t), sealer(t, 7), postgres.WithTracer(trips))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	locks := db.Locks()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	// hop reads s1 under its lock and, unless it is a repeat, commits it
	// with one partner event and one text, as a hop through a form does,
	// a new link when linked, its funnel entry when it ended, and its
	// phone's language when it chose one.
	hop := func(data string, commit, linked, ended, chose bool) {
		t.Helper()
		hctx, unlock, err := locks.LockSession(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if _, err := db.Session(hctx, "s1"); err != nil && !errors.Is(err, link.ErrNoSession) {
			t.Fatal(err)
		}
		if !commit {
			return
		}
		at = at.Add(time.Second)
		c := link.Change{Session: hopRecord(data, at),
			Events: []link.Event{{ID: "evt_" + data, Type: link.TypeInstitutionSelected, Timestamp: at, Data: map[string]any{"session": "s1"}}},
			Texts:  []link.Text{{ID: "txt_" + data, Kind: link.TextReply, To: "+2348031110001", Created: at}}}
		if linked {
			c.Link = &link.Link{AccountID: "acc_" + data, Phone: "+2348031110001", Institution: "inst", Bank: "GTBank",
				AuthMethod: "internet_banking", Masked: "****1234", SessionID: "s1", Linked: at}
		}
		if ended {
			c.Funnel = &link.FunnelEntry{Day: at, Dialect: "africastalking", Network: "MTN", Institution: "gtb",
				Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 3}, {Screen: "bank_form", Seconds: 20}, {Screen: "otp", Seconds: 9}},
				EndedOn: "otp", Reason: "exit"}
		}
		if chose {
			c.Language = "ha"
		}
		if err := db.Commit(hctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, warm := range []string{"w1", "w2", "w3"} {
		hop(warm, true, false, false, false) // statements are prepared once per connection
		hop(warm+"l", true, true, false, false)
		hop(warm+"e", true, false, true, false)
		hop(warm+"le", true, true, true, false)
		hop(warm+"c", true, false, false, true)
		hop(warm+"lc", true, true, false, true)
	}
	tests := []struct {
		name                         string
		commit, linked, ended, chose bool
		want                         int // the read's round trip, and the commit's
	}{
		// A link is a transaction of its own beside the lane, written as
		// it came in one round trip when nothing stored decides otherwise
		// (linkAsIsSQL), its lock let go on the lane after it.
		{"a hop that links an account, decided from the stored link", true, true, false, false, 3},
		{"a repeated callback, answered from the stored reply", false, false, false, false, 2},
		{"a hop that ends its session, counted in the funnel in its commit's batch", true, false, true, false, 2},
		{"a hop that links and ends, counted in the funnel in the link's batch", true, true, true, false, 3},
		{"a hop that chooses a language, remembered in its commit's batch", true, false, false, true, 2},
		{"a hop that links and chooses a language, remembered in the link's batch", true, true, false, true, 3},
		{"a hop that commits", true, false, false, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := trips.n.Load()
			hop(tt.name, tt.commit, tt.linked, tt.ended, tt.chose)
			if n := trips.n.Load() - before; n != int64(tt.want) {
				t.Errorf("%d round trips, want %d", n, tt.want)
			}
		})
	}
	// Eight hops ended: the three warm-ups of each kind and the two measured.
	if counts, err := db.FunnelCounts(ctx, at, link.FunnelAll); err != nil || len(counts) != 3 || counts[0].Reached != 8 {
		t.Fatalf("the funnel after the hops: %+v, %v; want 3 screens each reached 8 times", counts, err)
	}
	if got, err := db.PhoneLanguage(ctx, "+2348031110001"); err != nil || got != "ha" {
		t.Fatalf("the phone's language after the hops: %q, %v; want ha", got, err)
	}
	if l, ok, err := db.Link(ctx, "acc_a hop that links an account, decided from the stored link"); err != nil || !ok || l.SessionID != "s1" {
		t.Fatalf("the link the hop made: %+v %v %v", l, ok, err)
	}
	got, err := db.Session(ctx, "s1")
	if err != nil || string(got.Data) != "a hop that commits" || string(got.Secrets) != "typed a hop that commits" {
		t.Fatalf("s1 after the hops: %+v, %v", got, err)
	}
	// A link its own session stored with another data status is decided
	// from what is stored: its batch as it came is refused and rolled
	// back (two round trips), then it is decided in two, and its lock let
	// go on the lane after it; the stored status is kept.
	relink := func(status string) int64 {
		t.Helper()
		before := trips.n.Load()
		hctx, unlock, err := locks.LockSession(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if _, err := db.Session(hctx, "s1"); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Second)
		l := &link.Link{AccountID: "acc_relinked", Phone: "+2348031110001", Institution: "inst", Bank: "GTBank",
			AuthMethod: "internet_banking", Masked: "****1234", SessionID: "s1", Linked: at, DataStatus: status}
		if err := db.Commit(hctx, link.Change{Session: hopRecord("a relink", at), Link: l}); err != nil {
			t.Fatal(err)
		}
		return trips.n.Load() - before
	}
	relink("PARTIAL")
	for range 3 {
		relink("AVAILABLE") // the fallback's statements prepared
	}
	if n := relink("AVAILABLE"); n != 6 {
		t.Errorf("a link decided from what is stored: %d round trips, want 6", n)
	}
	if l, ok, err := db.Link(ctx, "acc_relinked"); err != nil || !ok || l.DataStatus != "PARTIAL" {
		t.Errorf("the relinked account: %+v, %v, %v; want the stored data status kept", l, ok, err)
	}
}

func TestASessionsLockIsHeldFromItsReadAndLetGoOnceItsCommitIsDurable(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.URL(t), sealer(t, 8))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	locks := db.Locks()
	at := time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	if err := db.Commit(ctx, link.Change{Session: hopRecord("before", at)}); err != nil {
		t.Fatal(err)
	}

	hctx, unlock, err := locks.LockSession(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := db.Session(hctx, "s1"); err != nil { // takes the lock
		t.Fatal(err)
	}
	// Another instance cannot have the session while this hop holds it.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if other, err := locks.LockContext(short, "session:s1"); err == nil {
		other()
		t.Fatal("another instance took the session's lock while a hop held it")
	}
	cancel()

	if err := db.Commit(hctx, link.Change{Session: hopRecord("after", at.Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	// The commit let the lock go (before unlock is called), and whoever
	// takes it next reads what was committed.
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	octx, other, err := locks.LockSession(short, "s1")
	if err != nil {
		t.Fatal(err)
	}
	defer other()
	got, err := db.Session(octx, "s1")
	if err != nil || string(got.Data) != "after" {
		t.Fatalf("the next holder read %+v, %v; want the committed session", got, err)
	}
}

func TestAHopsCommitRecordsRefusedLoginsAndReleasesReservations(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.URL(t), sealer(t, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const phone = "+2348031110001"
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	since := at.Add(-time.Hour)
	_, ok, err := db.ReserveAttempt(ctx, phone, since, at, 3) // the guess the bank refuses
	if err != nil || !ok {
		t.Fatalf("reserve: %v %v", ok, err)
	}
	released, ok, err := db.ReserveAttempt(ctx, phone, since, at, 3)
	if err != nil || !ok {
		t.Fatalf("reserve: %v %v", ok, err)
	}
	hctx, unlock, err := db.Locks().LockSession(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(hctx, "s1"); !errors.Is(err, link.ErrNoSession) {
		t.Fatal(err)
	}
	// The bank refused the first guess and did not judge the second.
	err = db.Commit(hctx, link.Change{Session: hopRecord("refused", at), LoginFailure: true, Release: []string{released}})
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	// The refused guess's reservation and the refusal count; the released
	// reservation does not.
	if n, err := db.LoginFailures(ctx, phone, since); err != nil || n != 2 {
		t.Fatalf("failures after the commit = %d, %v; want the kept reservation and the refusal", n, err)
	}
	if _, ok, err := db.ReserveAttempt(ctx, phone, since, at, 3); err != nil || !ok {
		t.Fatalf("a third guess was refused: %v", err)
	}
	if _, ok, err := db.ReserveAttempt(ctx, phone, since, at, 3); err != nil || ok {
		t.Fatalf("a fourth guess within the window was reserved (%v), want the phone locked out", err)
	}
}

func TestTheNextHolderOfASessionReadsWhatTheLastOneCommittedWhateverTheServersIsolation(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// A server whose default would give the lock and the read one snapshot.
	if _, err := admin.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L',
		current_database(), 'repeatable read'); END $$`); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, url, sealer(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)
	if err := db.Commit(ctx, link.Change{Session: hopRecord("before", at)}); err != nil {
		t.Fatal(err)
	}
	locks := db.Locks()
	first, unlockFirst, err := locks.LockSession(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlockFirst()
	if _, err := db.Session(first, "s1"); err != nil {
		t.Fatal(err)
	}
	// The next hop's lock and read go out together and wait for the first.
	read := make(chan *link.SessionRecord, 1)
	go func() {
		next, unlock, err := locks.LockSession(ctx, "s1")
		if err != nil {
			t.Error(err)
			read <- nil
			return
		}
		defer unlock()
		r, err := db.Session(next, "s1")
		if err != nil {
			t.Error(err)
		}
		read <- r
	}()
	for waiting := 0; waiting == 0; {
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Commit(first, link.Change{Session: hopRecord("after", at.Add(time.Second))}); err != nil {
		t.Fatal(err)
	}
	if r := <-read; r == nil || string(r.Data) != "after" {
		t.Fatalf("the next holder read %+v, want the first holder's commit", r)
	}
}
