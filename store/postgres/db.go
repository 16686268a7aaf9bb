package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/seal"
)

// DB is the store on one PostgreSQL database, safe for concurrent use by
// any number of goroutines and instances.
type DB struct {
	pool *pgxpool.Pool
	// held is the pool of connections that hold advisory locks (a
	// session's, housekeeping's) for as long as their holders need them:
	// apart from pool, so that hops holding their sessions' locks can
	// never take every connection their own queries wait for.
	held *pgxpool.Pool
	// lanes are the connections of held that hops share (lanes.go).
	lanes  *lanes
	sealer *seal.Sealer
	// linkUpdates decides whether a new link takes a remembered
	// account_updated (WithLinkUpdates); nil: none is applied.
	linkUpdates LinkUpdates
	// funnel decides the funnel entry of a session Sweep deletes
	// (WithFunnel); nil: the sweep counts none.
	funnel   link.FunnelOf
	maxConns int32
	laneN    int // lanes of hops; 0: hopLanes
	tracer   pgx.QueryTracer
	// holder names this instance as the holder of the queue messages it
	// is handed (queues.go), made once, on first use.
	holderOnce sync.Once
	holder     string
}

// LinkUpdates decides, inside the commit of a new link, whether it takes
// the account's remembered account_updated, and which partner events
// announce it (see store.LinkUpdates: the same policy, the same rule).
type LinkUpdates func(l *link.Link, u link.MonoUpdate) (take bool, events []link.Event)

// Option configures a DB.
type Option func(*DB)

// WithLinkUpdates makes a commit offer a new link the account's
// remembered update, through f. Without it none is applied.
func WithLinkUpdates(f LinkUpdates) Option { return func(db *DB) { db.linkUpdates = f } }

// WithMaxConns sizes the connection pool ([store] max-conns); 0 keeps
// the default: twice the CPUs, at least defaultConns.
func WithMaxConns(n int) Option { return func(db *DB) { db.maxConns = int32(n) } }

// withLanes sets how many lanes the hops share (tests: one, to know which
// hops share it).
func withLanes(n int) Option { return func(db *DB) { db.laneN = n } }

// WithTracer hands every statement of both pools to t (pgx's tracing:
// t may also be a pgx.BatchTracer or pgx.PrepareTracer), to trace or count
// what the store asks the database.
func WithTracer(t pgx.QueryTracer) Option { return func(db *DB) { db.tracer = t } }

// ErrSealKeyMismatch is returned by Open when the database was written
// under another seal key than this instance's (and none of its previous
// keys): every sealed value would fail to open, so the instance refuses to
// start rather than ask every user to type everything again.
var ErrSealKeyMismatch = errors.New("the database was sealed with another seal key")

// Open connects to the database at url, migrates its schema (once, under
// an advisory lock, however many instances start together) and checks
// that it was sealed with sealer's key.
func Open(ctx context.Context, url string, sealer *seal.Sealer, opts ...Option) (*DB, error) {
	if sealer == nil {
		return nil, errors.New("open postgres store: a sealer is required")
	}
	db := &DB{sealer: sealer}
	for _, o := range opts {
		o(db)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", redact(err))
	}
	if !strings.Contains(url, "pool_max_conns") { // a size the URL gives is kept
		cfg.MaxConns = max(defaultConns, 2*int32(runtime.NumCPU()))
	}
	if db.maxConns > 0 {
		cfg.MaxConns = db.maxConns
	}
	if db.tracer != nil {
		cfg.ConnConfig.Tracer = db.tracer
	}
	// Every statement after a lock must see what the lock's previous
	// holder committed (a hop's read after its session's lock, in one
	// batch; a count after a phone's lock): each statement its own
	// snapshot, whatever the server's default.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open postgres store: %w", redact(err))
	}
	heldCfg := cfg.Copy()
	if db.laneN <= 0 {
		db.laneN = hopLanes
	}
	heldCfg.MaxConns = max(2*cfg.MaxConns, minHeldConns) + int32(db.laneN)
	heldCfg.MinConns = 0
	if db.held, err = pgxpool.NewWithConfig(ctx, heldCfg); err != nil {
		db.pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", redact(err))
	}
	if err := db.pool.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres store: %w", redact(err))
	}
	if err := migrate(ctx, db.pool); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.checkSealKey(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.lanes = newLanes(db.held, db.laneN)
	return db, nil
}

// defaultConns is the fewest connections of the query pool by default:
// with its hops on lanes, an instance's queries are a new session's
// look-ups and the queues' work, which pgxpool's default (four on a
// small machine) kept waiting for a connection (a first hop's p50 70 ms
// against 34 ms with eight, at 64 sessions on two cores).
const defaultConns = 8

// minHeldConns is the fewest connections kept for locks off the lanes:
// sessions whose hops wait for another holder at once on one instance.
const minHeldConns = 16

// hopLanes is how many lanes an instance's hops share: enough that a
// lane's round trip (a group commit waits for its WAL flush) rarely holds
// up a hop, few enough that each gathers many hops.
const hopLanes = 4

// Writable reports whether the database takes writes: it answers, and it
// is not a read-only standby. For the admin listener's /readyz.
func (db *DB) Writable(ctx context.Context) error {
	var standby bool
	if err := db.pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	if standby {
		return errors.New("database is a read-only standby")
	}
	return nil
}

// Close lets go of the queue messages this instance claimed and did not
// start (another instance may send them at once, not after their lease),
// then closes the pools.
func (db *DB) Close() error {
	var err error
	if db.holder != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = db.pool.Exec(ctx, `UPDATE messages SET leased_until = NULL, lease_holder = NULL WHERE lease_holder = $1`, db.holder)
		cancel()
		if err != nil {
			err = fmt.Errorf("close postgres store: release claimed messages: %w", err)
		}
	}
	if db.lanes != nil {
		db.lanes.close()
	}
	db.held.Close()
	db.pool.Close()
	return err
}

// checkSealKey compares the database's key check value with this
// instance's keys: the current one's is stored on first use; a previous
// key's is replaced by the current one's (the key was rotated); any other
// is ErrSealKeyMismatch.
func (db *DB) checkSealKey(ctx context.Context) error {
	current := keyCheck(db.sealer.Derive(keyCheckPurpose))
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var stored []byte
		err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'seal_check' FOR UPDATE`).Scan(&stored)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err = tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('seal_check', $1)`, current)
			return err
		case err != nil:
			return fmt.Errorf("read seal key check: %w", err)
		case equal(stored, current):
			return nil
		}
		for _, prev := range db.sealer.DerivePrevious(keyCheckPurpose) {
			if equal(stored, keyCheck(prev)) {
				_, err = tx.Exec(ctx, `UPDATE meta SET value = $1 WHERE key = 'seal_check'`, current)
				return err
			}
		}
		return fmt.Errorf("open postgres store: %w: start every instance with the same [security] seal-key "+
			"(and the old one in previous-seal-keys while rotating)", ErrSealKeyMismatch)
	})
}

// inTx runs fn in a transaction, committed when fn returns nil. A
// transaction the server aborted as a serialisation failure or deadlock
// (another instance wrote the same rows) is run again, a few times.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, db.pool, fn)
		if err != nil && retryable(err) && attempt < 5 {
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
			continue
		}
		return err
	}
}

// redact drops a connection error's text that may echo the URL (and its
// password) back.
func redact(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return err
	}
	var cerr *pgconn.ConnectError
	if errors.As(err, &cerr) {
		return errors.New("cannot connect to the database")
	}
	return err
}
