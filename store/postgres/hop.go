package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ussdlink/ussdlink/link"
)

// The statements of a session's advisory lock, the same lock LockContext
// takes for "session:"+id.
const (
	lockSQL   = `SELECT pg_advisory_lock(hashtextextended($1, 0))`
	unlockSQL = `SELECT pg_advisory_unlock(hashtextextended($1, 0))`
)

// sessionLockKey is the advisory lock's key of a session.
func sessionLockKey(id string) string { return "session:" + id }

// fenceKey is the key of a session's fence: a transaction lock that a
// commit beside its lane holds from its BEGIN, and that whoever takes the
// session's lock next waits for before reading. A lane's connection may
// be lost (and the session's lock with it) while such a commit runs on
// another connection: the next holder then reads once that commit is
// over, and never writes over it from what it read before.
func fenceKey(id string) string { return "session-fence:" + id }

// hop is a session's lock for one hop, taken and let go in step with the
// session's read and commit: the lock goes out in the same round trip as
// the first read, and comes back after the COMMIT of the hop's commit, in
// its round trip (a commit beside the lane, below, lets it go in one
// more). A common hop (read, then commit) so costs two round trips:
// without it, four (lock, read, commit, unlock), and the commit's BEGIN
// and COMMIT two more.
//
// A hop runs on its session's lane (lanes.go), which it shares with other
// hops, until the lane cannot serve it: the session is held elsewhere
// (the hop then waits for it on a connection of its own, as it would
// without lanes), or its commit comes before any read. A commit that
// decides from what is stored (a link, an invitation) is a transaction of
// its own beside the lane, which lets the lock go after it.
type hop struct {
	id   string        // the session
	pool *pgxpool.Pool // where a connection of its own comes from

	mu       sync.Mutex
	lane     *lane         // nil once the hop has a connection of its own
	gen      uint64        // the lane connection's generation the lock was taken on
	laneKey  string        // the lane lock of that connection (lanes.go)
	conn     *pgxpool.Conn // its own connection, off the lane
	locked   bool          // the lock was taken (with the first statement)
	released bool          // the lock was let go (with the commit)
	broken   bool          // the connection holding the lock was lost: the lock went with it
	latestOf string        // the phone key whose latest session the read found the session to be ("": not)
}

// errNotText refuses a session id PostgreSQL cannot take as text (the
// client's encoding is UTF8): every statement naming it would fail, and
// on a lane, with the reads sharing its lock statement.
var errNotText = errors.New("lock session: its id is not UTF-8 text without NUL")

// textual reports whether PostgreSQL takes s as text.
func textual(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// hopKey is the context key of a hop.
type hopKey struct{}

// LockSession is menus.SessionLocker's: the hop runs on its session's
// lane, or on a connection set aside for it when another hop of this
// process holds the session on the lane, and the session's lock is
// taken with the first read (or commit) made with the context returned,
// which carries it. unlock lets the lock go if the commit did not, and
// hands the lane or the connection back; it must be called once.
func (l *Locks) LockSession(ctx context.Context, id string) (context.Context, func(), error) {
	if !textual(id) {
		return nil, nil, errNotText
	}
	h := &hop{id: id, pool: l.pool}
	if l.lanes != nil {
		if ln := l.lanes.of(id); ln.claim(id) {
			h.lane = ln
			return context.WithValue(ctx, hopKey{}, h), h.unlock, nil
		}
	}
	if err := h.ownConn(ctx); err != nil {
		return nil, nil, err
	}
	return context.WithValue(ctx, hopKey{}, h), h.unlock, nil
}

// ownConn gives the hop a connection of its own, off its lane.
func (h *hop) ownConn(ctx context.Context) error {
	if h.lane != nil {
		h.lane.unclaim(h.id)
		h.lane = nil
	}
	conn, err := h.pool.Acquire(ctx)
	if err != nil {
		h.released = true // nothing is held: unlock has nothing to do
		return fmt.Errorf("lock %s: %w", sessionLockKey(h.id), err)
	}
	h.conn = conn
	return nil
}

// hopOf returns the hop ctx carries for session id, or nil.
func hopOf(ctx context.Context, id string) *hop {
	h, _ := ctx.Value(hopKey{}).(*hop)
	if h == nil || h.id != id {
		return nil
	}
	return h
}

// laneOfHop is the lane of the hop ctx carries, with the generation its
// session's lock was taken on, when it holds that lock on the lane: what
// the hop asks of the store, whatever the session, may join the lane's
// round trips. Nil otherwise.
func laneOfHop(ctx context.Context) (l *lane, gen uint64, id string) {
	h, _ := ctx.Value(hopKey{}).(*hop)
	if h == nil {
		return nil, 0, ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lane == nil || !h.locked || h.released || h.broken {
		return nil, 0, ""
	}
	return h.lane, h.gen, h.id
}

// unlock lets the lock go unless the commit did, and hands the lane or
// the connection back.
func (h *hop) unlock() {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := h.locked && !h.released && !h.broken
	h.released = true
	switch {
	case h.lane != nil:
		if held {
			h.lane.do(&laneOp{kind: opUnlock, ctx: context.Background(), id: h.id, gen: h.gen})
		}
		h.lane.unclaim(h.id)
		h.lane = nil
	case h.conn != nil:
		if held {
			ctx, cancel := detached()
			if _, err := h.conn.Exec(ctx, unlockSQL, sessionLockKey(h.id)); err != nil {
				h.conn.Conn().Close(context.Background()) // the lock goes with the connection
			}
			cancel()
		}
		h.conn.Release()
		h.conn = nil
	}
}

// fail closes the hop's own connection after a failed round trip:
// whatever it was in the middle of (a lock being waited for, a
// transaction) and the lock go with it. Called with mu held.
func (h *hop) fail() {
	h.broken = true
	h.conn.Conn().Close(context.Background())
}

// errHopBroken answers a statement on a hop whose connection was closed
// after a failure: its lock is gone.
var errHopBroken = errors.New("the session's lock was lost with its connection")

// usable is why the hop can send nothing more, or nil.
func (h *hop) usable(what string) error {
	switch {
	case h.broken:
		return fmt.Errorf("%s: %w", what, errHopBroken)
	case h.released:
		return fmt.Errorf("%s: the session's lock was let go", what)
	}
	return nil
}

// readOnHop runs the session's read on the hop's lane or connection,
// taking the lock first in the same round trip if it is not held yet.
func (db *DB) readOnHop(ctx context.Context, h *hop) (*link.SessionRecord, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.usable("read session"); err != nil {
		return nil, err
	}
	if h.lane != nil {
		d := h.lane.do(&laneOp{kind: opRead, ctx: ctx, id: h.id, lock: !h.locked, gen: h.gen})
		if d.locked {
			h.locked, h.gen, h.laneKey = true, d.gen, d.key
		}
		switch {
		case d.err != nil:
			h.broken = errors.Is(d.err, errHopBroken)
			return nil, fmt.Errorf("read session: %w", d.err)
		case h.locked && d.rec == nil:
			return nil, link.ErrNoSession
		case h.locked:
			h.sawLatest(d.rec, d.latest)
			return db.openSecrets(d.rec, d.sealed), nil
		}
		// Held elsewhere: the hop waits for it on a connection of its
		// own, where a wait holds up no one else.
		if err := h.ownConn(ctx); err != nil {
			return nil, fmt.Errorf("read session: %w", err)
		}
	}
	b := &pgx.Batch{}
	lock := !h.locked
	if lock {
		queueLock(b, h.id)
	}
	b.Queue(hopSessionSQL, h.id)
	br := h.conn.SendBatch(ctx, b)
	if lock {
		if err := skip(br, 2); err != nil {
			br.Close()
			h.fail()
			return nil, fmt.Errorf("lock %s: %w", sessionLockKey(h.id), ctxErr(ctx, err))
		}
		h.locked = true
	}
	var latest bool
	r, sealed, err := scanSession(br.QueryRow(), &latest)
	cerr := br.Close()
	if errors.Is(err, pgx.ErrNoRows) && cerr == nil {
		return nil, link.ErrNoSession
	}
	if err = errors.Join(err, cerr); err != nil {
		h.fail()
		return nil, fmt.Errorf("read session: %w", ctxErr(ctx, err))
	}
	h.sawLatest(r, latest)
	return db.openSecrets(r, sealed), nil
}

// sawLatest remembers what the hop's read, under the session's lock,
// found of r: whether it is its phone's latest session.
func (h *hop) sawLatest(r *link.SessionRecord, latest bool) {
	h.latestOf = ""
	if latest {
		h.latestOf = link.PhoneKey(r.Phone)
	}
}

// markLatest has w leave the phone's row alone for the hop's session when
// its read found the session its phone's latest, the phone unchanged.
func (h *hop) markLatest(w *commitWrite) {
	for i := range w.recs {
		r := &w.recs[i]
		r.latest = h.latestOf != "" && r.id == h.id && r.phoneKey == h.latestOf
	}
}

// commitOnHop writes a change under the hop's lock and lets the lock go
// once the change is durable. On the lane, a common change (one that
// decides nothing from what is stored) joins the lane's group commit;
// any other is a transaction of its own beside the lane, and the lock is let
// go on the lane after it. On the hop's own connection: when the change
// reads before it writes (commitWrite.decided), BEGIN, its locks and
// reads in one round trip, then its writes, COMMIT and the lock let go in
// another, the unlock reached only once the COMMIT is durable; otherwise
// all of it in one. The session's lock goes first when it is not held
// yet. A deadlock or serialisation failure is rolled back and tried
// again, the session's lock kept; on its own connection any other
// failure closes it: the transaction is rolled back and the lock goes
// with it. On the lane, a commit refused keeps the lock until unlock.
func (db *DB) commitOnHop(ctx context.Context, h *hop, w *commitWrite) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.usable("commit"); err != nil {
		return err
	}
	h.markLatest(w)
	if h.lane != nil {
		if h.locked {
			return db.commitOnLane(ctx, h, w)
		}
		// Never read under its lock: the lock goes with the commit, on a
		// connection of the hop's own.
		if err := h.ownConn(ctx); err != nil {
			return err
		}
	}
	err := db.commitOn(ctx, h.conn, w, h.id, held{lock: !h.locked, unlock: true})
	if err != nil {
		h.fail()
		return err
	}
	h.locked, h.released = true, true
	return nil
}

// commitOnLane writes a change under a lock the hop holds on its lane.
func (db *DB) commitOnLane(ctx context.Context, h *hop, w *commitWrite) error {
	if w.common() {
		d := h.lane.do(&laneOp{kind: opCommit, ctx: ctx, id: h.id, w: w, gen: h.gen})
		if d.err != nil {
			h.broken = errors.Is(d.err, errHopBroken)
			return d.err
		}
		h.released = true
		return nil
	}
	// Its locks and reads would hold up the lane: a transaction of its
	// own, the session's lock kept on the lane until it is durable. The
	// transaction holds the session's fence and checks the lane still
	// holds the lock (commitBatches); a connection the lane already knows
	// it lost is seen here, without a transaction.
	if h.lane.generation() != h.gen {
		h.broken = true
		return errHopBroken
	}
	conn, err := h.pool.Acquire(ctx) // as a hop off the lane would, not from the pool its queries wait on
	if err != nil {
		return ctxErr(ctx, err)
	}
	if err := db.commitOn(ctx, conn, w, h.id, held{lane: h.laneKey}); err != nil {
		conn.Conn().Close(context.Background()) // the transaction goes with it
		conn.Release()
		return err
	}
	conn.Release()
	h.lane.do(&laneOp{kind: opUnlock, ctx: context.Background(), id: h.id, gen: h.gen})
	h.released = true
	return nil
}

// commitOn sends a change's batches on conn, with the session's lock
// first (lock) and let go after the COMMIT (unlock). A deadlock or
// serialisation failure is rolled back and tried again unless the lock
// was in the batch: the failure may be the lock's own. On any other
// failure the caller closes conn, which rolls back what is left open.
func (db *DB) commitOn(ctx context.Context, conn *pgxpool.Conn, w *commitWrite, id string, how held) error {
	for attempt := 0; ; attempt++ {
		err := db.commitBatches(ctx, conn, w, id, how)
		if err == nil {
			return nil
		}
		if !how.lock && retryable(err) && attempt < 5 {
			rctx, cancel := detached()
			_, rerr := conn.Exec(rctx, `ROLLBACK`)
			cancel()
			if rerr == nil {
				time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
				continue
			}
		}
		return ctxErr(ctx, err)
	}
}

// held says where a commit finds its session's lock.
type held struct {
	lock   bool   // take it on the commit's connection, first
	unlock bool   // let it go on the commit's connection, after the COMMIT
	lane   string // beside the lane: the lane lock of the connection holding it
}

// fencedSQL takes fence $1, waited for, then fails (division by zero)
// unless lane lock $2 is held: a commit beside the lane whose lane lost
// its connection, and the session's lock with it, writes nothing. Only the lane's connection ever takes its
// lane lock exclusively, from before it takes any session's lock, and the
// lock goes only with that connection's backend; the lane lets go of the
// session's lock of a commit beside it only once that commit is over. So
// the lane lock held means the session's lock is too. The try is shared,
// so that two commits beside one lost lane both see it gone; one that
// finds it gone holds it, shared, until its transaction is rolled back.
//
// One window is left, narrower than a round trip: a backend that exits
// lets its locks go one partition of the server's lock table at a time,
// waking each lock's waiters as it goes, so for a moment the session's
// lock may be another's while the lane lock is still held. Another
// instance would have to take the session, its fence and read it, all
// before this commit takes the fence and while the exit is under way,
// for the commit to write past that read. Reading the session lock's
// holder in pg_locks closed it, at 0.33 ms a commit.
//
// One statement: the fence's subquery runs for the row the check is made
// of (a subquery calling a volatile function is never merged into the
// query above it), so the check is made once the fence is held.
const fencedSQL = `SELECT 1 / (NOT pg_try_advisory_xact_lock_shared(hashtextextended($2, 0)))::int
	FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS fence`

// queueLock adds to b the session's lock, waited for, then its fence.
func queueLock(b *pgx.Batch, id string) {
	b.Queue(lockSQL, sessionLockKey(id))
	b.Queue(xactLockSQL, fenceKey(id))
}

// commitBatches sends commitOn's batches once. A link alone beside the
// lane goes first as one batch written as it came (commitLinkAsIs); only
// when that finds it must be decided from what is stored does it take the
// two batches every decided change takes.
func (db *DB) commitBatches(ctx context.Context, conn *pgxpool.Conn, w *commitWrite, id string, how held) error {
	if w.c.Link != nil && w.c.Invite == nil && !how.lock && !how.unlock {
		b, before := beginBatch(w, id, how)
		if committed, err := db.commitLinkAsIs(ctx, conn, b, w, before); committed || err != nil {
			return err
		}
	}
	b, before := beginBatch(w, id, how)
	var d decisions
	if w.decided() {
		db.queueReads(b, w)
		br := conn.SendBatch(ctx, b)
		err := skip(br, before)
		if err == nil {
			d, err = db.readDecisions(br, w)
		}
		if err = errors.Join(err, br.Close()); err != nil {
			return err
		}
		b = &pgx.Batch{}
	}
	if err := w.queueWrites(b, d); err != nil {
		return err
	}
	b.Queue(`COMMIT`)
	n := b.Len() // through the COMMIT
	if how.unlock {
		b.Queue(unlockSQL, sessionLockKey(id))
	}
	return doneAfterCommit(conn, conn.SendBatch(ctx, b), n)
}

// doneAfterCommit reads br's first n results, the last of them its
// COMMIT's, and closes it. Once the COMMIT is read the change is durable:
// what fails after it (the lock let go, the connection lost before the
// server's ReadyForQuery) does not make it fail; conn is closed instead,
// and a lock held on it goes with it.
func doneAfterCommit(conn *pgxpool.Conn, br pgx.BatchResults, n int) error {
	if err := skip(br, n); err != nil {
		return errors.Join(err, br.Close())
	}
	if br.Close() != nil { // reads what follows the COMMIT
		conn.Conn().Close(context.Background())
	}
	return nil
}

// detached is the context of what a hop finishes whatever its own
// context (letting a lock go, rolling back), bounded as a lane's round
// trip is: a hung server is given up on, and the connection closed.
func detached() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), laneTimeout)
}

// linkAsIsSQL fails (division by zero) when a link of account $1 must be
// decided from what is stored (decideLink): its session $2 stored it
// already with another data status than $3, or ($4: the store offers
// remembered updates) the account has a remembered update with a status.
// Otherwise the link is written as it came. Every writer of the account's
// link and update holds the account's lock, taken before it: what it reads
// stays so until the COMMIT.
const linkAsIsSQL = `SELECT 1 / (CASE WHEN EXISTS (SELECT 1 FROM links WHERE account_id = $1 AND session_id = $2 AND data_status IS DISTINCT FROM $3::text)
	OR ($4 AND EXISTS (SELECT 1 FROM mono_updates WHERE account_id = $1 AND data_status <> '')) THEN 0 ELSE 1 END)`

// commitLinkAsIs sends, after b (its BEGIN, lock checks and locks, before
// results ahead of the locks'), a link commit whole in one batch, the link
// written as it came unless linkAsIsSQL says it must be decided: then
// nothing is written, the transaction is rolled back and committed is
// false, for the caller to decide it from what is stored. One round trip
// instead of two, and the account's lock held only while the batch runs
// and its COMMIT is flushed, not across a round trip and the decision.
func (db *DB) commitLinkAsIs(ctx context.Context, conn *pgxpool.Conn, b *pgx.Batch, w *commitWrite, before int) (committed bool, err error) {
	l := w.c.Link
	b.Queue(linkAsIsSQL, l.AccountID, l.SessionID, l.DataStatus, db.linkUpdates != nil)
	if err := w.queueWrites(b, decisions{link: linkWrite{link: l}}); err != nil {
		return false, err
	}
	b.Queue(`COMMIT`)
	br := conn.SendBatch(ctx, b)
	checked := before + lockStatements(w.locks()) + 1 // through linkAsIsSQL
	err = skip(br, checked-1)
	if err == nil {
		if _, err = br.Exec(); sqlState(err) == divisionByZero {
			// Decided from what is stored: nothing was written, and the
			// server skipped the rest. A connection lost meanwhile fails
			// the ROLLBACK.
			br.Close()
			if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil {
				return false, fmt.Errorf("roll back a link to decide: %w", err)
			}
			return false, nil
		}
	}
	if err != nil {
		return false, errors.Join(err, br.Close())
	}
	return true, doneAfterCommit(conn, br, b.Len()-checked)
}

// divisionByZero is the SQLSTATE by which linkAsIsSQL and fencedSQL
// refuse.
const divisionByZero = "22012"

// sqlState is the SQLSTATE of the server's error err, "" for any other.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// beginBatch starts a batch of w's commit: the session's lock when the
// commit takes it, BEGIN, the fence and the lock check beside the lane,
// then w's own locks; before counts their results.
func beginBatch(w *commitWrite, id string, how held) (b *pgx.Batch, before int) {
	b = &pgx.Batch{}
	before = 1 // BEGIN
	if how.lock {
		queueLock(b, id)
		before += 2
	}
	b.Queue(`BEGIN`)
	if how.lane != "" {
		// Beside the lane: the fence, then the lock still the lane's. Any
		// holder after a lock lost now waits for the fence: a lock seen
		// held once the fence is taken is held until the COMMIT is over.
		b.Queue(fencedSQL, fenceKey(id), how.lane)
		before++
	}
	w.queueLocks(b)
	return b, before
}

// retryable reports whether err is a deadlock or serialisation failure,
// which the same transaction may not meet again.
func retryable(err error) bool {
	code := sqlState(err)
	return code == "40001" || code == "40P01"
}

// skip reads past n results of br, failing on the first that failed.
func skip(br pgx.BatchResults, n int) error {
	for range n {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	return nil
}

// ctxErr is ctx's error when it ended, err otherwise: a wait cut short by
// the caller says so.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
