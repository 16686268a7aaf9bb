package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// commitCut is a proxy in front of the test server that, once armed,
// cuts the next connection whose server reports a COMMIT done, right
// after that report: the transaction is durable, and its client learns
// nothing more from that connection.
type commitCut struct {
	url   string        // the server's url, through the proxy
	armed atomic.Bool   // the next COMMIT reported cuts its connection
	cut   chan struct{} // signalled when a connection was cut
}

// newCommitCut starts a proxy to the server of url (sslmode=disable: the
// server's first byte is a message's).
func newCommitCut(t *testing.T, server string) *commitCut {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	target := u.Host
	u.Host = ln.Addr().String()
	p := &commitCut{url: u.String(), cut: make(chan struct{}, 1)}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			upstream, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			go func() { io.Copy(upstream, client); upstream.Close() }()
			go p.relay(upstream, client)
		}
	}()
	return p
}

// mustHaveCut fails the test unless the proxy cut a connection after
// its COMMIT.
func (p *commitCut) mustHaveCut(t *testing.T) {
	t.Helper()
	select {
	case <-p.cut:
	default:
		t.Fatal("no connection was cut after its COMMIT")
	}
}

// relay copies the server's messages to the client one by one, and cuts
// both ends after a COMMIT's CommandComplete when armed.
func (p *commitCut) relay(upstream, client net.Conn) {
	defer client.Close()
	defer upstream.Close()
	r := bufio.NewReader(upstream)
	head := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, head); err != nil {
			return
		}
		body := make([]byte, int(binary.BigEndian.Uint32(head[1:]))-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if _, err := client.Write(append(head, body...)); err != nil {
			return
		}
		if head[0] == 'C' && bytes.Equal(body, []byte("COMMIT\x00")) && p.armed.CompareAndSwap(true, false) {
			p.cut <- struct{}{}
			return
		}
	}
}

// sendInOneGroup sends each of work on db's lane in one round trip: a
// read holds the lane while they come in behind it (each work sends one
// op), then lets them go together. wait returns once every work did.
func sendInOneGroup(t *testing.T, db *DB, g *laneGate, work ...func()) (wait func()) {
	t.Helper()
	holdRound(t, db, g, "group-99")
	var wg sync.WaitGroup
	for _, w := range work {
		wg.Add(1)
		go func() { defer wg.Done(); w() }()
	}
	waitFor(t, "every op to wait on the lane", func() bool { return len(db.lanes.all[0].ops) == len(work) })
	g.open()
	return wg.Wait
}

// attempt is what ReserveAttempt answered.
type attempt struct {
	ok  bool
	err error
}

// reserveIn returns work reserving an attempt for phone (max since an
// hour before at) on the hop ctx carries, its answer in *got.
func reserveIn(db *DB, hctx context.Context, phone string, at time.Time, max int, got *attempt) func() {
	return func() {
		_, got.ok, got.err = db.ReserveAttempt(hctx, phone, at.Add(-time.Hour), at, max)
	}
}

func TestAGroupLostAfterItsCommitAnswersItsCommitsAndReservationsOnce(t *testing.T) {
	ctx := t.Context()
	server := pgtest.URL(t)
	proxy := newCommitCut(t, server)
	g := newLaneGate()
	db := openLane(t, proxy.url, g)
	other := openLane(t, server, newLaneGate()) // another instance, straight to the server
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const phone = "+2348031116661"
	committer, _ := newHop(t, db, "cut-01")
	reserver, _ := newHop(t, db, "cut-02")
	gen := db.lanes.all[0].generation()
	var committed error
	var reserved attempt
	proxy.armed.Store(true)
	sendInOneGroup(t, db, g,
		func() { committed = db.Commit(committer, link.Change{Session: laneRecord("cut-01", at)}) },
		reserveIn(db, reserver, phone, at, 3, &reserved),
	)()
	proxy.mustHaveCut(t)
	// The group was durable: its commit and its reservation are answered
	// as made, not failed (a reservation failed would be made again on a
	// connection of its own: two attempts counted for one guess).
	if committed != nil {
		t.Errorf("the commit of a group lost after its COMMIT: %v, want it done", committed)
	}
	if reserved.err != nil || !reserved.ok {
		t.Errorf("the reservation of a group lost after its COMMIT: %+v, want it made", reserved)
	}
	if n, err := db.LoginFailures(ctx, phone, at.Add(-time.Hour)); err != nil || n != 1 {
		t.Errorf("the phone's attempts: %d, %v; want the one reservation, counted once", n, err)
	}
	if r, err := db.Session(ctx, "cut-01"); err != nil || string(r.Data) != "data of cut-01" {
		t.Errorf("cut-01 after its group was lost past its COMMIT: %+v, %v", r, err)
	}
	// The connection went, and the locks held on it with it: the lane is
	// on a new generation, and another instance takes either session.
	if db.lanes.all[0].generation() == gen {
		t.Error("the lane kept its generation after its connection was cut")
	}
	waitFor(t, "the cut connection's locks to go", func() bool {
		return !heldElsewhere(t, other, sessionLockKey("cut-01")) && !heldElsewhere(t, other, sessionLockKey("cut-02"))
	})
	next, _ := newHop(t, db, "cut-03")
	if err := db.Commit(next, link.Change{Session: laneRecord("cut-03", at)}); err != nil {
		t.Fatalf("a hop on the lane's new connection: %v", err)
	}
}

func TestAGroupRolledBackByADeadlockMakesItsReservationsOnceWhenSentAgain(t *testing.T) {
	ctx := t.Context()
	server := pgtest.URL(t)
	g := newLaneGate()
	db := openLane(t, server, g)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	// The group takes phone a's lock, then waits for b's, which another
	// transaction holds and which then asks for a's: a deadlock, which
	// PostgreSQL breaks by failing the group (the other transaction
	// checks for one only after a minute).
	const a, b = "+2348031117771", "+2348031117772"
	holder, watcher := adminConn(t, server), adminConn(t, server)
	for _, sql := range []string{`SET deadlock_timeout = '1min'`, `BEGIN`} {
		if _, err := holder.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := holder.Exec(ctx, xactLockSQL, lockLogin+link.PhoneKey(b)); err != nil {
		t.Fatal(err)
	}
	first, _ := newHop(t, db, "deadlock-01")
	second, _ := newHop(t, db, "deadlock-02")
	var gotA, gotB attempt
	wait := sendInOneGroup(t, db, g, reserveIn(db, first, a, at, 3, &gotA), reserveIn(db, second, b, at, 3, &gotB))
	waitFor(t, "the group to wait for phone b's lock", func() bool { return waiting(t, watcher) })
	if _, err := holder.Exec(ctx, xactLockSQL, lockLogin+link.PhoneKey(a)); err != nil {
		t.Fatalf("the other transaction was failed for the deadlock, not the group: %v", err)
	}
	if _, err := holder.Exec(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	wait()
	for _, r := range []struct {
		phone string
		got   attempt
	}{{a, gotA}, {b, gotB}} {
		if r.got.err != nil || !r.got.ok {
			t.Errorf("the reservation for %s after its group's deadlock: %+v, want it made", r.phone, r.got)
		}
		if n, err := db.LoginFailures(ctx, r.phone, at.Add(-time.Hour)); err != nil || n != 1 {
			t.Errorf("%s's attempts: %d, %v; want its reservation, made once", r.phone, n, err)
		}
	}
	// The group went twice, both reservations in each: rolled back, then
	// committed.
	groups := g.groupBatches()
	if len(groups) != 2 {
		t.Fatalf("%d group transactions sent, want 2 (the deadlocked one, then again)", len(groups))
	}
	for i, sqls := range groups {
		if n := statements(sqls, reserveSQL); n != 2 {
			t.Errorf("group transaction %d made %d reservations, want 2", i, n)
		}
	}
}

func TestAReservationCountsARefusedLoginOfItsPhoneCommittedInItsGroup(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		granted bool
	}{
		{"the refusal in the group reaches the limit: the attempt is refused", 2, false},
		{"below the limit with the refusal counted: the attempt is reserved", 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			g := newLaneGate()
			db := openLane(t, pgtest.URL(t), g)
			at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			const phone = "+2348031118881"
			// One attempt reserved before; then, in one group, the bank's
			// refusal of another for the same phone and a reservation.
			if _, ok, err := db.ReserveAttempt(ctx, phone, at.Add(-time.Hour), at, tt.max); err != nil || !ok {
				t.Fatalf("the first reservation: %v, %v", ok, err)
			}
			refused, _ := newHop(t, db, "refused-01")
			reserver, _ := newHop(t, db, "refused-02")
			rec := laneRecord("refused-01", at)
			rec.Phone = phone
			var committed error
			var got attempt
			sendInOneGroup(t, db, g,
				func() { committed = db.Commit(refused, link.Change{Session: rec, LoginFailure: true}) },
				reserveIn(db, reserver, phone, at, tt.max, &got),
			)()
			if committed != nil {
				t.Fatalf("the refused login's commit: %v", committed)
			}
			if got.err != nil || got.ok != tt.granted {
				t.Errorf("the reservation beside the refusal: %+v, want reserved %v", got, tt.granted)
			}
			want := 2
			if tt.granted {
				want = 3
			}
			if n, err := db.LoginFailures(ctx, phone, at.Add(-time.Hour)); err != nil || n != want {
				t.Errorf("the phone's attempts: %d, %v; want %d", n, err, want)
			}
			// One transaction, the phone's lock taken once for both.
			groups := g.groupBatches()
			if len(groups) != 1 {
				t.Fatalf("%d group transactions, want 1", len(groups))
			}
			if n := statements(groups[0], xactLockSQL); n != 1 {
				t.Errorf("the group took %d transaction locks, want the phone's once", n)
			}
		})
	}
}

// faultAt is when the sessions of the fault tests are written.
var faultAt = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// laneOnFreshDatabase opens an instance whose hops share one lane, traced
// by g, on a database of its own at url.
func laneOnFreshDatabase(t *testing.T) (url string, db *DB, g *laneGate) {
	t.Helper()
	url = pgtest.URL(t)
	g = newLaneGate()
	return url, openLane(t, url, g), g
}

// readIn returns work reading session id on a hop of its own, as a hop's
// first read does, its error in *got.
func readIn(t *testing.T, db *DB, id string, got *error) func() {
	return func() {
		hctx, unlock, err := db.Locks().LockSession(t.Context(), id)
		if err != nil {
			*got = err
			return
		}
		defer unlock()
		_, *got = db.Session(hctx, id)
	}
}

func TestTheReadsOfARoundTripAreOneStatementEachAnsweredWithItsOwnSessionOrNone(t *testing.T) {
	_, db, g := laneOnFreshDatabase(t)
	stored := []string{"many-01", "many-03"}
	for _, id := range stored {
		hctx, unlock := newHop(t, db, id)
		if err := db.Commit(hctx, link.Change{Session: laneRecord(id, faultAt)}); err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	ids := []string{"many-01", "many-02", "many-03"} // many-02 was never stored
	recs, errs := make([]*link.SessionRecord, len(ids)), make([]error, len(ids))
	var work []func()
	for i, id := range ids {
		work = append(work, func() {
			hctx, unlock, err := db.Locks().LockSession(t.Context(), id)
			if err != nil {
				errs[i] = err
				return
			}
			defer unlock()
			recs[i], errs[i] = db.Session(hctx, id)
		})
	}
	sendInOneGroup(t, db, g, work...)()
	for i, id := range ids {
		switch {
		case id == "many-02" && !errors.Is(errs[i], link.ErrNoSession):
			t.Errorf("the read of a session never stored: %+v, %v; want none", recs[i], errs[i])
		case id != "many-02" && (errs[i] != nil || string(recs[i].Data) != "data of "+id):
			t.Errorf("the read of %s: %+v, %v; want its own session", id, recs[i], errs[i])
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.batches {
		if statements(b, tryLocksSQL) == 1 && statements(b, hopSessionsSQL) == 1 && statements(b, hopSessionSQL) == 0 {
			return
		}
	}
	t.Errorf("no round trip read the %d sessions in one statement: %q", len(ids), g.batches)
}

// A session id PostgreSQL cannot take as text (hostile input that got
// past the edge) is refused before it names a lock: on a lane, it would
// fail the lock statement of every read sharing its round trip.
func TestASessionIdThatIsNotTextIsRefusedBeforeItReachesTheLane(t *testing.T) {
	ctx := t.Context()
	_, db, _ := laneOnFreshDatabase(t)
	gen := db.lanes.all[0].generation()
	for _, id := range []string{"bad-\xff", "bad-\x00", "\xc3"} {
		if _, _, err := db.Locks().LockSession(ctx, id); !errors.Is(err, errNotText) {
			t.Errorf("LockSession(%q): %v, want it refused as not text", id, err)
		}
	}
	hctx, unlock := newHop(t, db, "text-01")
	if err := db.Commit(hctx, link.Change{Session: laneRecord("text-01", faultAt)}); err != nil {
		t.Errorf("a hop after the refusals: %v", err)
	}
	unlock()
	if db.lanes.all[0].generation() != gen {
		t.Error("the lane gave its connection up")
	}
}

// The server's lock table full, the reads' lock statement takes a lock
// and fails on the next: the reads fail, the lock taken is let go, and
// the lane keeps its connection, and the locks of its other hops.
func TestALockStatementThatFailedLetsGoOfTheLocksItTook(t *testing.T) {
	ctx := t.Context()
	url, db, g := laneOnFreshDatabase(t)
	other := openLane(t, url, newLaneGate()) // another instance
	committer, _ := newHop(t, db, "full-01")
	gen := db.lanes.all[0].generation()
	admin := adminConn(t, url)
	// Every slot of the lock table taken (a lock taken by a statement that
	// failed is kept), but one.
	if _, err := admin.Exec(ctx, `DO $$ BEGIN
		FOR i IN 1..1000000 LOOP PERFORM pg_advisory_lock(i); END LOOP;
		EXCEPTION WHEN out_of_memory THEN NULL; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(1)`); err != nil {
		t.Fatal(err)
	}
	var first, second error
	sendInOneGroup(t, db, g, readIn(t, db, "full-02", &first), readIn(t, db, "full-03", &second))()
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{first, second} {
		if sqlState(err) != "53200" {
			t.Errorf("a read whose lock statement ran out of lock slots: %v, want it failed as the statement did", err)
		}
	}
	if db.lanes.all[0].generation() != gen {
		t.Error("the lane gave its connection up for a lock statement that failed")
	}
	if err := db.Commit(committer, link.Change{Session: laneRecord("full-01", faultAt)}); err != nil {
		t.Errorf("a commit of a hop of the lane after its lock statement failed: %v, want it done", err)
	}
	for _, id := range []string{"group-99", "full-02", "full-03"} { // the round trip holding the others is one too
		if heldElsewhere(t, other, sessionLockKey(id)) {
			t.Errorf("the lock of %s, tried by the failed statement, is still held on the lane", id)
		}
	}
}

// A session's fence is held by a commit beside a lane that lost its
// lock. The next hop of the session finds it held on its lane, lets the
// lock go and waits for the fence on a connection of its own: the hops
// sharing the lane do not wait with it.
func TestAHopWhoseFenceIsHeldWaitsForItOffTheLane(t *testing.T) {
	url, db, g := laneOnFreshDatabase(t)
	committer, _ := newHop(t, db, "fence-01")
	admin := adminConn(t, url)
	release := holdKey(t, url, fenceKey("fence-02"))
	committed, read := make(chan error, 1), make(chan error, 1)
	sendInOneGroup(t, db, g,
		func() { committed <- db.Commit(committer, link.Change{Session: laneRecord("fence-01", faultAt)}) },
		func() {
			var err error
			readIn(t, db, "fence-02", &err)()
			read <- err
		},
	)
	if err := <-committed; err != nil {
		t.Fatalf("a commit of the lane while another hop's fence is held: %v", err)
	}
	waitFor(t, "the read to wait for its fence on a connection of its own", func() bool { return waiting(t, admin) })
	unanswered(t, read, "the read of a session whose fence is held")
	release()
	if err := <-read; !errors.Is(err, link.ErrNoSession) {
		t.Errorf("fence-02 once its fence was let go: %v, want it read (none stored)", err)
	}
}

// A statement the server will not prepare (here, its table renamed away
// by an operator) was never sent, and nothing of its round trip ran: the
// ops that send it fail, and the others go again, on the same connection.
func TestAStatementTheServerWillNotPrepareFailsOnlyTheOpsSendingIt(t *testing.T) {
	ctx := t.Context()
	url, db, g := laneOnFreshDatabase(t)
	committer, _ := newHop(t, db, "prepare-01")
	reserver, _ := newHop(t, db, "prepare-02")
	gen := db.lanes.all[0].generation()
	admin := adminConn(t, url)
	if _, err := admin.Exec(ctx, `ALTER TABLE login_failures RENAME TO login_failures_away`); err != nil {
		t.Fatal(err)
	}
	var committed error
	var reserved attempt
	sendInOneGroup(t, db, g,
		func() { committed = db.Commit(committer, link.Change{Session: laneRecord("prepare-01", faultAt)}) },
		reserveIn(db, reserver, "+2348031116662", faultAt, 3, &reserved),
	)()
	if _, err := admin.Exec(ctx, `ALTER TABLE login_failures_away RENAME TO login_failures`); err != nil {
		t.Fatal(err)
	}
	if sqlState(reserved.err) != "42P01" {
		t.Errorf("the reservation whose statement cannot be prepared: %+v, want undefined_table", reserved)
	}
	if committed != nil {
		t.Errorf("a commit of the round trip the server would not prepare: %v, want it sent again and done", committed)
	}
	if r, err := db.Session(ctx, "prepare-01"); err != nil || string(r.Data) != "data of prepare-01" {
		t.Errorf("prepare-01 after its commit: %+v, %v", r, err)
	}
	if db.lanes.all[0].generation() != gen {
		t.Error("the lane gave its connection up for a round trip never sent")
	}
}

// A row the lane cannot decode fails its read alone. pgx would fail every
// later result of the round trip, though the server ran them all: a
// commit in it, durable, would be reported failed.
func TestARowTheLaneCannotDecodeFailsItsReadAlone(t *testing.T) {
	ctx := t.Context()
	url, db, g := laneOnFreshDatabase(t)
	for _, id := range []string{"decode-01", "decode-02"} {
		hctx, unlock := newHop(t, db, id)
		if err := db.Commit(hctx, link.Change{Session: laneRecord(id, faultAt)}); err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	committer, _ := newHop(t, db, "decode-03")
	gen := db.lanes.all[0].generation()
	// An operator's change leaves decode-02 with what a hop cannot read.
	if _, err := adminConn(t, url).Exec(ctx, `ALTER TABLE sessions ALTER COLUMN updated DROP NOT NULL;
		UPDATE sessions SET updated = NULL WHERE id = 'decode-02'`); err != nil {
		t.Fatal(err)
	}
	var bad, good, committed error
	sendInOneGroup(t, db, g,
		readIn(t, db, "decode-02", &bad),
		readIn(t, db, "decode-01", &good),
		func() { committed = db.Commit(committer, link.Change{Session: laneRecord("decode-03", faultAt)}) },
	)()
	if !undecoded(bad) {
		t.Errorf("the read of a row the lane cannot decode: %v, want it failed as such", bad)
	}
	if good != nil || committed != nil {
		t.Errorf("the round trip's other read: %v, and commit: %v; want both done", good, committed)
	}
	if db.lanes.all[0].generation() != gen {
		t.Error("the lane gave its connection up for a row it could not decode")
	}
	if r, err := db.Session(ctx, "decode-03"); err != nil || string(r.Data) != "data of decode-03" {
		t.Errorf("decode-03 after its commit: %+v, %v", r, err)
	}
}

// A commit beside the lane whose connection is lost right after its
// COMMIT is reported, before the server says it is ready again, is
// durable and reported done.
func TestACommitBesideTheLaneLostAfterItsCommitIsDone(t *testing.T) {
	ctx := t.Context()
	server := pgtest.URL(t)
	proxy := newCommitCut(t, server)
	db := openLane(t, proxy.url, newLaneGate())
	other := openLane(t, server, newLaneGate())
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	hctx, _ := newHop(t, db, "beside-01")
	proxy.armed.Store(true)
	err := db.Commit(hctx, linkChange("beside-01", "acct-beside", at))
	proxy.mustHaveCut(t)
	if err != nil {
		t.Errorf("a commit beside the lane lost after its COMMIT: %v, want it done", err)
	}
	if l, ok, err := other.Link(ctx, "acct-beside"); err != nil || !ok || l.SessionID != "beside-01" {
		t.Errorf("the link after its commit: %+v, %v, %v", l, ok, err)
	}
}

// A hop off the lane sends its commit and its lock's release in one round
// trip. Its connection lost right after the COMMIT, the commit is durable
// and reported done, and the lock goes with the connection.
func TestACommitOffTheLaneLostAfterItsCommitIsDone(t *testing.T) {
	ctx := t.Context()
	server := pgtest.URL(t)
	proxy := newCommitCut(t, server)
	db := openLane(t, proxy.url, newLaneGate())
	other := openLane(t, server, newLaneGate()) // another instance, straight to the server
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	hctx, unlock, err := db.Locks().LockSession(ctx, "own-01")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	proxy.armed.Store(true)
	// Never read under its lock: the commit takes it on a connection of
	// the hop's own, and lets it go after the COMMIT.
	err = db.Commit(hctx, link.Change{Session: laneRecord("own-01", at)})
	proxy.mustHaveCut(t)
	if err != nil {
		t.Errorf("a commit lost after its COMMIT: %v, want it done", err)
	}
	if r, err := other.Session(ctx, "own-01"); err != nil || string(r.Data) != "data of own-01" {
		t.Errorf("own-01 after its commit: %+v, %v", r, err)
	}
	waitFor(t, "the cut connection's lock to go", func() bool { return !heldElsewhere(t, other, sessionLockKey("own-01")) })
}
