package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/menus"
)

// Queue is one durable outbox: messages, their due-time index, and the
// messages given up on (kept for inspection). Partner webhooks and text
// messages each have one.
type Queue struct {
	db             *DB
	box, due, dead []byte
}

// Outbox buckets: partner webhooks (the DB's own methods) and texts.
var (
	bucketOutbox    = []byte("outbox")      // message id → Message
	bucketOutboxDue = []byte("outbox_due")  // next attempt (8 bytes BE) + id → nil
	bucketDead      = []byte("outbox_dead") // message id → Message
	bucketSMS       = []byte("sms_outbox")
	bucketSMSDue    = []byte("sms_outbox_due")
	bucketSMSDead   = []byte("sms_outbox_dead")
)

// Webhooks is the queue of partner webhooks.
func (db *DB) Webhooks() *Queue {
	return &Queue{db: db, box: bucketOutbox, due: bucketOutboxDue, dead: bucketDead}
}

// Texts is the queue of text messages.
func (db *DB) Texts() *Queue {
	return &Queue{db: db, box: bucketSMS, due: bucketSMSDue, dead: bucketSMSDead}
}

// Message is a partner webhook waiting in the outbox: its body is fixed
// when it is enqueued, so every retry sends the same bytes under the same id.
type Message struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Body     []byte    `json:"body"` // {"type","timestamp","data"}
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next"`
	LastErr  string    `json:"last_error,omitempty"`
}

// encodeEvents turns events into outbox messages, due at once.
func encodeEvents(events []menus.Event) ([]Message, error) {
	out := make([]Message, 0, len(events))
	for _, e := range events {
		body, err := json.Marshal(struct {
			Type      string         `json:"type"`
			Timestamp time.Time      `json:"timestamp"`
			Data      map[string]any `json:"data"`
		}{e.Type, e.Timestamp.UTC(), e.Data})
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
		}
		out = append(out, Message{ID: e.ID, Type: e.Type, Body: body, Created: e.Timestamp, Next: e.Timestamp})
	}
	return out, nil
}

// putMessages adds messages to the partner webhook queue.
func putMessages(tx *bolt.Tx, msgs []Message) error {
	return (&Queue{box: bucketOutbox, due: bucketOutboxDue}).put(tx, msgs)
}

// put adds messages to the queue.
func (q *Queue) put(tx *bolt.Tx, msgs []Message) error {
	for _, m := range msgs {
		if err := q.putMessage(tx, m); err != nil {
			return err
		}
	}
	return nil
}

// putMessage writes a message and its due-index entry.
func (q *Queue) putMessage(tx *bolt.Tx, m Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := tx.Bucket(q.box).Put([]byte(m.ID), data); err != nil {
		return err
	}
	return tx.Bucket(q.due).Put(expiryKey(m.Next, []byte(m.ID)), nil)
}

// Enqueue adds events to the outbox on their own (events that no hop
// produced, such as those from Mono's webhooks).
func (db *DB) Enqueue(_ context.Context, events ...menus.Event) error {
	msgs, err := encodeEvents(events)
	if err != nil {
		return err
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return putMessages(tx, msgs) }); err != nil {
		return fmt.Errorf("enqueue events: %w", err)
	}
	return nil
}

// Due returns up to max messages whose next attempt is not after now,
// oldest first, through the due index.
func (q *Queue) Due(_ context.Context, now time.Time, max int) ([]Message, error) {
	var out []Message
	limit := expiryKey(now, nil)
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		box := tx.Bucket(q.box)
		c := tx.Bucket(q.due).Cursor()
		for k, _ := c.First(); k != nil && len(out) < max && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
			v := box.Get(k[8:])
			if v == nil {
				continue
			}
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// NextDue returns when the earliest message is due, or false when the
// outbox is empty.
func (q *Queue) NextDue(_ context.Context) (time.Time, bool, error) {
	var at time.Time
	var ok bool
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(q.due).Cursor().First()
		if k != nil {
			at, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))), true
		}
		return nil
	})
	return at, ok, err
}

// Delivered removes a message the partner acknowledged.
func (q *Queue) Delivered(_ context.Context, id string) error {
	return q.moveMessage(id, nil)
}

// Reschedule records a failed attempt and when to try again.
func (q *Queue) Reschedule(_ context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return q.moveMessage(id, func(tx *bolt.Tx, m *Message) error {
		m.Attempts, m.Next, m.LastErr = attempts, next, lastErr
		return q.putMessage(tx, *m)
	})
}

// GiveUp moves a message that could not be delivered in time to the dead
// letters, where an operator can still find it.
func (q *Queue) GiveUp(_ context.Context, id string, lastErr string) error {
	return q.moveMessage(id, func(tx *bolt.Tx, m *Message) error {
		m.LastErr = lastErr
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return tx.Bucket(q.dead).Put([]byte(m.ID), data)
	})
}

// moveMessage takes a message out of the outbox and its index, then hands
// it to then (which may put it back); a message already gone is no error.
func (q *Queue) moveMessage(id string, then func(*bolt.Tx, *Message) error) error {
	err := q.db.bolt.Update(func(tx *bolt.Tx) error {
		box := tx.Bucket(q.box)
		v := box.Get([]byte(id))
		if v == nil {
			return nil
		}
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		if err := tx.Bucket(q.due).Delete(expiryKey(m.Next, []byte(id))); err != nil {
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
func (q *Queue) DeadLetters(_ context.Context) ([]Message, error) {
	var out []Message
	err := q.db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(q.dead).ForEach(func(_, v []byte) error {
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// Due is Webhooks().Due.
func (db *DB) Due(ctx context.Context, now time.Time, max int) ([]Message, error) {
	return db.Webhooks().Due(ctx, now, max)
}

// NextDue is Webhooks().NextDue.
func (db *DB) NextDue(ctx context.Context) (time.Time, bool, error) {
	return db.Webhooks().NextDue(ctx)
}

// Delivered is Webhooks().Delivered.
func (db *DB) Delivered(ctx context.Context, id string) error {
	return db.Webhooks().Delivered(ctx, id)
}

// Reschedule is Webhooks().Reschedule.
func (db *DB) Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return db.Webhooks().Reschedule(ctx, id, attempts, next, lastErr)
}

// GiveUp is Webhooks().GiveUp.
func (db *DB) GiveUp(ctx context.Context, id string, lastErr string) error {
	return db.Webhooks().GiveUp(ctx, id, lastErr)
}

// DeadLetters is Webhooks().DeadLetters.
func (db *DB) DeadLetters(ctx context.Context) ([]Message, error) {
	return db.Webhooks().DeadLetters(ctx)
}

// EnqueueTexts adds text messages to their queue on their own (texts that
// no hop produced: invitations, reauthorisation nudges, replies).
func (db *DB) EnqueueTexts(_ context.Context, texts ...menus.Text) error {
	msgs, err := encodeTexts(texts)
	if err != nil {
		return err
	}
	q := db.Texts()
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return q.put(tx, msgs) }); err != nil {
		return fmt.Errorf("enqueue texts: %w", err)
	}
	return nil
}

// encodeTexts turns text intents into queue messages, due at once.
func encodeTexts(texts []menus.Text) ([]Message, error) {
	out := make([]Message, 0, len(texts))
	for _, t := range texts {
		body, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encode text %s: %w", t.Kind, err)
		}
		out = append(out, Message{ID: t.ID, Type: t.Kind, Body: body, Created: t.Created, Next: t.Created})
	}
	return out, nil
}
