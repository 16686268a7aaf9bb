package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ussdlink/ussdlink/link"
)

// A lane is one connection of the held pool that many hops share: each
// hop's session lock is held on it, and what the hops send while a round
// trip is under way goes out together in the next one. One round trip
// so carries the reads (each with its session's lock) of hops just
// begun, the unlocks of hops that wrote nothing, and one transaction with
// the writes of every common commit waiting (a group commit: one COMMIT,
// one WAL flush), each hop's lock let go after it. A hop still costs two
// round trips; the database runs one transaction, and wakes one backend,
// for many.
//
// A session's lock is only tried on a lane (pg_try_advisory_lock), and its
// fence too: a lane never waits for a session's other holder, since every
// hop on it would wait too. A hop that finds its session held (by another
// instance, or another hop of this one, or a commit beside a lane that
// lost it) leaves the lane and waits on a connection of its own (hop.go's
// dedicated path). A group commit may still wait, as
// any commit does, on a transaction lock (a phone's, a queue key's) or a
// row another transaction holds for a moment; every hop of the lane
// waits with it.
//
// A failed statement fails what it belongs to: the read, or the commit
// whose writes it was (the others of the group go again in the next
// round trip); a deadlock or serialisation failure sends the whole group
// again. The reads' lock statement failed (the server's lock table full,
// say) fails those reads and lets go of whatever locks
// it took; a statement the server would not prepare fails the ops that
// send it, and nothing else. A row the lane cannot decode fails its op
// alone. A lost connection (or a round trip past laneTimeout) loses
// every lock held on it: the lane takes a new one and a new generation,
// and a commit of a hop that locked its session on the old one fails
// (errHopBroken) instead of writing without its lock.
type lane struct {
	pool *pgxpool.Pool
	ops  chan *laneOp
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returns

	mu     sync.Mutex
	claims map[string]bool // sessions whose hop runs on this lane

	conn *pgxpool.Conn // run's only
	// gen is the connection's generation, moved on by run when it loses
	// one: a lock taken on an earlier one is gone.
	gen atomic.Uint64
	// key is the lane lock of the connection (run's only): taken on it
	// when it is acquired, before its first batch, so that a commit
	// beside the lane can see the connection still holds its locks
	// (fencedSQL).
	key string
}

// maxLaneOps is the most a lane sends in one round trip.
const maxLaneOps = 64

// laneTimeout bounds one round trip of a lane: every hop on it waits for
// its outcome, whatever its own context (a hop does not walk away from a
// commit it sent), so a hung server is given up on: the connection is
// closed, and a commit whose COMMIT was not answered is reported failed,
// as on a connection of its own.
const laneTimeout = 10 * time.Second

// errLaneClosed answers what is asked of a lane once the store closed.
var errLaneClosed = errors.New("the store is closed")

// opKind is what a hop asks of its lane.
type opKind uint8

const (
	opRead    opKind = iota // read the session (hopSessionSQL), its lock tried first when lock
	opCommit                // a common commit, its lock let go once durable
	opUnlock                // let the session's lock go
	opReserve               // reserve a login attempt (ReserveAttempt) in the group's transaction
)

// laneOp is one request of a hop to its lane, answered once on done.
type laneOp struct {
	kind  opKind
	ctx   context.Context
	id    string        // the session
	lock  bool          // opRead: try the session's lock first
	gen   uint64        // the generation the session's lock was taken on (unless lock)
	w     *commitWrite  // opCommit
	res   *reservation  // opReserve
	tries int           // group commits failed by a deadlock or serialisation failure
	done  chan laneDone // buffered: the lane never waits on a hop

	// Set by the lane's run only.
	got     bool // the lock was taken (opRead with lock, or sent again holding it)
	unsure  bool // the lock was tried by a statement that failed: it may be held (letGoUnsure)
	replied bool // answered on done
	// opCommit: its sessions are written by statements of its own, not
	// with the group's others: a statement writing them together failed.
	alone bool
}

// laneDone is a lane's answer to an op.
type laneDone struct {
	rec    *link.SessionRecord // opRead: the session, nil when there is none
	sealed []byte              // its secrets, still sealed
	latest bool                // opRead: the session is its phone's latest (hopSessionSQL)
	locked bool                // opRead with lock (or sent again holding it): the lock is held now
	gen    uint64              // the generation it was taken on
	key    string              // the lane lock of the connection holding it
	err    error
}

// reservation is a login attempt to reserve for a phone in a group's
// transaction: below max failures since since, one more at at. id is the
// reserved attempt's, 0 when the phone is locked out; set once its
// statement ran, answered once the group's COMMIT is.
type reservation struct {
	phone     string // the phone's key
	since, at time.Time
	max       int
	id        int64
}

// grouped reports whether op is carried out in the group's transaction.
func (op *laneOp) grouped() bool { return op.kind == opCommit || op.kind == opReserve }

// newLane starts a lane on pool's connections.
func newLane(pool *pgxpool.Pool) *lane {
	l := &lane{pool: pool, ops: make(chan *laneOp, maxLaneOps), stop: make(chan struct{}), done: make(chan struct{}),
		claims: map[string]bool{}}
	go l.run()
	return l
}

// claim reserves the lane for a hop of session id: false when another
// hop of this process holds it on the lane (its lock would be taken
// twice on one connection, which PostgreSQL allows).
func (l *lane) claim(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.claims[id] {
		return false
	}
	l.claims[id] = true
	return true
}

// unclaim ends a hop's claim.
func (l *lane) unclaim(id string) {
	l.mu.Lock()
	delete(l.claims, id)
	l.mu.Unlock()
}

// do sends op and waits for its answer: once sent it is carried out, so a
// hop whose context ends still learns what became of its commit.
func (l *lane) do(op *laneOp) laneDone {
	op.done = make(chan laneDone, 1)
	select {
	case l.ops <- op:
	case <-l.stop:
		return laneDone{err: errLaneClosed}
	case <-op.ctx.Done():
		return laneDone{err: op.ctx.Err()}
	}
	select {
	case d := <-op.done:
		return d
	case <-l.done:
		select {
		case d := <-op.done:
			return d
		default:
			return laneDone{err: errLaneClosed}
		}
	}
}

// close stops the lane once what it was sent is done, and hands its
// connection back.
func (l *lane) close() {
	close(l.stop)
	<-l.done
}

// run sends what the lane's hops ask, as much at once as has come in.
func (l *lane) run() {
	defer close(l.done)
	var queued []*laneOp
	for {
		if len(queued) == 0 {
			select {
			case op := <-l.ops:
				queued = append(queued, op)
			case <-l.stop:
				l.drop()
				return
			}
		}
	more:
		for len(queued) < maxLaneOps {
			select {
			case op := <-l.ops:
				queued = append(queued, op)
			default:
				break more
			}
		}
		queued = l.round(queued)
	}
}

// drop answers whatever is still sent after close and hands the
// connection back: its locks go with it.
func (l *lane) drop() {
	for {
		select {
		case op := <-l.ops:
			op.reply(laneDone{err: errLaneClosed})
		default:
			if l.conn != nil {
				l.conn.Conn().Close(context.Background())
				l.conn.Release()
				l.conn = nil
			}
			return
		}
	}
}

// lockLane makes conn the lane's connection once it holds a lane lock of
// its own, a new key for each connection: that lock is held for as long
// as the connection's backend lives and so keeps every session lock the
// lane takes on it, and a commit beside the lane tries it (fencedSQL)
// instead of reading pg_locks, which takes every partition of the
// server's lock table. A connection that cannot take it is closed.
func (l *lane) lockLane(conn *pgxpool.Conn) error {
	key := laneLockKey()
	ctx, cancel := detached()
	defer cancel()
	if _, err := conn.Exec(ctx, lockSQL, key); err != nil {
		conn.Conn().Close(context.Background())
		conn.Release()
		return fmt.Errorf("lane lock: %w", err)
	}
	// Planned once: a custom plan for each round trip's reads cost more
	// to plan than to run, and none of the lane's statements is better
	// for knowing its values.
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		conn.Conn().Close(context.Background())
		conn.Release()
		return fmt.Errorf("lane plans: %w", err)
	}
	for _, sql := range laneStatements {
		if _, err := conn.Conn().Prepare(ctx, sql, sql); err != nil {
			conn.Conn().Close(context.Background())
			conn.Release()
			return fmt.Errorf("prepare the lane's statements: %w", err)
		}
	}
	l.conn, l.key = conn, key
	return nil
}

// laneStatements are the statements a lane sends for hops' locks, reads
// and unlocks, and for the sessions of its group commits, prepared when it takes a connection: none of its round
// trips waits on preparing one (a round trip of its own, which pgx makes
// before a batch with a statement new to the connection), and reads the
// server cannot run (a table locked away) fail one by one, as when each
// was a statement of its own, not with the preparation of the batch.
var laneStatements = []string{tryLocksSQL, hopSessionSQL, hopSessionsSQL, unlocksSQL, upsertSessionsSQL, makeLatestManySQL}

// laneLockKey is a new lane lock's key, unique to one connection of one
// instance.
func laneLockKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "lane:" + hex.EncodeToString(b)
}

// breakConn closes the lane's connection after a failure whose effect is
// not known: the locks held on it go with it, and the next connection
// starts a new generation.
func (l *lane) breakConn() {
	if l.conn != nil {
		l.conn.Conn().Close(context.Background())
		l.conn.Release()
		l.conn = nil
	}
	l.gen.Add(1)
}

// generation is the lane connection's generation now.
func (l *lane) generation() uint64 { return l.gen.Load() }

// stepKind is what one statement of a round trip is for.
type stepKind uint8

const (
	stepLock     stepKind = iota // the reads' locks, tried (tryLocksSQL)
	stepRead                     // a read
	stepReads                    // the reads of many sessions, in one statement (hopSessionsSQL)
	stepUnlock                   // unlocks, alone or after the group's COMMIT (unlocksSQL)
	stepBegin                    // the group's BEGIN
	stepKey                      // the transaction locks of the whole group
	stepWrite                    // a statement of one commit
	stepSessions                 // the sessions of many commits (sessionBatch)
	stepCommit                   // the group's COMMIT
	stepReserve                  // a reservation's statement
	stepReserved                 // no statement: a reservation answered once the COMMIT is
)

// step is one statement of a round trip and the op it serves (nil for
// the group's own, and for a statement of many ops).
type step struct {
	kind stepKind
	op   *laneOp
	ops  []*laneOp // stepLock, stepUnlock: the ops whose sessions' locks it tries or lets go, in its array's order
}

// round sends ops in one round trip and answers them, returning those to
// send again (in the next round trip).
func (l *lane) round(ops []*laneOp) (again []*laneOp) {
	ops = l.admit(ops)
	if len(ops) == 0 {
		return nil
	}
	if l.conn == nil {
		ctx, cancel := detached()
		conn, err := l.pool.Acquire(ctx)
		cancel()
		if err != nil {
			for _, op := range ops {
				op.reply(laneDone{err: fmt.Errorf("lane connection: %w", err)})
			}
			return nil
		}
		if err := l.lockLane(conn); err != nil {
			for _, op := range ops {
				op.reply(laneDone{err: err})
			}
			return nil
		}
	}
	b, steps := l.batch(ops)
	ctx, cancel := detached()
	defer cancel()
	br := l.conn.SendBatch(ctx, b)
	failed, err := l.answer(br, steps)
	err = errors.Join(err, br.Close())
	var (
		pgErr   *pgconn.PgError
		refused pgx.ErrPreprocessingBatch
	)
	switch {
	case err == nil:
	case l.conn.Conn().IsClosed():
		l.lose(ops, steps, failed, err)
	case errors.As(err, &refused):
		var ok bool
		if again, ok = l.refuse(ops, b, steps, refused.SQL(), err); !ok {
			l.lose(ops, steps, -1, err)
		}
	case errors.As(err, &pgErr) && failed >= 0 && steps[failed].kind != stepUnlock:
		// The server skipped what followed the failed statement: what
		// ran is answered before anything else can change the lane's
		// generation, then an explicit transaction, left aborted, is
		// rolled back.
		again = l.blame(ops, steps[failed], err)
		rctx, cancel := detached() // not what the round trip left of its own
		_, rerr := l.conn.Exec(rctx, `ROLLBACK`)
		cancel()
		if rerr != nil {
			l.breakConn()
		}
	default:
		// An unlock that failed, or a failure the lane cannot place:
		// the connection's state is not known.
		l.lose(ops, steps, failed, err)
	}
	l.letGoUnsure(ops)
	return again
}

// lose closes the lane's connection after a failure whose effect is not
// known, at statement failed of steps (-1: before any ran): the locks held
// on it go with it. A commit whose COMMIT was read is durable (its lock
// went with the connection); anything else not answered fails.
func (l *lane) lose(ops []*laneOp, steps []step, failed int, err error) {
	l.breakConn()
	committed := slices.IndexFunc(steps, func(st step) bool { return st.kind == stepCommit })
	for _, op := range ops {
		if op.grouped() && committed >= 0 && committed < failed {
			op.reply(laneDone{})
		}
		op.reply(laneDone{err: err})
	}
}

// refuse answers a round trip that was never sent: the server would not
// prepare statement sql (an argument that cannot be encoded is found
// after the first statements were written, and pgx closes the
// connection: lose). A commit's write or a reservation fails the ops
// that send it (every one sending the same statement); the sessions of
// many commits are written by statements of their own next; the others
// go again as they were, and ok is true. A statement of the lane's own
// failed: nothing can go, and ok is false.
func (l *lane) refuse(ops []*laneOp, b *pgx.Batch, steps []step, sql string, err error) (again []*laneOp, ok bool) {
	for i, q := range b.QueuedQueries { // a step for each, in order; the last, stepReserved, have none
		switch st := steps[i]; {
		case q.SQL != sql:
		case st.kind == stepWrite || st.kind == stepReserve:
			st.op.reply(laneDone{err: err})
			ok = true
		case st.kind == stepSessions:
			for _, op := range st.ops {
				op.alone = true
			}
			ok = true
		}
	}
	for _, op := range ops {
		if !op.replied {
			again = append(again, op)
		}
	}
	return again, ok
}

// letGoUnsure lets go of the locks that a failed statement tried (laneOp
// unsure): the ops were answered not holding them. Letting go of a lock
// not held does nothing, and no other hop holds these sessions on the
// lane (claim). A connection that cannot is given up on: the locks go
// with it.
func (l *lane) letGoUnsure(ops []*laneOp) {
	var keys []string
	for _, op := range ops {
		if op.unsure {
			op.unsure = false
			keys = append(keys, sessionLockKey(op.id))
		}
	}
	if len(keys) == 0 || l.conn == nil {
		return
	}
	ctx, cancel := detached()
	defer cancel()
	if _, err := l.conn.Exec(ctx, unlocksSQL, keys); err != nil {
		l.breakConn()
	}
}

// fail answers op with err; a read says whether it holds its lock (taken
// in the round trip, or sent again holding it), for its hop to let it go.
func (l *lane) fail(op *laneOp, err error) {
	op.reply(laneDone{err: err, locked: op.kind == opRead && op.got, gen: l.gen.Load(), key: l.key})
}

// failUnsure fails the reads whose lock statement failed: each lock may
// be held all the same, and is let go (letGoUnsure).
func (l *lane) failUnsure(ops []*laneOp, err error) {
	for _, op := range ops {
		op.got, op.unsure = false, true
		l.fail(op, err)
	}
}

// admit answers what cannot be sent: an op whose context ended, and
// anything resting on a lock taken on a connection since lost.
func (l *lane) admit(ops []*laneOp) []*laneOp {
	run := ops[:0]
	for _, op := range ops {
		switch {
		case op.kind == opUnlock && op.gen != l.gen.Load():
			op.reply(laneDone{}) // the lock went with its connection
		case op.kind != opUnlock && op.ctx.Err() != nil:
			// A read sent again with its lock taken (blame) says so:
			// its hop lets the lock go.
			holding := op.kind == opRead && op.got && op.gen == l.gen.Load()
			op.reply(laneDone{err: op.ctx.Err(), locked: holding, gen: op.gen, key: l.key})
		case !(op.kind == opRead && op.lock) && op.gen != l.gen.Load():
			op.reply(laneDone{err: errHopBroken})
		default:
			run = append(run, op)
		}
	}
	return run
}

// batch lays ops out as one round trip: the reads' locks, the reads, the
// lone unlocks, then the group's transaction and its unlocks; the locks
// tried, and the locks let go, each in one statement for all of them. The
// server flushes its results when its output buffer fills and at the
// batch's end (one Sync): a read may wait for the group's COMMIT to be
// durable.
func (l *lane) batch(ops []*laneOp) (*pgx.Batch, []step) {
	b := &pgx.Batch{}
	steps := make([]step, 0, 2*len(ops)+4)
	var locks, reads, unlocks, commits, reserves []*laneOp
	for _, op := range ops {
		switch op.kind {
		case opRead:
			if op.lock {
				locks = append(locks, op)
			}
			reads = append(reads, op)
		case opUnlock:
			unlocks = append(unlocks, op)
		case opCommit:
			commits = append(commits, op)
		case opReserve:
			reserves = append(reserves, op)
		}
	}
	if len(locks) > 0 {
		keys, fences := make([]string, len(locks)), make([]string, len(locks))
		for i, op := range locks {
			keys[i], fences[i] = sessionLockKey(op.id), fenceKey(op.id)
		}
		b.Queue(tryLocksSQL, keys, fences)
		steps = append(steps, step{kind: stepLock, ops: locks})
	}
	switch len(reads) {
	case 0:
	case 1:
		b.Queue(hopSessionSQL, reads[0].id)
		steps = append(steps, step{stepRead, reads[0], nil})
	default:
		ids := make([]string, len(reads))
		for i, op := range reads {
			ids[i] = op.id
		}
		b.Queue(hopSessionsSQL, ids)
		steps = append(steps, step{kind: stepReads, ops: reads})
	}
	steps = queueUnlocks(b, steps, unlocks)
	if len(commits) == 0 && len(reserves) == 0 {
		return b, steps
	}
	// In one order of phones, and the transaction locks taken first, in
	// one order too: two groups never wait on each other in turn.
	slices.SortStableFunc(commits, func(a, b *laneOp) int { return strings.Compare(a.w.phone, b.w.phone) })
	b.Queue(`BEGIN`)
	steps = append(steps, step{kind: stepBegin})
	for range queueXactLocks(b, groupKeys(commits, reserves)) {
		steps = append(steps, step{kind: stepKey})
	}
	together := togetherOps(commits)
	if len(together) > 0 {
		var sb sessionBatch
		for _, op := range together {
			for _, r := range op.w.recs {
				sb.add(r)
			}
		}
		for range sb.queue(b) {
			steps = append(steps, step{kind: stepSessions, ops: together})
		}
	}
	for _, op := range commits {
		n := b.Len()
		if len(together) > 0 && !op.alone {
			op.w.queueBeside(b)
		} else {
			op.w.queueOwn(b)
		}
		for range b.Len() - n {
			steps = append(steps, step{stepWrite, op, nil})
		}
	}
	for _, op := range reserves {
		r := op.res
		b.Queue(reserveSQL, r.phone, r.at, r.since, r.max)
		steps = append(steps, step{stepReserve, op, nil})
	}
	b.Queue(`COMMIT`)
	steps = append(steps, step{kind: stepCommit})
	steps = queueUnlocks(b, steps, commits)
	for _, op := range reserves {
		steps = append(steps, step{stepReserved, op, nil})
	}
	return b, steps
}

// togetherOps are the commits whose sessions are written together
// (sessionBatch), in one statement for the group instead of one or two
// each: all but those sent alone, when they write more than one session.
func togetherOps(commits []*laneOp) []*laneOp {
	var ops []*laneOp
	rows := 0
	for _, op := range commits {
		if !op.alone {
			ops = append(ops, op)
			rows += len(op.w.recs)
		}
	}
	if rows < 2 {
		return nil
	}
	return ops
}

// queueUnlocks adds to b one statement letting go of the locks of ops'
// sessions, when there are any, and its step to steps.
func queueUnlocks(b *pgx.Batch, steps []step, ops []*laneOp) []step {
	if len(ops) == 0 {
		return steps
	}
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = sessionLockKey(op.id)
	}
	b.Queue(unlocksSQL, keys)
	return append(steps, step{kind: stepUnlock, ops: ops})
}

// groupKeys are the transaction locks the group's commits and
// reservations take, each once, in the order a commit of its own takes
// them: their own (the phones of the login failures recorded and of the
// attempts reserved: a common change links no account), then the queue
// keys of the messages, webhooks' then texts'.
func groupKeys(commits, reserves []*laneOp) []string {
	var phones, webhooks, texts []string
	for _, op := range reserves {
		phones = append(phones, lockLogin+op.res.phone)
	}
	for _, op := range commits {
		phones = append(phones, op.w.locks()...)
		webhooks = append(webhooks, messageLocks(queueWebhooks, op.w.msgs)...)
		texts = append(texts, messageLocks(queueTexts, op.w.texts)...)
	}
	var keys []string
	for _, class := range [][]string{phones, webhooks, texts} {
		slices.Sort(class)
		keys = append(keys, slices.Compact(class)...)
	}
	return keys
}

// answer reads the round trip's results in order and answers each op
// with its last statement: a read with its session, a commit once its
// lock is let go after the COMMIT, an unlock once done. It returns the
// index of the first statement that failed (-1 when none did) and its
// error.
func (l *lane) answer(br pgx.BatchResults, steps []step) (int, error) {
	for i, st := range steps {
		switch st.kind {
		case stepLock:
			switch err := scanLocks(br, st.ops); {
			case undecoded(err):
				l.failUnsure(st.ops, err)
			case err != nil:
				return i, err
			}
		case stepRead: // a read whose lock is unsure was answered: its result is read past
			var latest bool
			rec, sealed, err := scanSession(laneRow{br}, &latest)
			switch {
			case undecoded(err):
				l.fail(st.op, err)
				continue
			case err != nil && !errors.Is(err, pgx.ErrNoRows):
				return i, err
			}
			st.op.reply(laneDone{rec: rec, sealed: sealed, latest: latest, locked: st.op.got, gen: l.gen.Load(), key: l.key})
		case stepReads:
			if err := l.answerReads(br, st.ops); err != nil {
				return i, err
			}
		case stepReserve:
			st.op.res.id = 0
			switch err := (laneRow{br}).Scan(&st.op.res.id); {
			case undecoded(err):
				// Made, its id unknown: made again off the lane
				// (reserve), counted twice on the lockout's side.
				st.op.reply(laneDone{err: err})
			case err != nil && !errors.Is(err, pgx.ErrNoRows):
				return i, err // no row: locked out
			}
		case stepReserved:
			st.op.reply(laneDone{})
		case stepSessions:
			if _, err := br.Exec(); err != nil {
				return i, err
			}
		default:
			if _, err := br.Exec(); err != nil {
				return i, err
			}
			for _, op := range st.ops { // stepUnlock's
				op.reply(laneDone{gen: l.gen.Load()})
			}
		}
	}
	return -1, nil
}

// blame answers the ops of a round trip stopped by the failure of
// culprit, the server having skipped everything after it: the failed
// read or commit fails, and whatever was not answered goes again. A
// read whose lock the round trip took (its first statement tries them
// all) goes again holding it: a session's lock outlives the failed
// statement, and taking it again would hold it twice, to be let go
// once. A deadlock or serialisation failure sends the whole group again
// (up to maxGroupTries times); any other failure of the group's own
// statements fails its commits.
func (l *lane) blame(ops []*laneOp, culprit step, err error) (again []*laneOp) {
	retry := retryable(err)
	switch culprit.kind {
	case stepLock:
		l.failUnsure(culprit.ops, err)
	case stepRead:
		l.fail(culprit.op, err)
	case stepReads:
		// As when reads go one statement each: the first fails, the
		// server having skipped the others, which go again.
		l.fail(culprit.ops[0], err)
	case stepWrite, stepReserve:
		if !retry {
			culprit.op.reply(laneDone{err: err})
		}
	case stepSessions:
		// Whose session the server refused is not known: each writes
		// its own next, and the next failure is its commit's alone.
		if !retry {
			for _, op := range culprit.ops {
				op.alone = true
			}
		}
	}
	// The group's BEGIN, a transaction lock or its COMMIT failed.
	own := culprit.kind == stepBegin || culprit.kind == stepKey || culprit.kind == stepCommit
	// The group's commits were rolled back: a deadlock sends them again,
	// a few times; a failure of the group's own fails them.
	rolledBack := own || culprit.kind == stepWrite || culprit.kind == stepSessions || culprit.kind == stepReserve
	for _, op := range ops {
		if op.replied {
			continue
		}
		if op.grouped() && rolledBack && (retry || own) {
			if op.tries++; own && !retry || op.tries > maxGroupTries {
				op.reply(laneDone{err: err})
				continue
			}
		}
		if op.kind == opRead && op.got {
			op.lock, op.gen = false, l.gen.Load()
		} else {
			op.got = false
		}
		again = append(again, op)
	}
	return again
}

// maxGroupTries is how many times a group commit rolled back for a
// deadlock or serialisation failure is sent again.
const maxGroupTries = 5

// reply answers op, once.
func (op *laneOp) reply(d laneDone) {
	if !op.replied {
		op.replied = true
		op.done <- d
	}
}

// tryLocksSQL tries the locks of sessions $1, in order, never waiting
// for another holder, and once it has one tries that session's fence
// (the same place of $2, see fenceKey), letting the lock go again when
// the fence is held: CASE tries a fence only when its lock was taken,
// and lets go only when the fence was not. A row for each, its place
// (from 1) and whether its lock (and fence) was taken.
const tryLocksSQL = `SELECT o, CASE WHEN NOT pg_try_advisory_lock(hashtextextended(k, 0)) THEN false
	WHEN pg_try_advisory_xact_lock(hashtextextended(f, 0)) THEN true
	ELSE NOT pg_advisory_unlock(hashtextextended(k, 0)) END
	FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(k, f, o)`

// unlocksSQL lets go of the locks of sessions $1.
const unlocksSQL = `SELECT pg_advisory_unlock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k`

// scanLocks reads tryLocksSQL's rows into ops' got, in its order.
func scanLocks(br pgx.BatchResults, ops []*laneOp) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	var (
		n     int
		place int64
		got   bool
	)
	dest := []any{&place, &got} // one for every row
	for rows.Next() && err == nil {
		switch err = decodeRow(rows, dest); {
		case err != nil:
		case place < 1 || place > int64(len(ops)):
			err = decodeError{fmt.Errorf("lock tried at place %d of %d", place, len(ops))}
		default:
			ops[place-1].got = got
			n++
		}
	}
	rows.Close()
	switch {
	case rows.Err() != nil:
		return rows.Err()
	case err != nil:
		return err
	case n != len(ops):
		return decodeError{fmt.Errorf("%d locks tried of %d", n, len(ops))}
	}
	return nil
}

// answerReads answers the reads of one hopSessionsSQL statement, each
// with its session's row, or none when it is not stored. A row that
// cannot be decoded fails its own read; one whose session cannot be
// told (its id undecoded) fails every read left without a row, since
// any of them may be its.
func (l *lane) answerReads(br pgx.BatchResults, ops []*laneOp) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	type read struct {
		rec    *link.SessionRecord
		sealed []byte
		latest bool
		err    error
	}
	got := make(map[string]read, len(ops))
	var untold error
	for rows.Next() {
		var r read
		if r.rec, r.sealed, r.err = scanSession(currentRow{rows}, &r.latest); r.err == nil {
			got[r.rec.ID] = r
		} else if id, ok := rowID(rows); ok {
			got[id] = r
		} else {
			untold = r.err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, op := range ops {
		r, ok := got[op.id]
		switch {
		case !ok && untold != nil:
			l.fail(op, untold)
		case r.err != nil:
			l.fail(op, r.err)
		default: // no row: the session is not stored
			op.reply(laneDone{rec: r.rec, sealed: r.sealed, latest: r.latest, locked: op.got, gen: l.gen.Load(), key: l.key})
		}
	}
	return nil
}

// rowID is the session id of the row rows is on, its first column, when
// it can be read as text.
func rowID(rows pgx.Rows) (string, bool) {
	raw := rows.RawValues()
	if len(raw) == 0 || raw[0] == nil || !utf8.Valid(raw[0]) {
		return "", false
	}
	return string(raw[0]), true
}

// currentRow is the row rows is on, as a pgx.Row decoded by decodeRow.
type currentRow struct{ rows pgx.Rows }

// Scan is pgx.Row's.
func (r currentRow) Scan(dest ...any) error { return decodeRow(r.rows, dest) }

// laneRow is the row (or none) of a statement of a lane's round trip,
// decoded without failing the rest: pgx fails every later result of a
// batch once a row could not be scanned, though the server ran them all
// (the group's COMMIT among them). A row the lane cannot decode fails
// its op alone (decodeError), and the round trip's results are read on.
type laneRow struct{ br pgx.BatchResults }

// Scan is pgx.Row's.
func (r laneRow) Scan(dest ...any) error {
	rows, err := r.br.Query()
	if err != nil {
		return err
	}
	found := rows.Next()
	if found {
		err = decodeRow(rows, dest)
	}
	rows.Close()
	switch {
	case rows.Err() != nil:
		return rows.Err()
	case !found:
		return pgx.ErrNoRows
	}
	return err
}

// decodeError is a value of a row that could not be decoded (a column
// of another type than the lane expects, a NULL where none can be).
type decodeError struct{ err error }

// Error is error's.
func (e decodeError) Error() string { return "decode row: " + e.err.Error() }

// Unwrap is the decoder's error.
func (e decodeError) Unwrap() error { return e.err }

// undecoded reports whether err is a row that could not be decoded.
func undecoded(err error) bool { return errors.As(err, new(decodeError)) }

// decodeRow decodes the row rows is on into dest as rows.Scan does, but
// without failing rows (and the batch it is of) when it cannot.
func decodeRow(rows pgx.Rows, dest []any) error {
	if n := len(rows.FieldDescriptions()); n != len(dest) {
		return decodeError{fmt.Errorf("%d columns for %d values", n, len(dest))}
	}
	if err := (columns{rows, 0}).Scan(dest...); err != nil {
		return decodeError{err}
	}
	return nil
}

// lanes are a store's lanes; a session always runs on the same one.
type lanes struct {
	seed maphash.Seed
	all  []*lane
}

// newLanes starts n lanes on pool.
func newLanes(pool *pgxpool.Pool, n int) *lanes {
	ls := &lanes{seed: maphash.MakeSeed()}
	for range n {
		ls.all = append(ls.all, newLane(pool))
	}
	return ls
}

// of is session id's lane.
func (ls *lanes) of(id string) *lane {
	return ls.all[maphash.String(ls.seed, id)%uint64(len(ls.all))]
}

// close stops every lane.
func (ls *lanes) close() {
	for _, l := range ls.all {
		l.close()
	}
}
