package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// laneGate holds a batch at its start while shut (a lane's reads, unless
// told otherwise), and records the statements of every batch.
type laneGate struct {
	noTrace
	mu      sync.Mutex
	holds   func(sqls []string) bool // the batches held
	shut    chan struct{}            // closed: open
	held    chan struct{}            // a batch is held
	batches [][]string
	rows    [][]int // of each batch, the sessions each statement writes (sessionsWritten)
}

func newLaneGate() *laneGate {
	g := &laneGate{shut: make(chan struct{}), held: make(chan struct{}, 1),
		holds: func(sqls []string) bool { return len(sqls) > 0 && sqls[0] == tryLocksSQL }}
	close(g.shut)
	return g
}

// waitFor fails the test unless cond holds within a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

// waiting reports whether a backend of url's database waits for an
// advisory lock.
func waiting(t *testing.T, admin *pgx.Conn) bool {
	t.Helper()
	return waiters(t, admin) > 0
}

// waiters counts the backends of url's database waiting for an advisory
// lock.
func waiters(t *testing.T, admin *pgx.Conn) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// close holds the next read batch of a lane; open lets it go.
func (g *laneGate) close() { g.mu.Lock(); g.shut = make(chan struct{}); g.mu.Unlock() }
func (g *laneGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.shut:
	default:
		close(g.shut)
	}
}

func (g *laneGate) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	sqls := batchSQL(data)
	g.mu.Lock()
	g.batches = append(g.batches, sqls)
	g.rows = append(g.rows, sessionsWritten(data.Batch.QueuedQueries))
	shut := g.shut
	g.mu.Unlock()
	if g.holds(sqls) {
		select {
		case <-shut:
		default:
			g.held <- struct{}{}
			<-shut
		}
	}
	return ctx
}

// noTrace traces nothing: a tracer embeds it for the events it does not
// look at.
type noTrace struct{}

func (noTrace) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (noTrace) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (noTrace) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (noTrace) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// batchSQL is the statements of the batch data starts.
func batchSQL(data pgx.TraceBatchStartData) []string { return batchSQLs(data.Batch.QueuedQueries) }

// sessionsWritten is, for each of qs, how many sessions it writes: one
// for upsertSessionSQL, one for each of its ids for upsertSessionsSQL.
func sessionsWritten(qs []*pgx.QueuedQuery) []int {
	out := make([]int, len(qs))
	for i, q := range qs {
		switch q.SQL {
		case upsertSessionSQL:
			out[i] = 1
		case upsertSessionsSQL:
			out[i] = len(q.Arguments[0].([]string))
		}
	}
	return out
}

// groups are the batches that committed a group: how many sessions each
// wrote.
func (g *laneGate) groups() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for i, b := range g.batches {
		if len(b) == 0 || b[len(b)-1] != unlocksSQL {
			continue
		}
		if slices.Contains(b, `BEGIN`) {
			out = append(out, sum(g.rows[i]))
		}
	}
	return out
}

// sum adds ns up.
func sum(ns []int) int {
	n := 0
	for _, v := range ns {
		n += v
	}
	return n
}

// groupBatches are the statements of each batch g saw that held a group
// commit's transaction.
func (g *laneGate) groupBatches() [][]string {
	b, _ := g.groupBatchRows()
	return b
}

// groupBatchRows is groupBatches with the sessions each statement of
// them writes (sessionsWritten).
func (g *laneGate) groupBatchRows() ([][]string, [][]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out [][]string
	var rows [][]int
	for i, b := range g.batches {
		if slices.Contains(b, `BEGIN`) {
			out, rows = append(out, b), append(rows, g.rows[i])
		}
	}
	return out, rows
}

// statements counts the statements of sqls that begin with prefix (a
// statement's whole text counts that statement).
func statements(sqls []string, prefix string) int {
	n := 0
	for _, sql := range sqls {
		if strings.HasPrefix(sql, prefix) {
			n++
		}
	}
	return n
}

// laneRecord is session id as its hop leaves it.
func laneRecord(id string, at time.Time) *link.SessionRecord {
	return &link.SessionRecord{ID: id, Phone: "+23480311100" + id[len(id)-2:], Updated: at, Purge: at.Add(time.Hour),
		Data: []byte("data of " + id), Secrets: []byte("typed in " + id)}
}

// openLane opens an instance whose hops share one lane, traced by g.
func openLane(t *testing.T, url string, g *laneGate) *DB {
	t.Helper()
	db := openTraced(t, url, g)
	t.Cleanup(g.open) // a test that failed with a batch held lets it go before the store closes
	return db
}

// openTraced opens an instance whose hops share one lane, traced by
// tracer.
func openTraced(t *testing.T, url string, tracer pgx.QueryTracer) *DB {
	t.Helper()
	sealer, err := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), url, sealer, withLanes(1), WithTracer(tracer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// heldElsewhere reports whether another instance fails to take key's
// lock at once.
func heldElsewhere(t *testing.T, other *DB, key string) bool {
	t.Helper()
	var got bool
	conn, err := other.held.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if err := conn.QueryRow(t.Context(), `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got {
		if _, err := conn.Exec(t.Context(), unlockSQL, key); err != nil {
			t.Fatal(err)
		}
	}
	return !got
}

// newHop locks session id (never stored) on db and reads it, as a hop's
// first read does; unlock is called at the test's end if not before.
func newHop(t *testing.T, db *DB, id string) (context.Context, func()) {
	t.Helper()
	hctx, unlock, err := db.Locks().LockSession(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	done := func() { once.Do(unlock) }
	t.Cleanup(done)
	if _, err := db.Session(hctx, id); !errors.Is(err, link.ErrNoSession) {
		t.Fatalf("read %s: %v", id, err)
	}
	return hctx, done
}

// adminConn is a connection of its own to url's database, to look at
// its locks and end its backends.
func adminConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return admin
}

// killHolder ends the backend holding session id's lock: a lane's
// connection lost.
func killHolder(t *testing.T, admin *pgx.Conn, id string) {
	t.Helper()
	var killed int
	if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND (classid::bigint << 32 | objid::bigint) = hashtextextended($1, 0)`, sessionLockKey(id)).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d backends, %v; want the one holding %s", killed, err, id)
	}
}

// linkChange is the commit of session id that links account, decided
// from what is stored: it runs beside the lane.
func linkChange(id, account string, at time.Time) link.Change {
	return link.Change{Session: laneRecord(id, at), Link: &link.Link{AccountID: account, Phone: "+2348031110001",
		Institution: "inst", Bank: "GTBank", AuthMethod: "internet_banking", Masked: "****1234", SessionID: id, Linked: at}}
}

// holdRound holds a round trip of db's lane, a read of session id through
// g, until g opens: what is sent meanwhile waits behind it. The gate opens
// at the test's end, before the hops' unlocks, which wait for their
// commits.
func holdRound(t *testing.T, db *DB, g *laneGate, id string) {
	t.Helper()
	t.Cleanup(g.open)
	g.close()
	go func() {
		hctx, unlock, err := db.Locks().LockSession(t.Context(), id)
		if err == nil {
			db.Session(hctx, id)
			unlock()
		}
	}()
	<-g.held
}

// queuedCommit is a commit of session id on its hop (ctx, from newHop).
type queuedCommit struct {
	id  string
	ctx context.Context
	w   *commitWrite
}

// commitTogether sends the commits while a read of session hold holds
// the lane's round trip, waits for all of them to queue behind it, then
// lets it go: they go in the lane's next group. It returns each one's
// error.
func commitTogether(t *testing.T, db *DB, g *laneGate, hold string, commits []queuedCommit) []error {
	t.Helper()
	holdRound(t, db, g, hold)
	errs := make([]chan error, len(commits))
	for i, c := range commits {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- db.commitOnHop(c.ctx, hopOf(c.ctx, c.id), c.w) }()
	}
	waitFor(t, "every commit to wait on the lane", func() bool { return len(db.lanes.all[0].ops) == len(commits) })
	g.open()
	out := make([]error, len(commits))
	for i := range errs {
		out[i] = <-errs[i]
	}
	return out
}

// nextRead is the read of session id by the next hop on db, made once
// it has the session's lock; nil when it failed or found none.
func nextRead(t *testing.T, db *DB, id string) <-chan *link.SessionRecord {
	read := make(chan *link.SessionRecord, 1)
	go func() {
		hctx, unlock, err := db.Locks().LockSession(t.Context(), id)
		if err != nil {
			t.Error(err)
			read <- nil
			return
		}
		defer unlock()
		r, err := db.Session(hctx, id)
		if err != nil && !errors.Is(err, link.ErrNoSession) {
			t.Error(err)
		}
		read <- r
	}()
	return read
}

func TestTheCommitsWaitingOnALaneGoInOneTransactionAndAFailedOneFailsAlone(t *testing.T) {
	tests := []struct {
		name   string
		spoil  int   // the commit whose writes the server refuses; -1: none
		groups []int // the sessions written by each group commit
	}{
		{"every commit waiting goes in one transaction", -1, []int{8}},
		{"a refused commit fails alone and the others go again", 3, []int{8, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			url := pgtest.URL(t)
			g := newLaneGate()
			db := openLane(t, url, g)
			other := openLane(t, url, newLaneGate()) // another instance
			at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			type held struct {
				ctx    context.Context
				unlock func()
				w      *commitWrite
			}
			var hops []held
			for i := range 8 {
				id := fmt.Sprintf("lane-%02d", i)
				hctx, unlock := newHop(t, db, id)
				c := link.Change{Session: laneRecord(id, at),
					Funnel: &link.FunnelEntry{Day: at, Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 1}}, EndedOn: "banks", Reason: "exit"}}
				w, err := db.newCommitWrite(c)
				if err != nil {
					t.Fatal(err)
				}
				if i == tt.spoil {
					w.funnel[3] = append(w.funnel[3].([]string), "otp") // a screen more than its counts
				}
				hops = append(hops, held{hctx, unlock, w})
			}
			var queued []queuedCommit
			for i, h := range hops {
				queued = append(queued, queuedCommit{fmt.Sprintf("lane-%02d", i), h.ctx, h.w})
			}
			errs := commitTogether(t, db, g, "lane-99", queued)
			for i := range hops {
				id := fmt.Sprintf("lane-%02d", i)
				err := errs[i]
				if (err != nil) != (i == tt.spoil) {
					t.Fatalf("commit %s: %v", id, err)
				}
				r, rerr := db.Session(ctx, id)
				switch {
				case i == tt.spoil && !errors.Is(rerr, link.ErrNoSession):
					t.Errorf("the refused commit of %s was written: %v", id, rerr)
				case i != tt.spoil && (rerr != nil || string(r.Secrets) != "typed in "+id):
					t.Errorf("%s after its commit: %+v, %v", id, r, rerr)
				}
				// A committed hop's lock is let go; a refused one's is
				// kept until its hop lets it go.
				if heldElsewhere(t, other, sessionLockKey(id)) != (i == tt.spoil) {
					t.Errorf("%s's lock held after its commit: %v, want %v", id, !(i == tt.spoil), i == tt.spoil)
				}
			}
			if got := g.groups(); fmt.Sprint(got) != fmt.Sprint(tt.groups) {
				t.Errorf("group commits wrote %v sessions, want %v", got, tt.groups)
			}
			for _, b := range g.groupBatches() {
				after := b[slices.Index(b, `COMMIT`)+1:]
				if n := statements(after, unlocksSQL); n != 1 || len(after) != 1 {
					t.Errorf("a group let its sessions' locks go in %d statements of %d after its COMMIT, want 1: %q", n, len(after), b)
				}
			}
			if tt.spoil >= 0 {
				hops[tt.spoil].unlock()
				if heldElsewhere(t, other, sessionLockKey(fmt.Sprintf("lane-%02d", tt.spoil))) {
					t.Error("the refused commit's lock is still held after its hop let it go")
				}
			}
		})
	}
}

func TestAGroupCommitTakesItsTransactionLocksInOneStatementAndWaitsForEach(t *testing.T) {
	ctx := t.Context()
	url, db, g := laneOnFreshDatabase(t)
	admin := adminConn(t, url)
	const hops = 4
	type held struct {
		ctx context.Context
		w   *commitWrite
	}
	var all []held
	var last string // the text key of the last phone
	for i := range hops {
		id := fmt.Sprintf("keys-%02d", i)
		hctx, _ := newHop(t, db, id)
		r := laneRecord(id, faultAt)
		texts := []link.Text{{ID: "text-" + id, Kind: link.TextReceipt, To: r.Phone, Created: faultAt}}
		w, err := db.newCommitWrite(link.Change{Session: r, Texts: texts})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, held{hctx, w})
		last = messageLocks(queueTexts, w.texts)[0]
	}
	// Another transaction holds the last phone's key: the group waits
	// for it, having taken the others.
	release := holdKey(t, url, last)
	holdRound(t, db, g, "keys-99")
	errs := make(chan error, hops)
	for i, h := range all {
		go func() { errs <- db.commitOnHop(h.ctx, hopOf(h.ctx, fmt.Sprintf("keys-%02d", i)), h.w) }()
	}
	waitFor(t, "every commit to wait on the lane", func() bool { return len(db.lanes.all[0].ops) == hops })
	g.open()
	waitFor(t, "the group to wait for the key held elsewhere", func() bool { return waiting(t, admin) })
	unanswered(t, errs, "a commit of a group waiting for a key")
	release()
	for range hops {
		if err := <-errs; err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	groups := g.groupBatches()
	if len(groups) != 1 {
		t.Fatalf("%d group transactions, want 1", len(groups))
	}
	if n, one := statements(groups[0], xactLocksSQL), statements(groups[0], xactLockSQL); n != 1 || one != 0 {
		t.Errorf("the group took its %d keys in %d statements for many and %d for one, want 1 and 0", hops, n, one)
	}
	var queued int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM messages WHERE queue = $1`, queueTexts).Scan(&queued); err != nil || queued != hops {
		t.Errorf("%d texts queued, %v; want %d", queued, err, hops)
	}
}

// holdKey holds the advisory transaction lock of key in a transaction on
// a connection of url's database of its own, until release (or the
// test's end) rolls it back.
func holdKey(t *testing.T, url, key string) (release func()) {
	t.Helper()
	tx, err := adminConn(t, url).Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	if _, err := tx.Exec(t.Context(), xactLockSQL, key); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// unanswered fails the test if what waits on answers has been answered
// already: what it waits for is still held.
func unanswered(t *testing.T, answers <-chan error, what string) {
	t.Helper()
	select {
	case err := <-answers:
		t.Fatalf("%s answered before what it waits for was let go: %v", what, err)
	default:
	}
}

// hopOnLostLane is a hop of session id on a lane of its own whose
// backend then died, the session's lock with it, unseen by the lane yet.
func hopOnLostLane(t *testing.T, id string) (db *DB, hctx context.Context, unlock func()) {
	t.Helper()
	url := pgtest.URL(t)
	db = openLane(t, url, newLaneGate())
	hctx, unlock = newHop(t, db, id)
	killHolder(t, adminConn(t, url), id)
	return db, hctx, unlock
}

func TestAHopWhoseLaneLostItsConnectionCommitsNothing(t *testing.T) {
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	// The lane's connection dies with the session's lock on it.
	db, hctx, unlock := hopOnLostLane(t, "lost-01")
	// Another hop's read finds the connection gone; the lane takes a new
	// one, where lost-01's lock is not.
	other, unlockOther, err := db.Locks().LockSession(ctx, "lost-03")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(other, "lost-03"); err == nil || errors.Is(err, link.ErrNoSession) {
		t.Fatalf("a read on the lost connection: %v, want its failure", err)
	}
	unlockOther()
	if err := db.Commit(hctx, link.Change{Session: laneRecord("lost-01", at)}); !errors.Is(err, errHopBroken) {
		t.Fatalf("a hop's commit after its lock was lost: %v, want %v", err, errHopBroken)
	}
	if _, err := db.Session(ctx, "lost-01"); !errors.Is(err, link.ErrNoSession) {
		t.Fatalf("the session after a commit without its lock: %v; want none written", err)
	}
	unlock()
	// The lane goes on, on a new connection.
	next, _ := newHop(t, db, "lost-02")
	if err := db.Commit(next, link.Change{Session: laneRecord("lost-02", at)}); err != nil {
		t.Fatal(err)
	}
	if r, err := db.Session(ctx, "lost-02"); err != nil || string(r.Data) != "data of lost-02" {
		t.Fatalf("lost-02 after its commit: %+v, %v", r, err)
	}
}

func TestASessionHeldElsewhereIsWaitedForOffTheLane(t *testing.T) {
	tests := []struct {
		name    string
		another bool // the next hop runs on another instance
	}{
		{"the next hop on another instance", true},
		{"the next hop on this instance", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.URL(t)
			first := openLane(t, url, newLaneGate())
			next := first
			if tt.another {
				next = openLane(t, url, newLaneGate())
			}
			at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			hctx, _ := newHop(t, first, "held-01")
			read := nextRead(t, next, "held-01")
			// The next hop waits for the lock on a connection of its own,
			// and its lane is free meanwhile: another session's hop runs.
			admin := adminConn(t, url)
			waitFor(t, "the next hop to wait for the lock", func() bool { return waiting(t, admin) })
			_, unlockOther := newHop(t, next, "held-02") // another session's hop while one waits
			unlockOther()
			if err := first.Commit(hctx, link.Change{Session: laneRecord("held-01", at)}); err != nil {
				t.Fatal(err)
			}
			if r := <-read; r == nil || string(r.Data) != "data of held-01" {
				t.Fatalf("the next hop read %+v, want the first one's commit", r)
			}
		})
	}
}

func TestTheNextHolderWaitsForACommitBesideTheLaneWhoseLockWasLost(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	first := openLane(t, url, newLaneGate())
	next := openLane(t, url, newLaneGate()) // another instance
	admin := adminConn(t, url)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	hctx, _ := newHop(t, first, "fence-01")
	// A link is committed beside the lane, and waits for its account's
	// lock (held here) once it holds the session's fence and has seen
	// the lane's lock.
	if _, err := admin.Exec(ctx, lockSQL, lockAccount+"acc_fence"); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() {
		committed <- first.Commit(hctx, linkChange("fence-01", "acc_fence", at))
	}()
	waitFor(t, "the link to wait for its account", func() bool { return waiters(t, admin) == 1 })
	// The lane's connection dies, and the session's lock with it.
	killHolder(t, admin, "fence-01")
	// Another instance takes the lock at once, and waits to read until
	// the link's transaction is over.
	read := nextRead(t, next, "fence-01")
	waitFor(t, "the next holder to wait for the fence", func() bool { return waiters(t, admin) == 2 })
	if _, err := admin.Exec(ctx, unlockSQL, lockAccount+"acc_fence"); err != nil {
		t.Fatal(err)
	}
	if err := <-committed; err != nil {
		t.Fatalf("the link's commit: %v", err)
	}
	if r := <-read; r == nil || string(r.Data) != "data of fence-01" {
		t.Fatalf("the next holder read %+v, want what the link's commit wrote", r)
	}
}

func TestACommitWhoseContextEndedWhileItWaitedOnTheLaneIsNotSent(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	g := newLaneGate()
	db := openLane(t, url, g)
	other := openLane(t, url, newLaneGate()) // another instance
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	hctx, unlock := newHop(t, db, "ended-01")
	t.Cleanup(g.open)
	g.close()
	blocker := nextRead(t, db, "ended-99") // holds the lane's round trip
	<-g.held
	cctx, cancel := context.WithCancel(hctx)
	committed := make(chan error, 1)
	go func() { committed <- db.Commit(cctx, link.Change{Session: laneRecord("ended-01", at)}) }()
	waitFor(t, "the commit to wait on the lane", func() bool { return len(db.lanes.all[0].ops) == 1 })
	cancel()
	g.open()
	<-blocker
	if err := <-committed; !errors.Is(err, context.Canceled) {
		t.Fatalf("the commit after its context ended: %v, want %v", err, context.Canceled)
	}
	if _, err := db.Session(ctx, "ended-01"); !errors.Is(err, link.ErrNoSession) {
		t.Fatalf("the session after a commit not sent: %v, want none written", err)
	}
	if !heldElsewhere(t, other, sessionLockKey("ended-01")) {
		t.Fatal("the hop's lock was let go with a commit not sent")
	}
	unlock()
	if heldElsewhere(t, other, sessionLockKey("ended-01")) {
		t.Fatal("the hop's lock is still held after its unlock")
	}
}

func TestACommitBesideTheLaneWhoseLockWasLostUnseenWritesNothing(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	first := openLane(t, url, newLaneGate())
	next := openLane(t, url, newLaneGate()) // another instance
	admin := adminConn(t, url)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	hctx, _ := newHop(t, first, "unseen-01")
	// The lane's backend dies before anything tells the lane so, and
	// another instance's hop holds the session and lets it go meanwhile.
	killHolder(t, admin, "unseen-01")
	waitFor(t, "the lock to go with its backend", func() bool { return !heldElsewhere(t, next, sessionLockKey("unseen-01")) })
	_, unlock := newHop(t, next, "unseen-01")
	unlock()
	if err := first.Commit(hctx, linkChange("unseen-01", "acc_unseen", at)); sqlState(err) != divisionByZero {
		t.Fatalf("a link committed beside a lane that had lost the session's lock: %v, want the lane lock's proof to refuse it", err)
	}
	if _, ok, err := first.Link(ctx, "acc_unseen"); err != nil || ok {
		t.Fatalf("the link after its commit failed: %v, %v; want none", ok, err)
	}
}

func TestReservationsOnALaneAreMadeInTheGroupsTransaction(t *testing.T) {
	tests := []struct {
		name  string
		spoil int // the reservation whose statement the server refuses; -1: none
	}{
		{"each attempt below the limit is reserved, in one transaction with the commits", -1},
		{"a refused reservation fails alone and the rest go again", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			url := pgtest.URL(t)
			g := newLaneGate()
			db := openLane(t, url, g)
			at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			const phone, max = "+2348031119999", 2
			// Two hops commit, and four reserve attempts for one phone that
			// may have two (the spoilt one's for a phone the table refuses).
			if _, err := adminConn(t, url).Exec(ctx, `ALTER TABLE login_failures ADD CONSTRAINT spoilt CHECK (phone_key <> '2348031110000')`); err != nil {
				t.Fatal(err)
			}
			var commits, reserves []context.Context
			for i := range 6 {
				hctx, _ := newHop(t, db, fmt.Sprintf("reserve-%02d", i))
				if i < 2 {
					commits = append(commits, hctx)
				} else {
					reserves = append(reserves, hctx)
				}
			}
			holdRound(t, db, g, "reserve-99") // the rest come in behind it
			committed := make([]chan error, len(commits))
			for i, hctx := range commits {
				committed[i] = make(chan error, 1)
				go func() {
					committed[i] <- db.Commit(hctx, link.Change{Session: laneRecord(fmt.Sprintf("reserve-%02d", i), at)})
				}()
			}
			type outcome struct {
				ok  bool
				err error
			}
			reserved := make([]chan outcome, len(reserves))
			for i, hctx := range reserves {
				reserved[i] = make(chan outcome, 1)
				p := phone
				if i == tt.spoil {
					p = "+2348031110000"
				}
				go func() {
					_, ok, err := db.ReserveAttempt(hctx, p, at.Add(-time.Hour), at, max)
					reserved[i] <- outcome{ok, err}
				}()
			}
			waitFor(t, "every commit and reservation to wait on the lane", func() bool {
				return len(db.lanes.all[0].ops) == len(commits)+len(reserves)
			})
			g.open()
			for i := range commits {
				if err := <-committed[i]; err != nil {
					t.Fatalf("commit %d: %v", i, err)
				}
			}
			made := 0
			for i := range reserves {
				o := <-reserved[i]
				switch {
				case i == tt.spoil:
					if o.err == nil {
						t.Errorf("the spoilt reservation: %+v, want its error", o)
					}
				case o.err != nil:
					t.Errorf("reservation %d: %v", i, o.err)
				case o.ok:
					made++
				}
			}
			if made != max {
				t.Errorf("%d attempts reserved, want %d: the rest refused", made, max)
			}
			if n, err := db.LoginFailures(ctx, phone, at.Add(-time.Hour)); err != nil || n != max {
				t.Errorf("the phone's attempts after the reservations: %d, %v; want %d", n, err, max)
			}
			// The first transaction the lane sent held both commits and
			// every reservation.
			groups, rows := g.groupBatchRows()
			if len(groups) == 0 {
				t.Fatal("the lane sent no transaction")
			}
			sessions, reservations := sum(rows[0]), statements(groups[0], reserveSQL)
			if sessions != len(commits) || reservations != len(reserves) {
				t.Errorf("the lane's first transaction wrote %d sessions and %d reservations, want %d and %d",
					sessions, reservations, len(commits), len(reserves))
			}
		})
	}
}

func TestAReservationWhoseLaneFailedIsMadeOnAConnectionOfItsOwn(t *testing.T) {
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	// The lane's backend dies before the hop's login is reserved: the
	// guess is not let through unreserved.
	db, hctx, _ := hopOnLostLane(t, "relane-01")
	if _, ok, err := db.ReserveAttempt(hctx, "+2348031117777", at.Add(-time.Hour), at, 3); err != nil || !ok {
		t.Fatalf("ReserveAttempt after the lane's connection was lost: %v, %v; want it reserved", ok, err)
	}
	if n, err := db.LoginFailures(ctx, "+2348031117777", at.Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("the phone's attempts: %d, %v; want the one reserved", n, err)
	}
}

func TestCommitsBesideALostLaneEachSeeItsLockGone(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	first := openLane(t, url, newLaneGate())
	admin := adminConn(t, url)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	hctx, _ := newHop(t, first, "gone-01")
	h := hctx.Value(hopKey{}).(*hop)
	h.mu.Lock()
	key := h.laneKey
	h.mu.Unlock()
	killHolder(t, admin, "gone-01")
	// Another commit beside the same lost lane is in the middle of its
	// transaction, having tried the lane lock already.
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	waitFor(t, "the lane lock to go with its backend", func() bool {
		var free bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock_shared(hashtextextended($1, 0))`, key).Scan(&free); err != nil {
			t.Fatal(err)
		}
		return free
	})
	if err := first.Commit(hctx, linkChange("gone-01", "acc_gone", at)); sqlState(err) != divisionByZero {
		t.Fatalf("a link committed beside a lost lane while another commit beside it looked at its lock: %v, want the lane lock's proof to refuse it", err)
	}
	if _, ok, err := first.Link(ctx, "acc_gone"); err != nil || ok {
		t.Fatalf("the link after its commit failed: %v, %v; want none", ok, err)
	}
}

func TestTheReadsOfARoundTripTryTheirLocksInOneStatementEachAnsweredItsOwn(t *testing.T) {
	url := pgtest.URL(t)
	g := newLaneGate()
	db := openLane(t, url, g)
	other := openLane(t, url, newLaneGate()) // another instance
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ids := []string{"reads-01", "reads-02", "reads-03", "reads-04"}
	for _, id := range ids {
		hctx, unlock := newHop(t, other, id)
		if err := other.Commit(hctx, link.Change{Session: laneRecord(id, at)}); err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	// One of them is held by the other instance's hop.
	heldCtx, unlockHeld, err := other.Locks().LockSession(t.Context(), ids[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlockHeld)
	if _, err := other.Session(heldCtx, ids[1]); err != nil {
		t.Fatal(err)
	}
	holdRound(t, db, g, "reads-99")
	reads := make([]<-chan *link.SessionRecord, len(ids))
	for i, id := range ids {
		reads[i] = nextRead(t, db, id)
	}
	waitFor(t, "the reads to wait on the lane", func() bool { return len(db.lanes.all[0].ops) == len(ids) })
	g.open()
	for i, id := range ids {
		if i == 1 {
			continue // held by the other instance: waited for off the lane
		}
		if r := readWithin(t, reads[i]); r == nil || string(r.Data) != "data of "+id {
			t.Fatalf("the read of %s: %+v, want its own session", id, r)
		}
	}
	g.mu.Lock()
	var together []string
	for _, b := range g.batches {
		if statements(b, hopSessionsSQL) == 1 {
			together = b
		}
	}
	g.mu.Unlock()
	if n := statements(together, tryLocksSQL); n != 1 {
		t.Errorf("the round trip of %d reads tried their locks in %d statements, want 1: %q", len(ids), n, together)
	}
	if n := statements(together, hopSessionSQL); n != 0 {
		t.Errorf("the round trip of %d reads read %d sessions one statement each beside the one for all: %q", len(ids), n, together)
	}
	if !heldElsewhere(t, db, sessionLockKey(ids[1])) {
		t.Fatal("the held session's lock was let go before its holder did")
	}
	// Its holder commits, which lets the lock go: the read waiting off
	// the lane reads what it committed.
	if err := other.Commit(heldCtx, link.Change{Session: laneRecord(ids[1], at.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if r := readWithin(t, reads[1]); r == nil || !r.Updated.Equal(at.Add(time.Minute)) {
		t.Fatalf("the read of the held session: %+v, want what its holder committed", r)
	}
}

// readWithin is what read gives within a few seconds; the test fails
// when it gives nothing.
func readWithin(t *testing.T, read <-chan *link.SessionRecord) *link.SessionRecord {
	t.Helper()
	select {
	case r := <-read:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("waited 10 s for a read")
		return nil
	}
}

// batchHook is a tracer that hands the statements of each batch a
// connection sends to start, before the batch goes out: start may hold it.
type batchHook struct {
	noTrace
	start func(sqls []string)
}

func (h batchHook) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	h.start(batchSQL(data))
	return ctx
}

// A round trip's first statement takes the locks of all its reads. When
// one read fails, the server skips the rest, and the reads after it go
// again already holding their locks: taken twice, a lock would outlive
// its hop, which lets it go once, and keep the session from every other
// instance for as long as the lane's connection lives.
func TestReadsSentAgainAfterAFailedReadHoldTheirLocksOnce(t *testing.T) {
	url := pgtest.URL(t)
	other := openLane(t, url, newLaneGate()) // another instance
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ids := []string{"again-01", "again-02", "again-03"}
	for _, id := range ids {
		hctx, unlock := newHop(t, other, id)
		if err := other.Commit(hctx, link.Change{Session: laneRecord(id, at)}); err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	// This instance's lane: an unlock held while the three reads come in
	// behind it, then the reads sent again after the first failed held
	// until the cause of the failure is gone.
	var (
		armed, unlockHeld   atomic.Bool
		heldUnlock, resent  = make(chan struct{}), make(chan struct{})
		letUnlock, letAgain = make(chan struct{}), make(chan struct{})
		reads               atomic.Int32
	)
	hook := batchHook{start: func(sqls []string) {
		switch {
		case !armed.Load():
		case len(sqls) == 1 && sqls[0] == unlocksSQL && !unlockHeld.Swap(true):
			close(heldUnlock)
			<-letUnlock
		case statements(sqls, hopSessionSQL)+statements(sqls, hopSessionsSQL) > 0 && reads.Add(1) == 2:
			close(resent)
			<-letAgain
		}
	}}
	// Every read of this instance fails once it has waited lock_timeout
	// for a table locked elsewhere.
	db := openTraced(t, url+"&lock_timeout=200ms", hook)
	// A hop's lock and read prepare the lane's statements, and its unlock
	// holds the lane.
	_, unlock := newHop(t, db, "again-00")
	armed.Store(true)
	go unlock()
	<-heldUnlock
	admin := adminConn(t, url)
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	type read struct {
		id  string
		rec *link.SessionRecord
		err error
	}
	done := make(chan read, len(ids))
	for _, id := range ids {
		go func() {
			hctx, unlock, err := db.Locks().LockSession(t.Context(), id)
			if err != nil {
				done <- read{id: id, err: err}
				return
			}
			defer unlock()
			r, err := db.Session(hctx, id)
			done <- read{id, r, err}
		}()
	}
	waitFor(t, "the reads to wait on the lane", func() bool { return len(db.lanes.all[0].ops) == len(ids) })
	close(letUnlock)
	<-resent // the first read failed; the others go again
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(letAgain)
	failed := 0
	for range ids {
		r := <-done
		switch {
		case sqlState(r.err) == "55P03":
			failed++
		case r.err != nil || r.rec == nil || string(r.rec.Data) != "data of "+r.id:
			t.Fatalf("the read of %s sent again: %+v, %v; want its session", r.id, r.rec, r.err)
		}
	}
	if failed != 1 {
		t.Fatalf("%d reads failed, want the first alone", failed)
	}
	for _, id := range ids {
		if heldElsewhere(t, other, sessionLockKey(id)) {
			t.Errorf("session %s is still locked after its hop let it go", id)
		}
	}
}

// A read sent again holding its lock (blame) whose hop's context ends
// before it goes is answered with the lock when its connection still
// holds it, so that its hop lets it go; a lock lost with its connection
// is not.
func TestAReadSentAgainHoldingItsLockThatIsNotSentSaysWhetherItHoldsIt(t *testing.T) {
	tests := []struct {
		name       string
		got        bool   // sent again holding its lock
		gen        uint64 // the lane's generation now (the op's is 0)
		wantLocked bool
	}{
		{"held on the lane's connection", true, 0, true},
		{"lost with an earlier connection", true, 1, false},
		{"never taken", false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			l := &lane{key: "lane:test"}
			l.gen.Store(tt.gen)
			op := &laneOp{kind: opRead, ctx: ctx, id: "sent-again", got: tt.got, done: make(chan laneDone, 1)}
			if run := l.admit([]*laneOp{op}); len(run) != 0 {
				t.Fatalf("a read whose context ended was admitted: %d", len(run))
			}
			d := <-op.done
			if !errors.Is(d.err, context.Canceled) || d.locked != tt.wantLocked {
				t.Fatalf("answered %v, locked %v; want the context's end, locked %v", d.err, d.locked, tt.wantLocked)
			}
		})
	}
}
