package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
	bolt "go.etcd.io/bbolt"
)

// Text-message buckets.
var (
	bucketOptOut    = []byte("sms_optout")   // phone key → time of the STOP
	bucketSMSConv   = []byte("sms_sessions") // phone key → link.Conversation
	bucketSMSSeen   = []byte("sms_seen")     // provider + ":" + message id → time
	bucketSMSSeenAt = []byte("sms_seen_age") // time (8 bytes BE) + seen key → nil
)

// OptOut records that a phone texted STOP (out true) or START (out false).
func (db *DB) OptOut(_ context.Context, phone string, out bool, at time.Time) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b, k := tx.Bucket(bucketOptOut), []byte(link.PhoneKey(phone))
		if !out {
			return b.Delete(k)
		}
		return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())))
	})
}

// OptedOut reports whether a phone asked for no more messages.
func (db *DB) OptedOut(_ context.Context, phone string) (bool, error) {
	var out bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		out = tx.Bucket(bucketOptOut).Get([]byte(link.PhoneKey(phone))) != nil
		return nil
	})
	return out, err
}

// Conversation returns a phone's current text conversation, or false.
func (db *DB) Conversation(_ context.Context, phone string) (link.Conversation, bool, error) {
	var c link.Conversation
	var ok bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSMSConv).Get([]byte(link.PhoneKey(phone)))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &c)
	})
	return c, ok, err
}

// SetConversation records (or, with an empty session, ends) a phone's
// text conversation, indexed by its expiry so that SweepConversations
// finds it once abandoned.
func (db *DB) SetConversation(_ context.Context, phone string, c link.Conversation) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b, k := tx.Bucket(bucketSMSConv), []byte(link.PhoneKey(phone))
		if c.Session == "" {
			if err := indexConversation(tx, k, b.Get(k), nil); err != nil {
				return err
			}
			return b.Delete(k)
		}
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if err := indexConversation(tx, k, b.Get(k), &c); err != nil {
			return err
		}
		return b.Put(k, data)
	})
}

// FirstDelivery records an inbound message id and reports whether this is
// the first time it arrives (providers retry until they get a 200).
func (db *DB) FirstDelivery(_ context.Context, provider, id string, at time.Time) (bool, error) {
	first := false
	key := []byte(provider + ":" + id)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSMSSeen)
		if seen.Get(key) != nil {
			return nil
		}
		first = true
		if err := seen.Put(key, binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))); err != nil {
			return err
		}
		return tx.Bucket(bucketSMSSeenAt).Put(expiryKey(at, key), nil)
	})
	if err != nil {
		return false, fmt.Errorf("record inbound message: %w", err)
	}
	return first, nil
}

// ForgetDelivery forgets an inbound message id, so that the provider's
// retry of a message whose processing failed is taken again.
func (db *DB) ForgetDelivery(_ context.Context, provider, id string) error {
	key := []byte(provider + ":" + id)
	return db.bolt.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSMSSeen)
		if v := seen.Get(key); len(v) == 8 {
			// Its age entry goes too: left behind, it would sweep the id
			// when taken again, before its time.
			if err := tx.Bucket(bucketSMSSeenAt).Delete(append(bytes.Clone(v), key...)); err != nil {
				return err
			}
		}
		return seen.Delete(key)
	})
}

// SweepInbound forgets inbound message ids seen before a time.
func (db *DB) SweepInbound(_ context.Context, before time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSMSSeen)
		var err error
		n, err = due(tx.Bucket(bucketSMSSeenAt), before, max, func(k []byte) error { return seen.Delete(k[8:]) })
		return err
	})
	return n, err
}
