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

// Indexes that let the sweeper find what has outlived its retention by
// seeking from their oldest entry, never by scanning what they index.
var (
	bucketIdempotencyAge = []byte("idempotency_age")    // created (8 bytes BE) + idempotency key → nil
	bucketSMSConvExpiry  = []byte("sms_session_expiry") // expiry (8 bytes BE) + phone key → nil
	bucketInviteAge      = []byte("invite_age")         // class (1 byte) + end of use (8 bytes BE) + invite id → nil
)

// Classes of invitation in the invite_age index: each is swept with its
// own retention.
const (
	classHandover = 'h' // hnd_…: made by the SMS hand-over, useless once expired
	classPartner  = 'p' // lnk_…, rea_…: the partner reads them back for a while
)

// retentionIndexes are the indexes above, each with the bucket it indexes
// and how one record of it is indexed, so that a file written before an
// index existed has it built when opened.
var retentionIndexes = []struct {
	index, source []byte
	key           func(k, v []byte) []byte // nil: the record is not indexed
}{
	{bucketIdempotencyAge, bucketIdempotency, func(k, v []byte) []byte {
		var a link.Answer
		if json.Unmarshal(v, &a) != nil {
			return expiryKey(time.Time{}, k) // unreadable: swept at once
		}
		return expiryKey(a.Created, k)
	}},
	{bucketSMSConvExpiry, bucketSMSConv, func(k, v []byte) []byte {
		var c link.Conversation
		if json.Unmarshal(v, &c) != nil {
			return expiryKey(time.Time{}, k)
		}
		return expiryKey(c.Expires, k)
	}},
	{bucketInviteAge, bucketInvites, func(k, v []byte) []byte {
		inv := new(link.Invite)
		if json.Unmarshal(v, inv) != nil {
			return nil
		}
		return inviteAgeKey(inv)
	}},
}

// createRetentionIndexes creates the retention indexes, building each one
// that did not exist yet from the records it indexes.
func createRetentionIndexes(tx *bolt.Tx) error {
	for _, ix := range retentionIndexes {
		if tx.Bucket(ix.index) != nil {
			continue
		}
		index, err := tx.CreateBucket(ix.index)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", ix.index, err)
		}
		err = tx.Bucket(ix.source).ForEach(func(k, v []byte) error {
			if key := ix.key(k, v); key != nil {
				return index.Put(key, nil)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("build index %s: %w", ix.index, err)
		}
	}
	return nil
}

// dueUnder is due for an index whose keys start with a prefix, then a
// big-endian time: it walks the entries under prefix from the oldest.
func dueUnder(index *bolt.Bucket, prefix []byte, before time.Time, max int, fn func(k []byte) error) (int, error) {
	n := 0
	limit := append(bytes.Clone(prefix), expiryKey(before, nil)...)
	c := index.Cursor()
	for k, _ := c.Seek(prefix); k != nil && n < max && len(k) >= len(limit) && bytes.HasPrefix(k, prefix) &&
		bytes.Compare(k[:len(limit)], limit) < 0; k, _ = c.Seek(prefix) {
		if err := fn(k); err != nil {
			return n, err
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// putAnswer stores an API answer under an idempotency key, moving its age
// index entry.
func putAnswer(tx *bolt.Tx, key string, a link.Answer) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	answers, age := tx.Bucket(bucketIdempotency), tx.Bucket(bucketIdempotencyAge)
	k := []byte(key)
	if old := answers.Get(k); old != nil {
		var prev link.Answer
		if json.Unmarshal(old, &prev) == nil {
			if err := age.Delete(expiryKey(prev.Created, k)); err != nil {
				return err
			}
		}
	}
	if err := answers.Put(k, data); err != nil {
		return err
	}
	return age.Put(expiryKey(a.Created, k), nil)
}

// SweepAnswers forgets idempotency answers stored before a time (the
// partner API's idempotency-ttl ago), at most max of them, walking their
// age index. It returns how many it forgot.
func (db *DB) SweepAnswers(_ context.Context, before time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		answers := tx.Bucket(bucketIdempotency)
		var err error
		n, err = due(tx.Bucket(bucketIdempotencyAge), before, max, func(k []byte) error {
			return answers.Delete(k[8:])
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep idempotency answers: %w", err)
	}
	return n, nil
}

// indexConversation moves the expiry index entry of a phone's text
// conversation from what is stored (old, possibly nil) to c (nil: the
// conversation ends).
func indexConversation(tx *bolt.Tx, phone, old []byte, c *link.Conversation) error {
	expiry := tx.Bucket(bucketSMSConvExpiry)
	if old != nil {
		var prev link.Conversation
		if json.Unmarshal(old, &prev) == nil {
			if err := expiry.Delete(expiryKey(prev.Expires, phone)); err != nil {
				return err
			}
		}
	}
	if c == nil {
		return nil
	}
	return expiry.Put(expiryKey(c.Expires, phone), nil)
}

// SweepConversations deletes the text conversations that expired before
// now (abandoned: the texter never wrote again), at most max of them,
// walking their expiry index. It returns how many it deleted.
func (db *DB) SweepConversations(_ context.Context, now time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		convs := tx.Bucket(bucketSMSConv)
		var err error
		n, err = due(tx.Bucket(bucketSMSConvExpiry), now, max, func(k []byte) error {
			phone := k[8:]
			v := convs.Get(phone)
			if v == nil {
				return nil
			}
			var c link.Conversation
			if json.Unmarshal(v, &c) == nil && !bytes.Equal(expiryKey(c.Expires, phone), k) {
				return nil // a stale entry: the conversation went on, under its own entry
			}
			return convs.Delete(phone)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep text conversations: %w", err)
	}
	return n, nil
}

// inviteClass is the retention class of an invitation.
func inviteClass(inv *link.Invite) byte {
	if inv.Handover() {
		return classHandover
	}
	return classPartner
}

// inviteAgeKey is an invitation's entry in the invite_age index: its class,
// then the end of its use (its expiry, or its last change when later),
// then its id.
func inviteAgeKey(inv *link.Invite) []byte {
	end := inv.Expires
	if inv.Updated.After(end) {
		end = inv.Updated
	}
	return append([]byte{inviteClass(inv)}, expiryKey(end, []byte(inv.ID))...)
}

// indexInviteAge moves an invitation's invite_age entry from the stored
// version (if any) to inv. It runs before inv is written.
func indexInviteAge(tx *bolt.Tx, inv *link.Invite) error {
	age := tx.Bucket(bucketInviteAge)
	if held := getInvite(tx.Bucket(bucketInvites), []byte(inv.ID)); held != nil {
		if err := age.Delete(inviteAgeKey(held)); err != nil {
			return err
		}
	}
	return age.Put(inviteAgeKey(inv), nil)
}

// SweepInvites deletes invitations past their retention, with every index
// entry that names them: hand-over invitations whose use ended (they
// expired) before handoversBefore, and the partner's whose use ended before
// partnersBefore (now less the invite retention: the partner can still read
// them back until then). At most max of each class; it returns how many it
// deleted.
func (db *DB) SweepInvites(_ context.Context, handoversBefore, partnersBefore time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		age := tx.Bucket(bucketInviteAge)
		for class, before := range map[byte]time.Time{classHandover: handoversBefore, classPartner: partnersBefore} {
			swept, err := dueUnder(age, []byte{class}, before, max, func(k []byte) error {
				return deleteInvite(tx, k[9:])
			})
			n += swept
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep invitations: %w", err)
	}
	return n, nil
}

// deleteInvite deletes an invitation and the entries of invite_codes,
// invite_phone, invite_ref and reauth_of that name it (its invite_age
// entry is the caller's).
func deleteInvite(tx *bolt.Tx, id []byte) error {
	invites := tx.Bucket(bucketInvites)
	inv := getInvite(invites, id)
	if inv == nil {
		return invites.Delete(id)
	}
	for _, ix := range []struct {
		bucket, key []byte
		always      bool // the key holds the id: no need to check what it names
	}{
		{bucketInviteCodes, []byte(inv.Code), false},
		{bucketReauthOf, []byte(inv.AccountID), false},
		{bucketInvitePhone, invitePhoneKey(inv), true},
		{bucketInviteRef, []byte(inv.Reference + "\x00" + inv.ID), true},
	} {
		b := tx.Bucket(ix.bucket)
		if len(ix.key) == 0 || (!ix.always && !bytes.Equal(b.Get(ix.key), id)) {
			continue
		}
		if err := b.Delete(ix.key); err != nil {
			return err
		}
	}
	return invites.Delete(id)
}

// invitePhoneKey is an invitation's entry in invite_phone: the phone key,
// 0, its creation time (8 bytes BE), its id.
func invitePhoneKey(inv *link.Invite) []byte {
	pk := append([]byte(link.PhoneKey(inv.Phone)), 0)
	pk = binary.BigEndian.AppendUint64(pk, uint64(inv.Created.UnixNano()))
	return append(pk, inv.ID...)
}

// SweepDeadLetters deletes the messages given up on that were created
// before a time, at most max of them. Dead letters are few (each is a
// message its recipient refused for the whole retry window), so they are
// scanned rather than indexed.
func (q *Queue) SweepDeadLetters(_ context.Context, before time.Time, max int) (int, error) {
	n := 0
	err := q.db.bolt.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(q.dead).Cursor()
		for k, v := c.First(); k != nil && n < max; {
			var m link.Message
			if decodeMessage(v, &m) == nil && !m.Created.Before(before) {
				k, v = c.Next()
				continue
			}
			gone := bytes.Clone(k)
			if err := c.Delete(); err != nil {
				return err
			}
			n++
			k, v = c.Seek(gone) // the key after the deleted one
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep dead letters: %w", err)
	}
	return n, nil
}

// BucketSizes counts the keys of every bucket in the file, by name: what
// an operator watches to see that storage stays bounded. The meta bucket
// (the schema version: a key or two that never grow) is left out, so that
// every bucket listed empties once what it holds has passed its retention,
// but two that are listed so that their growth shows: the funnel's, whose
// daily counters outlive their sessions and have no retention yet, and
// phone_language, each phone's chosen language, kept until changed.
func (db *DB) BucketSizes(_ context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if bytes.Equal(name, bucketMeta) {
				return nil
			}
			out[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("count bucket keys: %w", err)
	}
	return out, nil
}
