package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// The durable queues, told apart by the queue column of messages and
// dead_letters.
const (
	queueWebhooks = "webhooks" // partner webhooks
	queueTexts    = "texts"    // text messages
)

// deliveryLease is how long a message handed out by Due is kept from the
// other instances: the instance it was handed to is sending it, and either
// records its outcome (Delivered, Reschedule, GiveUp: the lease ends) or
// dies, and the message is handed to another instance once the lease has
// lapsed (delivery is at least once). It is far longer than any one send
// (providers and partners are called with 10–15 s timeouts), so that a
// slow send is not made twice, and short enough that a dead instance's
// messages are not kept long.
const deliveryLease = 2 * time.Minute

// Queue is one durable outbox on the database: partner webhooks and text
// messages each have one. Many instances may work through one queue at
// once: Due hands each message to one instance at a time (see Due).
//
// Messages that share an ordering key (Message.Key) leave the queue in the
// order they entered it: Due hands out only the earliest queued message of
// each key, so a later one waits while an earlier one is retried, whether
// or not the earlier is due yet.
type Queue struct {
	db   *DB
	name string
}

// Webhooks is the queue of partner webhooks.
func (db *DB) Webhooks() *Queue { return &Queue{db: db, name: queueWebhooks} }

// Texts is the queue of text messages.
func (db *DB) Texts() *Queue { return &Queue{db: db, name: queueTexts} }

// leaseHolder names this instance (this DB) as the holder of the messages
// Due hands it: random, made on first use.
func (db *DB) leaseHolder() string {
	db.holderOnce.Do(func() {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		db.holder = hex.EncodeToString(b)
	})
	return db.holder
}

// putMessages adds messages to a queue in tx, each given the next sequence
// number of its queue (Message.Seq), in the order given. A message whose id
// is queued already replaces it and keeps its place (its sequence number).
//
// The messages of one ordering key must be numbered in the order their
// transactions commit, or Due could hand out a later one before an earlier
// one commits: putMessages takes a transaction-scoped advisory lock per key
// (in key order, so two transactions never wait for each other in a
// circle) before numbering, so that transactions queueing for one key
// number and commit one after the other.
func (db *DB) putMessages(ctx context.Context, tx pgx.Tx, queue string, msgs []link.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	queueMessages(batch, queue, msgs)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("queue %s messages: %w", queue, err)
	}
	return nil
}

// queueMessages adds to batch the statements that queue msgs: each key's
// transaction lock, in order, then the messages.
func queueMessages(batch *pgx.Batch, queue string, msgs []link.Message) {
	queueXactLocks(batch, messageLocks(queue, msgs))
	queueMessageRows(batch, queue, msgs)
}

// messageLocks are the transaction locks of msgs' ordering keys in queue,
// each once, in order.
func messageLocks(queue string, msgs []link.Message) []string {
	var keys []string
	for i := range msgs {
		if k := boundKey(msgs[i].Key); k != "" {
			keys = append(keys, "ussdlink:queue:"+queue+":"+k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// queueMessageRows adds to batch the statements that insert msgs, their
// keys' locks already taken.
func queueMessageRows(batch *pgx.Batch, queue string, msgs []link.Message) {
	for _, m := range msgs {
		batch.Queue(`INSERT INTO messages (queue, id, seq, key, type, body, created, attempts, next_attempt, last_error)
			VALUES ($1, $2, nextval('message_seq'), $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (queue, id) DO UPDATE SET key = EXCLUDED.key, type = EXCLUDED.type, body = EXCLUDED.body,
				created = EXCLUDED.created, attempts = EXCLUDED.attempts, next_attempt = EXCLUDED.next_attempt,
				last_error = EXCLUDED.last_error`,
			queue, m.ID, boundKey(m.Key), m.Type, body(m.Body), m.Created, m.Attempts, m.Next, m.LastErr)
	}
}

// boundKey is an ordering key cut to kit.MaxKey bytes, as every backend
// cuts it, and back to whole characters (a text column holds UTF-8 only).
func boundKey(k string) string {
	if len(k) <= kit.MaxKey {
		return k
	}
	k = k[:kit.MaxKey]
	for len(k) > 0 && !utf8.ValidString(k) {
		k = k[:len(k)-1]
	}
	return k
}

// body is a message body as stored: never NULL.
func body(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// messageColumns are the columns a link.Message is read from, in
// scanMessage's order.
const messageColumns = `id, type, body, created, attempts, next_attempt, last_error, key, seq`

// scanMessage reads a message from a row of messageColumns.
func scanMessage(row pgx.CollectableRow) (link.Message, error) {
	var m link.Message
	var seq int64
	if err := row.Scan(&m.ID, &m.Type, &m.Body, &m.Created, &m.Attempts, &m.Next, &m.LastErr, &m.Key, &seq); err != nil {
		return link.Message{}, err
	}
	m.Seq = uint64(seq)
	m.Created, m.Next = m.Created.UTC(), m.Next.UTC()
	return m, nil
}

// notWaiting is the condition, on a message m, that no earlier message of
// its ordering key is still queued: Due and NextDue count only those.
const notWaiting = `NOT EXISTS (SELECT 1 FROM messages o
	WHERE o.queue = m.queue AND m.key <> '' AND o.key <> '' AND o.key = m.key AND o.seq < m.seq)`

// Due returns up to max messages whose next attempt is not after now, in
// (due time, sequence) order, and of each ordering key only the earliest
// queued message, and only once it is due: the others of its key wait.
//
// It is a claim: the messages it returns are leased to this instance
// until now + deliveryLease, and no other instance is handed them before
// the lease lapses or their outcome is recorded (Delivered, Reschedule,
// GiveUp), even when they call Due at the same moment (rows another
// transaction is claiming are skipped, never waited for). This instance is
// handed its own messages again, their lease renewed once half of it has
// passed (claimSQL): its worker keeps track of what it has in flight,
// and looks ahead with Due. now is the caller's clock: the due times and
// leases are compared with it.
func (q *Queue) Due(ctx context.Context, now time.Time, max int) ([]link.Message, error) {
	return q.DeliveredThenDue(ctx, nil, now, max, nil)
}

// DeliveredThenDue is outbox.SettlingQueue's: it removes the messages
// delivered, as Delivered does each, then claims as Due does, in one
// round trip and one transaction (the statements of one batch run in one
// implicit transaction): one commit and one WAL flush for both, where
// each Delivered is one of its own. The claim sees the messages removed
// gone, so the next one of their ordering keys is handed out in the same
// call. The messages held by the caller are left out while more than half
// of their lease is left (neither locked, nor read, nor counted in max),
// and handed out again to renew it. On an error neither is done. With
// max 0 it only removes.
func (q *Queue) DeliveredThenDue(ctx context.Context, delivered []string, now time.Time, max int, held []string) ([]link.Message, error) {
	if max <= 0 && len(delivered) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	if len(delivered) > 0 {
		b.Queue(`DELETE FROM messages WHERE queue = $1 AND id = ANY($2)`, q.name, delivered)
	}
	if max > 0 {
		if held == nil {
			held = []string{} // not NULL: no id is = ANY(NULL)
		}
		b.Queue(claimSQL, q.name, now, q.db.leaseHolder(), max, now.Add(deliveryLease), now.Add(deliveryLease/2), held)
	}
	br := q.db.pool.SendBatch(ctx, b)
	msgs, err := q.readClaim(br, len(delivered) > 0, max > 0)
	if err = errors.Join(err, br.Close()); err != nil {
		return nil, fmt.Errorf("read %s queue: %w", q.name, err)
	}
	return msgs, nil
}

// claimSQL hands holder $3 up to $4 of queue $1's messages due by $2
// (Due), skipping the rows another transaction is claiming, and leases
// them until $5: all but its own whose lease lasts past $6, which are
// handed out as they are, or left out when its caller holds them ($7), as
// a message it holds with no lease is (its outcome being recorded). A lease is renewed once half of it has passed,
// not at every claim: the update of a message (a new row version and an
// entry in each of its indexes) is made about once, and the claims that
// follow find fewer dead entries to step over.
const claimSQL = `WITH claimed AS MATERIALIZED (
		SELECT m.queue, m.id, (m.lease_holder IS DISTINCT FROM $3 OR m.leased_until <= $6) AS lease
		FROM messages m
		WHERE m.queue = $1 AND m.next_attempt <= $2
			AND (m.leased_until IS NULL OR m.leased_until <= $2 OR m.lease_holder = $3)
			AND NOT (m.id = ANY($7) AND (m.leased_until IS NULL OR m.lease_holder = $3 AND m.leased_until > $6))
			AND ` + notWaiting + `
		ORDER BY m.next_attempt, m.seq
		LIMIT $4
		FOR UPDATE OF m SKIP LOCKED),
	leased AS (
		UPDATE messages u SET leased_until = $5, lease_holder = $3
		FROM claimed c WHERE c.lease AND u.queue = c.queue AND u.id = c.id
		RETURNING u.id, u.type, u.body, u.created, u.attempts, u.next_attempt, u.last_error, u.key, u.seq)
	SELECT * FROM leased
	UNION ALL
	SELECT m.id, m.type, m.body, m.created, m.attempts, m.next_attempt, m.last_error, m.key, m.seq
	FROM claimed c JOIN messages m ON m.queue = c.queue AND m.id = c.id WHERE NOT c.lease`

// readClaim reads DeliveredThenDue's results: the removal's, when
// removed, then the claim's, when claimed, in Due's order.
func (q *Queue) readClaim(br pgx.BatchResults, removed, claimed bool) ([]link.Message, error) {
	if removed {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("remove delivered messages: %w", err)
		}
	}
	if !claimed {
		return nil, nil
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(msgs, func(a, b link.Message) int {
		return cmp.Or(a.Next.Compare(b.Next), cmp.Compare(a.Seq, b.Seq))
	})
	return msgs, nil
}

// NextDue returns when the earliest message Due would hand this instance
// is due (a message waiting behind an earlier one of its key is not
// counted), or false when there is none. A message another instance holds
// counts from when its lease lapses, if that is later.
func (q *Queue) NextDue(ctx context.Context) (time.Time, bool, error) {
	var at *time.Time
	err := q.db.pool.QueryRow(ctx, `SELECT min(at) FROM (
			(SELECT m.next_attempt AS at FROM messages m
			 WHERE m.queue = $1 AND (m.leased_until IS NULL OR m.lease_holder = $2) AND `+notWaiting+`
			 ORDER BY m.next_attempt, m.seq LIMIT 1)
			UNION ALL
			(SELECT greatest(m.next_attempt, m.leased_until) FROM messages m
			 WHERE m.queue = $1 AND m.leased_until IS NOT NULL AND m.lease_holder IS DISTINCT FROM $2 AND `+notWaiting+`)
		) due`, q.name, q.db.leaseHolder()).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read %s queue: %w", q.name, err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.UTC(), true, nil
}

// Depth reports how many messages the queue holds and when the oldest was
// queued (zero when empty), for metrics.
func (q *Queue) Depth(ctx context.Context) (messages int, oldest time.Time, err error) {
	var at *time.Time
	if err := q.db.pool.QueryRow(ctx, `SELECT count(*), min(created) FROM messages WHERE queue = $1`, q.name).Scan(&messages, &at); err != nil {
		return 0, time.Time{}, fmt.Errorf("read %s queue depth: %w", q.name, err)
	}
	if at != nil {
		oldest = at.UTC()
	}
	return messages, oldest, nil
}

// Delivered removes a message the recipient acknowledged (or that was
// deliberately not sent). A message already gone is no error.
func (q *Queue) Delivered(ctx context.Context, id string) error {
	if _, err := q.db.pool.Exec(ctx, `DELETE FROM messages WHERE queue = $1 AND id = $2`, q.name, id); err != nil {
		return fmt.Errorf("%s message %s: %w", q.name, id, err)
	}
	return nil
}

// Reschedule records a failed attempt and when to try again, ending the
// message's lease. A message already gone is no error.
func (q *Queue) Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	_, err := q.db.pool.Exec(ctx, `UPDATE messages
		SET attempts = $3, next_attempt = $4, last_error = $5, leased_until = NULL, lease_holder = NULL
		WHERE queue = $1 AND id = $2`, q.name, id, attempts, next, lastErr)
	if err != nil {
		return fmt.Errorf("%s message %s: %w", q.name, id, err)
	}
	return nil
}

// GiveUp moves a message that could not be delivered in time to the dead
// letters, where an operator can still find it, replacing a dead letter of
// its id. A message already gone is no error.
func (q *Queue) GiveUp(ctx context.Context, id string, lastErr string) error {
	_, err := q.db.pool.Exec(ctx, `WITH gone AS (
			DELETE FROM messages WHERE queue = $1 AND id = $2
			RETURNING queue, id, seq, key, type, body, created, attempts, next_attempt)
		INSERT INTO dead_letters (queue, id, seq, key, type, body, created, attempts, next_attempt, last_error)
		SELECT queue, id, seq, key, type, body, created, attempts, next_attempt, $3 FROM gone
		ON CONFLICT (queue, id) DO UPDATE SET seq = EXCLUDED.seq, key = EXCLUDED.key, type = EXCLUDED.type,
			body = EXCLUDED.body, created = EXCLUDED.created, attempts = EXCLUDED.attempts,
			next_attempt = EXCLUDED.next_attempt, last_error = EXCLUDED.last_error`, q.name, id, lastErr)
	if err != nil {
		return fmt.Errorf("%s message %s: %w", q.name, id, err)
	}
	return nil
}

// DeadLetters returns the messages given up on, in id order.
func (q *Queue) DeadLetters(ctx context.Context) ([]link.Message, error) {
	rows, err := q.db.pool.Query(ctx, `SELECT `+messageColumns+` FROM dead_letters
		WHERE queue = $1 ORDER BY id COLLATE "C"`, q.name)
	if err != nil {
		return nil, fmt.Errorf("read %s dead letters: %w", q.name, err)
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("read %s dead letters: %w", q.name, err)
	}
	return msgs, nil
}

// SweepDeadLetters deletes the messages given up on that were created
// before a time, the oldest first, at most max of them, and returns how
// many it deleted.
func (q *Queue) SweepDeadLetters(ctx context.Context, before time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	tag, err := q.db.pool.Exec(ctx, `DELETE FROM dead_letters d USING (
			SELECT queue, id FROM dead_letters WHERE queue = $1 AND created < $2
			ORDER BY created LIMIT $3 FOR UPDATE SKIP LOCKED) old
		WHERE d.queue = old.queue AND d.id = old.id`, q.name, before, max)
	if err != nil {
		return 0, fmt.Errorf("sweep %s dead letters: %w", q.name, err)
	}
	return int(tag.RowsAffected()), nil
}

// Enqueue adds events to the webhook queue on their own (events that no
// hop produced, such as those from Mono's webhooks).
func (db *DB) Enqueue(ctx context.Context, events ...link.Event) error {
	msgs, err := kit.EventMessages(events)
	if err != nil {
		return fmt.Errorf("enqueue events: %w", err)
	}
	return db.enqueue(ctx, queueWebhooks, msgs, "enqueue events")
}

// EnqueueTexts adds text messages to their queue on their own (texts that
// no hop produced: invitations, reauthorisation nudges, replies).
func (db *DB) EnqueueTexts(ctx context.Context, texts ...link.Text) error {
	msgs, err := kit.TextMessages(texts)
	if err != nil {
		return fmt.Errorf("enqueue texts: %w", err)
	}
	return db.enqueue(ctx, queueTexts, msgs, "enqueue texts")
}

// enqueue puts messages in a queue in a transaction of their own.
func (db *DB) enqueue(ctx context.Context, queue string, msgs []link.Message, what string) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := db.inTx(ctx, func(tx pgx.Tx) error { return db.putMessages(ctx, tx, queue, msgs) }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
