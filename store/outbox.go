package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
	bolt "go.etcd.io/bbolt"
)

// Queue is one durable outbox: messages, their due-time index, their
// order index, and the messages given up on (kept for inspection). Partner
// webhooks and text messages each have one.
//
// Messages that share an ordering key (Message.Key) leave the queue in the
// order they entered it: Due hands out only the earliest queued message of
// each key, so a later one waits while an earlier one is retried, whether
// or not the earlier is due yet.
type Queue struct {
	db *DB
	queueBuckets
}

// queueBuckets names the buckets of one queue.
type queueBuckets struct {
	box   []byte // message id → link.Message
	due   []byte // next attempt (8 bytes BE) + sequence (8 bytes BE) → message id
	order []byte // key length (2 bytes BE) + key + sequence (8 bytes BE) → message id
	dead  []byte // message id → link.Message
}

// Outbox buckets: partner webhooks (the DB's own methods) and texts.
// Messages queued before the sequence existed (Seq 0) are indexed in the
// due bucket as next attempt + id → nil, and in no order.
var (
	bucketOutbox      = []byte("outbox")
	bucketOutboxDue   = []byte("outbox_due")
	bucketOutboxOrder = []byte("outbox_order")
	bucketDead        = []byte("outbox_dead")
	bucketSMS         = []byte("sms_outbox")
	bucketSMSDue      = []byte("sms_outbox_due")
	bucketSMSOrder    = []byte("sms_outbox_order")
	bucketSMSDead     = []byte("sms_outbox_dead")

	webhookBuckets = queueBuckets{box: bucketOutbox, due: bucketOutboxDue, order: bucketOutboxOrder, dead: bucketDead}
	textBuckets    = queueBuckets{box: bucketSMS, due: bucketSMSDue, order: bucketSMSOrder, dead: bucketSMSDead}
)

// Webhooks is the queue of partner webhooks.
func (db *DB) Webhooks() *Queue {
	return &Queue{db: db, queueBuckets: webhookBuckets}
}

// Texts is the queue of text messages.
func (db *DB) Texts() *Queue {
	return &Queue{db: db, queueBuckets: textBuckets}
}

// putMessages adds messages to the partner webhook queue.
func putMessages(tx *bolt.Tx, msgs []link.Message) error {
	return (&Queue{queueBuckets: webhookBuckets}).put(tx, msgs)
}

// put adds messages to the queue, in order, each with the queue's next
// sequence number. A message whose id is queued already replaces it and
// keeps its place.
func (q *Queue) put(tx *bolt.Tx, msgs []link.Message) error {
	for _, m := range msgs {
		seq, err := q.place(tx, m.ID)
		if err != nil {
			return err
		}
		m.Seq = seq
		if err := q.putMessage(tx, m); err != nil {
			return err
		}
	}
	return nil
}

// place returns the sequence number of a message about to be queued: the
// queue's next, or, for an id queued already, its own (with its index
// entries removed, to be written anew).
func (q *Queue) place(tx *bolt.Tx, id string) (uint64, error) {
	box := tx.Bucket(q.box)
	if v := box.Get([]byte(id)); v != nil {
		var old link.Message
		if decodeMessage(v, &old) == nil {
			if err := q.deleteIndexes(tx, old); err != nil {
				return 0, err
			}
			if old.Seq != 0 {
				return old.Seq, nil
			}
		}
	}
	return box.NextSequence()
}

// putMessage writes a message and its index entries.
func (q *Queue) putMessage(tx *bolt.Tx, m link.Message) error {
	if len(m.Key) > kit.MaxKey {
		m.Key = m.Key[:kit.MaxKey]
	}
	data, err := encodeMessage(&m)
	if err != nil {
		return err
	}
	id := []byte(m.ID)
	if err := tx.Bucket(q.box).Put(id, data); err != nil {
		return err
	}
	if err := tx.Bucket(q.due).Put(dueKey(m), dueValue(m)); err != nil {
		return err
	}
	if m.Key == "" || m.Seq == 0 {
		return nil
	}
	return tx.Bucket(q.order).Put(orderIndexKey(m.Key, m.Seq), id)
}

// deleteIndexes removes a message's index entries.
func (q *Queue) deleteIndexes(tx *bolt.Tx, m link.Message) error {
	if err := tx.Bucket(q.due).Delete(dueKey(m)); err != nil {
		return err
	}
	if m.Key == "" || m.Seq == 0 {
		return nil
	}
	return tx.Bucket(q.order).Delete(orderIndexKey(m.Key, m.Seq))
}

// dueKey is a message's entry in the due index: its next attempt, then its
// sequence, so that one instant's messages keep the order they were queued
// in. A message queued before sequences existed keeps its old entry.
func dueKey(m link.Message) []byte {
	if m.Seq == 0 {
		return expiryKey(m.Next, []byte(m.ID))
	}
	return binary.BigEndian.AppendUint64(expiryKey(m.Next, nil), m.Seq)
}

// dueValue is what a message's due-index entry holds: its order-index key
// (key length, key, sequence), then its id, so that a scan can tell
// whether it waits behind an earlier message without reading it. A message
// queued before sequences existed has none.
func dueValue(m link.Message) []byte {
	if m.Seq == 0 {
		return nil
	}
	return append(orderIndexKey(m.Key, m.Seq), m.ID...)
}

// dueEntry is a due-index entry read back.
type dueEntry struct {
	key []byte // ordering key; empty: none. Valid for the transaction only
	seq uint64 // zero: queued before sequences existed
	id  []byte
}

// parseDue reads a due-index entry.
func parseDue(k, v []byte) (dueEntry, bool) {
	if len(v) == 0 {
		return dueEntry{id: k[8:]}, true // queued before sequences existed
	}
	if len(v) < 2 {
		return dueEntry{}, false
	}
	n := int(binary.BigEndian.Uint16(v))
	if len(v) < 2+n+8 {
		return dueEntry{}, false
	}
	return dueEntry{key: v[2 : 2+n], seq: binary.BigEndian.Uint64(v[2+n:]), id: v[2+n+8:]}, true
}

// orderPrefix starts the order-index entries of a key.
func orderPrefix(key string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(len(key)))
	return append(p, key...)
}

// orderIndexKey is a message's entry in the order index.
func orderIndexKey(key string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(orderPrefix(key), seq)
}

// headOfKey returns the sequence of the earliest queued message of key
// still in the queue, or 0 when there is none. An index entry whose message
// is gone counts for nothing.
func headOfKey(box, order *bolt.Bucket, key string) uint64 {
	prefix := orderPrefix(key)
	c := order.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if box.Get(v) != nil {
			return binary.BigEndian.Uint64(k[len(prefix):])
		}
	}
	return 0
}

// eachReady calls fn, in (due time, sequence) order, for every message due
// by end (an expiryKey; nil: any time) that is the earliest queued of its
// key, until fn returns false. The others of a key are passed over unread,
// and so are those skip (when not nil) reports by id.
func (q *Queue) eachReady(tx *bolt.Tx, end []byte, skip func(id []byte) bool, fn func(link.Message) bool) error {
	// Each bucket opened once: a read transaction opens it anew (and may
	// copy it) at every tx.Bucket.
	box, order := tx.Bucket(q.box), tx.Bucket(q.order)
	heads := make(map[string]uint64) // key → sequence of its earliest message
	c := tx.Bucket(q.due).Cursor()
	for k, v := c.First(); k != nil && (end == nil || bytes.Compare(k[:8], end) <= 0); k, v = c.Next() {
		e, ok := parseDue(k, v)
		if !ok || skip != nil && skip(e.id) {
			continue
		}
		if len(e.key) > 0 && e.seq != 0 {
			head, known := heads[string(e.key)] // looked up without a copy
			if !known {
				head = headOfKey(box, order, string(e.key))
				heads[string(e.key)] = head
			}
			if head != 0 && head < e.seq {
				continue // waits behind an earlier message of its key
			}
		}
		data := box.Get(e.id)
		if data == nil {
			continue
		}
		var m link.Message
		if err := decodeMessage(data, &m); err != nil {
			return err
		}
		if !fn(m) {
			return nil
		}
	}
	return nil
}

// Enqueue adds events to the outbox on their own (events that no hop
// produced, such as those from Mono's webhooks).
func (db *DB) Enqueue(_ context.Context, events ...link.Event) error {
	msgs, err := kit.EventMessages(events)
	if err != nil {
		return err
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return putMessages(tx, msgs) }); err != nil {
		return fmt.Errorf("enqueue events: %w", err)
	}
	return nil
}

// Due returns up to max messages whose next attempt is not after now, in
// (due time, sequence) order, and of each ordering key only the earliest
// queued message, and only once it is due: the others of its key wait.
func (q *Queue) Due(ctx context.Context, now time.Time, max int) ([]link.Message, error) {
	return q.DueExcept(ctx, now, max, nil)
}

// DueExcept is Due without the messages skip (when not nil) reports, by
// id, as held already (a worker's in flight): they are neither read nor
// counted in max, so a busy worker does not decode its own messages again
// at every poll. skip must not keep the id it is given.
func (q *Queue) DueExcept(_ context.Context, now time.Time, max int, skip func(id []byte) bool) ([]link.Message, error) {
	var out []link.Message
	if max <= 0 {
		return nil, nil
	}
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		return q.eachReady(tx, expiryKey(now, nil), skip, func(m link.Message) bool {
			out = append(out, m)
			return len(out) < max
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// NextDue returns when the earliest message Due would hand out is due (a
// message waiting behind an earlier one of its key is not counted), or
// false when there is none.
func (q *Queue) NextDue(_ context.Context) (time.Time, bool, error) {
	var at time.Time
	var ok bool
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		return q.eachReady(tx, nil, nil, func(m link.Message) bool {
			at, ok = m.Next, true
			return false
		})
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read outbox: %w", err)
	}
	return at, ok, nil
}

// depthScan bounds how many of the first due messages Depth reads for the
// oldest: the message queued first is due among the first, unless it was
// retried past many newer ones.
const depthScan = 256

// Depth reports how many messages the queue holds and when the oldest of
// the first due of them was queued (zero when empty), for metrics.
func (q *Queue) Depth(_ context.Context) (messages int, oldest time.Time, err error) {
	err = q.db.bolt.View(func(tx *bolt.Tx) error {
		box := tx.Bucket(q.box)
		messages = box.Stats().KeyN
		c := tx.Bucket(q.due).Cursor()
		n := 0
		for k, v := c.First(); k != nil && n < depthScan; k, v = c.Next() {
			n++
			id := v
			if id == nil && len(k) > 8 { // a message queued before the sequence existed
				id = k[8:]
			}
			var m link.Message
			if raw := box.Get(id); raw != nil && decodeMessage(raw, &m) == nil && (oldest.IsZero() || m.Created.Before(oldest)) {
				oldest = m.Created
			}
		}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read outbox depth: %w", err)
	}
	return messages, oldest, nil
}

// Delivered removes a message the partner acknowledged.
func (q *Queue) Delivered(_ context.Context, id string) error {
	return q.moveMessage(id, nil)
}

// Reschedule records a failed attempt and when to try again.
func (q *Queue) Reschedule(_ context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return q.moveMessage(id, func(tx *bolt.Tx, m *link.Message) error {
		m.Attempts, m.Next, m.LastErr = attempts, next, lastErr
		return q.putMessage(tx, *m)
	})
}

// GiveUp moves a message that could not be delivered in time to the dead
// letters, where an operator can still find it.
func (q *Queue) GiveUp(_ context.Context, id string, lastErr string) error {
	return q.moveMessage(id, func(tx *bolt.Tx, m *link.Message) error {
		m.LastErr = lastErr
		data, err := encodeMessage(m)
		if err != nil {
			return err
		}
		return tx.Bucket(q.dead).Put([]byte(m.ID), data)
	})
}

// moveMessage takes a message out of the outbox and its indexes, then
// hands it to then (which may put it back); a message already gone is no
// error.
func (q *Queue) moveMessage(id string, then func(*bolt.Tx, *link.Message) error) error {
	// Batched: deliveries finishing together share one disk sync. The
	// closure only reads and writes the transaction, so running it again,
	// as the group commit may, is harmless.
	err := q.db.writes.do(func(tx *bolt.Tx) error {
		box := tx.Bucket(q.box)
		v := box.Get([]byte(id))
		if v == nil {
			return nil
		}
		var m link.Message
		if err := decodeMessage(v, &m); err != nil {
			return err
		}
		if err := q.deleteIndexes(tx, m); err != nil {
			return err
		}
		if err := box.Delete([]byte(id)); err != nil {
			return err
		}
		if then == nil {
			return nil
		}
		return then(tx, &m)
	})
	if err != nil {
		return fmt.Errorf("outbox message %s: %w", id, err)
	}
	return nil
}

// DeadLetters returns the messages given up on.
func (q *Queue) DeadLetters(_ context.Context) ([]link.Message, error) {
	var out []link.Message
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(q.dead).ForEach(func(_, v []byte) error {
			var m link.Message
			if err := decodeMessage(v, &m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// EnqueueTexts adds text messages to their queue on their own (texts that
// no hop produced: invitations, reauthorisation nudges, replies).
func (db *DB) EnqueueTexts(_ context.Context, texts ...link.Text) error {
	msgs, err := kit.TextMessages(texts)
	if err != nil {
		return err
	}
	q := db.Texts()
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return q.put(tx, msgs) }); err != nil {
		return fmt.Errorf("enqueue texts: %w", err)
	}
	return nil
}
