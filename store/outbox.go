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

// Outbox buckets: messages for the partner, due-time index, and messages
// given up on (kept for inspection).
var (
	bucketOutbox    = []byte("outbox")      // message id → Message
	bucketOutboxDue = []byte("outbox_due")  // next attempt (8 bytes BE) + id → nil
	bucketDead      = []byte("outbox_dead") // message id → Message
)

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

// putMessages adds messages to the outbox.
func putMessages(tx *bolt.Tx, msgs []Message) error {
	for _, m := range msgs {
		if err := putMessage(tx, m); err != nil {
			return err
		}
	}
	return nil
}

// putMessage writes a message and its due-index entry.
func putMessage(tx *bolt.Tx, m Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketOutbox).Put([]byte(m.ID), data); err != nil {
		return err
	}
	return tx.Bucket(bucketOutboxDue).Put(expiryKey(m.Next, []byte(m.ID)), nil)
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
func (db *DB) Due(_ context.Context, now time.Time, max int) ([]Message, error) {
	var out []Message
	limit := expiryKey(now, nil)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketOutbox)
		c := tx.Bucket(bucketOutboxDue).Cursor()
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
func (db *DB) NextDue(_ context.Context) (time.Time, bool, error) {
	var at time.Time
	var ok bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketOutboxDue).Cursor().First()
		if k != nil {
			at, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))), true
		}
		return nil
	})
	return at, ok, err
}

// Delivered removes a message the partner acknowledged.
func (db *DB) Delivered(_ context.Context, id string) error {
	return db.moveMessage(id, nil)
}

// Reschedule records a failed attempt and when to try again.
func (db *DB) Reschedule(_ context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return db.moveMessage(id, func(tx *bolt.Tx, m *Message) error {
		m.Attempts, m.Next, m.LastErr = attempts, next, lastErr
		return putMessage(tx, *m)
	})
}

// GiveUp moves a message that could not be delivered in time to the dead
// letters, where an operator can still find it.
func (db *DB) GiveUp(_ context.Context, id string, lastErr string) error {
	return db.moveMessage(id, func(tx *bolt.Tx, m *Message) error {
		m.LastErr = lastErr
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketDead).Put([]byte(m.ID), data)
	})
}

// moveMessage takes a message out of the outbox and its index, then hands
// it to then (which may put it back); a message already gone is no error.
func (db *DB) moveMessage(id string, then func(*bolt.Tx, *Message) error) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketOutbox)
		v := box.Get([]byte(id))
		if v == nil {
			return nil
		}
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutboxDue).Delete(expiryKey(m.Next, []byte(id))); err != nil {
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
func (db *DB) DeadLetters(_ context.Context) ([]Message, error) {
	var out []Message
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(_, v []byte) error {
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
