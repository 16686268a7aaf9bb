package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

// hop is a session's lock for one hop, on a connection of its own, taken
// and let go in step with the session's read and commit: the lock goes out
// in the same round trip as the first read, and comes back after the
// COMMIT of the hop's commit, in its round trip. A common hop (read, then
// commit) so costs two round trips: without it, four (lock, read, commit,
// unlock), and the commit's BEGIN and COMMIT two more.
type hop struct {
	id string // the session

	mu       sync.Mutex
	conn     *pgxpool.Conn
	locked   bool // the lock was taken (with the first statement)
	released bool // the lock was let go (with the commit)
	broken   bool // the connection was closed after a failure: the lock went with it
}

// hopKey is the context key of a hop.
type hopKey struct{}

// LockSession is menus.SessionLocker's: a connection is set aside for the
// hop, and the session's lock is taken on it with the first read (or
// commit) made with the context returned, which carries it. unlock lets
// the lock go if the commit did not, and hands the connection back; it
// must be called once.
func (l *Locks) LockSession(ctx context.Context, id string) (context.Context, func(), error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("lock %s: %w", sessionLockKey(id), err)
	}
	h := &hop{id: id, conn: conn}
	return context.WithValue(ctx, hopKey{}, h), h.unlock, nil
}

// hopOf returns the hop ctx carries for session id, or nil.
func hopOf(ctx context.Context, id string) *hop {
	h, _ := ctx.Value(hopKey{}).(*hop)
	if h == nil || h.id != id {
		return nil
	}
	return h
}

// unlock lets the lock go unless the commit did, and hands the connection
// back.
func (h *hop) unlock() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.locked && !h.released && !h.broken {
		if _, err := h.conn.Exec(context.Background(), unlockSQL, sessionLockKey(h.id)); err != nil {
			h.conn.Conn().Close(context.Background()) // the lock goes with the connection
		}
	}
	h.released = true
	h.conn.Release()
}

// fail closes the connection after a failed round trip: whatever it was in
// the middle of (a lock being waited for, a transaction) and the lock go
// with it. Called with mu held.
func (h *hop) fail() {
	h.broken = true
	h.conn.Conn().Close(context.Background())
}

// errHopBroken answers a statement on a hop whose connection was closed
// after a failure: its lock is gone.
var errHopBroken = errors.New("the session's lock was lost with its connection")

// readOnHop runs the session's read on the hop's connection, taking the
// lock first in the same round trip if it is not held yet.
func (db *DB) readOnHop(ctx context.Context, h *hop, query string) (*link.SessionRecord, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.broken:
		return nil, fmt.Errorf("read session: %w", errHopBroken)
	case h.released:
		return nil, errors.New("read session: its lock was let go")
	}
	b := &pgx.Batch{}
	lock := !h.locked
	if lock {
		b.Queue(lockSQL, sessionLockKey(h.id))
	}
	b.Queue(query, h.id)
	br := h.conn.SendBatch(ctx, b)
	if lock {
		if _, err := br.Exec(); err != nil {
			br.Close()
			h.fail()
			return nil, fmt.Errorf("lock %s: %w", sessionLockKey(h.id), ctxErr(ctx, err))
		}
		h.locked = true
	}
	r, sealed, err := scanSession(br.QueryRow())
	cerr := br.Close()
	if errors.Is(err, pgx.ErrNoRows) && cerr == nil {
		return nil, link.ErrNoSession
	}
	if err = errors.Join(err, cerr); err != nil {
		h.fail()
		return nil, fmt.Errorf("read session: %w", ctxErr(ctx, err))
	}
	return db.openSecrets(r, sealed), nil
}

// commitOnHop writes a change on the hop's connection: when it reads
// before it writes (commitWrite.decided), BEGIN, its locks and reads in
// one round trip, then its writes, COMMIT and the lock let go in another,
// the unlock reached only once the COMMIT is durable; otherwise all of it
// in one. The session's lock goes first when it is not held yet. A
// deadlock or serialisation failure is rolled back and tried again, the
// session's lock kept; any other failure closes the connection: the
// transaction is rolled back and the lock goes with it.
func (db *DB) commitOnHop(ctx context.Context, h *hop, w *commitWrite) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.broken:
		return errHopBroken
	case h.released:
		return errors.New("the session's lock was let go before its commit")
	}
	for attempt := 0; ; attempt++ {
		locking := !h.locked // the session's lock goes in the batch
		err := db.commitBatches(ctx, h, w)
		if err == nil {
			h.locked, h.released = true, true
			return nil
		}
		// Retried only with the session's lock held from before: a
		// failure in a batch that also took it may be the lock's own.
		if !locking && retryable(err) && attempt < 5 {
			if _, rerr := h.conn.Exec(context.Background(), `ROLLBACK`); rerr == nil {
				time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
				continue
			}
		}
		h.fail()
		return ctxErr(ctx, err)
	}
}

// commitBatches sends commitOnHop's batches once.
func (db *DB) commitBatches(ctx context.Context, h *hop, w *commitWrite) error {
	b := &pgx.Batch{}
	before := 1 // results ahead of the change's own: BEGIN, and the session's lock
	if !h.locked {
		b.Queue(lockSQL, sessionLockKey(h.id))
		before++
	}
	b.Queue(`BEGIN`)
	w.queueLocks(b)
	var d decisions
	if w.decided() {
		db.queueReads(b, w)
		br := h.conn.SendBatch(ctx, b)
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
	b.Queue(unlockSQL, sessionLockKey(h.id))
	return h.conn.SendBatch(ctx, b).Close()
}

// retryable reports whether err is a deadlock or serialisation failure,
// which the same transaction may not meet again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
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
