package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Locks are advisory locks shared by every instance on the database: one
// per key (a session id), held on a connection of the pool for as long as
// the holder keeps it, and let go when that connection closes, so an
// instance that dies holds nothing. No transaction stays open while a lock
// is held: a hop calls Mono under its lock, never inside a transaction.
type Locks struct {
	pool  *pgxpool.Pool
	lanes *lanes // where hops run (LockSession)
}

// Locks returns the database's advisory locks.
func (db *DB) Locks() *Locks { return &Locks{pool: db.held, lanes: db.lanes} }

// LockContext takes the lock of key, waiting until it is free or ctx ends
// (the error then wraps ctx's). unlock lets it go; it must be called once.
func (l *Locks) LockContext(ctx context.Context, key string) (unlock func(), err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if _, err := conn.Exec(ctx, lockSQL, key); err != nil {
		// A wait cancelled by ctx may leave the connection mid-query:
		// it is closed rather than handed back, which drops any lock.
		conn.Conn().Close(context.Background())
		conn.Release()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lock %s: %w", key, ctx.Err())
		}
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	return func() {
		ctx, cancel := detached()
		defer cancel()
		if _, err := conn.Exec(ctx, unlockSQL, key); err != nil {
			conn.Conn().Close(context.Background()) // the lock goes with the connection
		}
		conn.Release()
	}, nil
}

// Leader is the one instance doing housekeeping (the sweeper): whoever
// holds its advisory lock, on a connection kept for it.
type Leader struct {
	pool *pgxpool.Pool
	conn *pgxpool.Conn // held while this instance leads
}

// Leader returns this instance's claim on the housekeeping lock.
func (db *DB) Leader() *Leader { return &Leader{pool: db.held} }

// leaderKey is the advisory lock of housekeeping.
const leaderKey = "ussdlink:housekeeping"

// Lead reports whether this instance leads, taking the lead when no one
// holds it. Another instance takes over once this one's connection is
// gone (it stopped, or died). It is called by one goroutine at a time.
func (l *Leader) Lead(ctx context.Context) (bool, error) {
	if l.conn != nil {
		if err := l.conn.Ping(ctx); err == nil {
			return true, nil
		}
		l.conn.Conn().Close(context.Background())
		l.conn.Release()
		l.conn = nil
	}
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("housekeeping lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, leaderKey).Scan(&got); err != nil {
		// The lock may have been taken all the same: handed back to the
		// pool, the connection would lead with no one knowing.
		conn.Conn().Close(context.Background())
		conn.Release()
		return false, fmt.Errorf("housekeeping lock: %w", err)
	}
	if !got {
		conn.Release()
		return false, nil
	}
	l.conn = conn
	return true, nil
}

// Resign gives the lead up (at shutdown), so another instance takes it at
// once.
func (l *Leader) Resign() error {
	if l.conn == nil {
		return nil
	}
	ctx, cancel := detached()
	defer cancel()
	_, err := l.conn.Exec(ctx, unlockSQL, leaderKey)
	if err != nil {
		l.conn.Conn().Close(context.Background())
	}
	l.conn.Release()
	l.conn = nil
	if err != nil {
		return errors.Join(errors.New("resign housekeeping"), err)
	}
	return nil
}
