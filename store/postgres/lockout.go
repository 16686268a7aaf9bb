package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
)

// Namespaces of the advisory transaction locks that serialise, across
// instances, what the bbolt store's single writer serialised. Each is
// taken as lockKey(namespace, key) (or tryLockKey) and held until the
// transaction ends.
const (
	lockLogin   = "ussdlink:login:"       // a phone's lockout: its failures and reservations
	lockAccount = "ussdlink:account:"     // a Mono account: its link and its remembered update
	lockCode    = "ussdlink:invite-code:" // an invitation code being given out
)

// xactLockSQL takes an advisory lock until the transaction ends.
const xactLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`

// xactLocksSQL takes the advisory locks of keys $1 until the transaction
// ends, one after another in the array's order (the function scan's,
// which nothing sorts): one statement, one executor, however many keys.
const xactLocksSQL = `SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k`

// queueXactLocks adds to b the transaction locks of keys, in their order,
// as one statement (none without keys), and returns how many statements
// it added (lockStatements).
func queueXactLocks(b *pgx.Batch, keys []string) int {
	switch len(keys) {
	case 0:
	case 1:
		b.Queue(xactLockSQL, keys[0])
	default:
		b.Queue(xactLocksSQL, keys)
	}
	return lockStatements(keys)
}

// lockStatements is how many statements queueXactLocks adds for keys:
// for a reader of their results, once they are queued.
func lockStatements(keys []string) int { return min(len(keys), 1) }

// lockKey takes the advisory transaction lock of key in a namespace,
// waiting for the instance holding it to commit or roll back.
func lockKey(ctx context.Context, tx pgx.Tx, namespace, key string) error {
	if _, err := tx.Exec(ctx, xactLockSQL, namespace+key); err != nil {
		return fmt.Errorf("lock %s%s: %w", namespace, key, err)
	}
	return nil
}

// tryLockKey takes the advisory transaction lock of key in a namespace if
// no other transaction holds it, without waiting, and reports whether it
// did.
func tryLockKey(ctx context.Context, tx pgx.Tx, namespace, key string) (bool, error) {
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))`, namespace+key).Scan(&got); err != nil {
		return false, fmt.Errorf("lock %s%s: %w", namespace, key, err)
	}
	return got, nil
}

// ReserveAttempt reserves one guess at a secret for a phone, atomically
// across instances: under the phone's lock it counts the phone's refused
// and reserved attempts since a time and, below max, records one more at
// at. The key releases it (link.Change.Release) when the bank did not
// refuse it. Both statements go in one round trip, one implicit
// transaction: the count, a statement after the lock, sees every failure
// the lock's previous holder committed.
//
// Made for a hop on its lane, the reservation joins the lane's group
// commit: the phone's lock with the group's, the statement in its
// transaction, durable with its COMMIT, without a transaction and a WAL
// flush of its own.
func (db *DB) ReserveAttempt(ctx context.Context, phone string, since, at time.Time, max int) (string, bool, error) {
	r := &reservation{phone: link.PhoneKey(phone), since: since, at: at, max: max}
	err := db.reserve(ctx, r)
	switch {
	case err != nil:
		return "", false, fmt.Errorf("reserve login attempt: %w", err)
	case r.id == 0:
		return "", false, nil // locked out
	}
	return strconv.FormatInt(r.id, 10), true, nil
}

// reserve makes r on the lane of the hop ctx carries, or on a connection
// of its own: off a lane, or when the lane failed it (a lost connection,
// a group rolled back). A group lost after its COMMIT may have made it
// already: counted twice then, which errs on the lockout's side.
func (db *DB) reserve(ctx context.Context, r *reservation) error {
	if l, gen, session := laneOfHop(ctx); l != nil {
		if l.do(&laneOp{kind: opReserve, ctx: ctx, id: session, res: r, gen: gen}).err == nil {
			return nil
		}
	}
	b := &pgx.Batch{}
	b.Queue(xactLockSQL, lockLogin+r.phone)
	b.Queue(reserveSQL, r.phone, r.at, r.since, r.max)
	br := db.pool.SendBatch(ctx, b)
	r.id = 0
	_, err := br.Exec()
	if err == nil {
		if err = br.QueryRow().Scan(&r.id); errors.Is(err, pgx.ErrNoRows) {
			err = nil // locked out
		}
	}
	return errors.Join(err, br.Close())
}

// reserveSQL records a login attempt for phone $1 at $2 unless it has $4
// since $3, under the phone's lock, and returns its id (no row: locked
// out).
const reserveSQL = `INSERT INTO login_failures (phone_key, at) SELECT $1, $2
	WHERE (SELECT count(*) FROM login_failures WHERE phone_key = $1 AND at >= $3) < $4
	RETURNING id`

// LoginFailures counts the refused logins and unreleased reservations of
// a phone since a time (inclusive).
func (db *DB) LoginFailures(ctx context.Context, phone string, since time.Time) (int, error) {
	n, err := countFailures(ctx, db.pool, link.PhoneKey(phone), since)
	if err != nil {
		return 0, fmt.Errorf("count login failures: %w", err)
	}
	return n, nil
}

// countFailures counts a phone's failure records since a time.
func countFailures(ctx context.Context, r querier, phoneKey string, since time.Time) (int, error) {
	var n int
	err := r.QueryRow(ctx, countFailuresSQL, phoneKey, since).Scan(&n)
	return n, err
}

// countFailuresSQL counts phone $1's failure records since $2.
const countFailuresSQL = `SELECT count(*) FROM login_failures WHERE phone_key = $1 AND at >= $2`

// queueFailure adds to b the statement that records a refused login.
func queueFailure(b *pgx.Batch, phoneKey string, at time.Time) {
	b.Queue(`INSERT INTO login_failures (phone_key, at) VALUES ($1, $2)`, phoneKey, at)
}

// queueRelease adds to b the statement that removes the reservations keys
// name, and reports whether there was one. A malformed or unknown key is
// ignored: the reservation may have been swept already.
func queueRelease(b *pgx.Batch, keys []string) bool {
	var ids []int64
	for _, k := range keys {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return false
	}
	b.Queue(`DELETE FROM login_failures WHERE id = ANY($1)`, ids)
	return true
}
