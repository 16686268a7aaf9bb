// Package store keeps the gateway's state in one bbolt file: sessions with
// their expiry index, and linked accounts. What users type is sealed before
// it is written; nothing typed is ever stored in plain text.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/menus"
)

// Bucket names. Every bucket is created when the file is opened.
var (
	bucketSessions   = []byte("sessions")    // session id → record
	bucketExpiry     = []byte("expiry")      // purge time (8 bytes BE unix ns) + session id → nil
	bucketLinks      = []byte("links")       // Mono account id → link
	bucketPhoneLinks = []byte("phone_links") // phone + 0 + account id → nil
	bucketPhones     = []byte("phones")      // phone → id of its latest session
	bucketSealed     = []byte("sealed")      // lapse time (8 bytes BE) + session id → nil: sealed answers to erase
	bucketFailures   = []byte("failures")    // phone + 0 + time (8 bytes BE unix ns) → nil
	bucketFailureAge = []byte("failure_age") // time (8 bytes BE) + phone → nil, for sweeping
)

// DB is the gateway's bbolt file.
type DB struct {
	bolt   *bolt.DB
	sealer *Sealer
	// statusEvents announces a remembered account update that a new link
	// takes (WithStatusEvents); nil: none.
	statusEvents StatusEvents
}

var _ menus.Store = (*DB)(nil)

// Option tunes Open.
type Option func(*DB)

// WithBatchDelay sets how long a commit may wait for others to share its
// disk sync (bbolt's group commit). Each commit is still durable before it
// returns; the delay only trades a lone hop's latency for throughput under
// load. The default is bbolt's, 10ms.
func WithBatchDelay(d time.Duration) Option {
	return func(db *DB) { db.bolt.MaxBatchDelay = d }
}

// ErrInUse says another process holds the store's file (bbolt locks it for
// one process at a time): a second gateway on the same file fails at once
// with it rather than waiting.
var ErrInUse = errors.New("the store is in use by another process")

// lockWait is how long Open waits for the file's lock: long enough for a
// process that is just closing it, short enough to fail at once otherwise.
const lockWait = 100 * time.Millisecond

// Open opens (creating when needed) the database at path. Values typed by
// users are sealed with sealer. A file another process holds gives an error
// wrapping ErrInUse and naming the path.
func Open(path string, sealer *Sealer, opts ...Option) (*DB, error) {
	if sealer == nil {
		return nil, errors.New("open store: a sealer is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrInUse, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSessions, bucketExpiry, bucketLinks, bucketPhoneLinks, bucketPhones, bucketSealed, bucketFailures, bucketFailureAge,
			bucketOutbox, bucketOutboxDue, bucketOutboxOrder, bucketDead, bucketSMS, bucketSMSDue, bucketSMSOrder, bucketSMSDead,
			bucketInvites, bucketInviteCodes, bucketInvitePhone, bucketInviteRef, bucketReauthOf,
			bucketIdempotency, bucketMonoEvents, bucketMonoEventAge, bucketMonoUpdates, bucketMonoUpdateAge,
			bucketOptOut, bucketSMSConv, bucketSMSSeen, bucketSMSSeenAt} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return createRetentionIndexes(tx)
	})
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db := &DB{bolt: bdb, sealer: sealer}
	for _, o := range opts {
		o(db)
	}
	return db, nil
}

// Close closes the file.
func (db *DB) Close() error { return db.bolt.Close() }

// sessionRecord is a session as stored: the session, with the answers typed
// into its current form sealed.
type sessionRecord struct {
	*menus.Session
	Sealed []byte `json:"sealed,omitempty"`
}

// Session returns the stored session, or menus.ErrNoSession.
func (db *DB) Session(_ context.Context, id string) (*menus.Session, error) {
	var data []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSessions).Get([]byte(id)); v != nil {
			data = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	if data == nil {
		return nil, menus.ErrNoSession
	}
	return db.decodeSession(data)
}

// decodeSession parses a record and opens its sealed answers.
func (db *DB) decodeSession(data []byte) (*menus.Session, error) {
	rec := sessionRecord{Session: &menus.Session{}}
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	if len(rec.Sealed) > 0 {
		plain, err := db.sealer.Open(rec.Sealed, []byte(rec.ID))
		if err != nil {
			// Sealed under a key no longer held (lost, or rotated out of
			// previous-seal-keys): the session goes on without them, and
			// whatever needed them is asked again.
			rec.SecretsLost = true
			return rec.Session, nil
		}
		err = openValues(plain, rec.Session)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("session %s answers: %w", rec.ID, err)
		}
	}
	return rec.Session, nil
}

// sealedValues is what a session's sealed blob holds: the current form's
// answers and the login answers kept for a fresh login.
type sealedValues struct {
	Answers map[string]string `json:"answers,omitempty"`
	Login   map[string]string `json:"login,omitempty"`
}

// openValues reads a sealed blob into s. Blobs written before login
// answers were kept hold the form's answers alone.
func openValues(plain []byte, s *menus.Session) error {
	var v sealedValues
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if dec.Decode(&v) == nil {
		s.Answers, s.Login = v.Answers, v.Login
		return nil
	}
	return json.Unmarshal(plain, &s.Answers)
}

// encodeSession serialises a session with its answers sealed.
func (db *DB) encodeSession(s *menus.Session) ([]byte, error) {
	rec := sessionRecord{Session: s}
	if len(s.Answers) > 0 || len(s.Login) > 0 {
		plain, err := json.Marshal(sealedValues{Answers: s.Answers, Login: s.Login})
		if err != nil {
			return nil, fmt.Errorf("encode answers: %w", err)
		}
		rec.Sealed = db.sealer.Seal(plain, []byte(s.ID))
		clear(plain)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	return data, nil
}

// Commit writes a hop's session (and a session it retired), their expiry
// index entries and any new link in one transaction, synced to disk before
// it returns. Commits from concurrent hops share one disk sync (bbolt's
// Batch): the closure only puts what was encoded beforehand, and the link
// as the stored state decides, so running it again, as Batch may, changes
// nothing. A new link takes the data status of
// an account_updated Mono sent before it committed (see prepareLink), and
// the partner hears of it after the link's own events.
func (db *DB) Commit(_ context.Context, c menus.Change) error {
	var recs []sessionWrite
	for _, s := range []*menus.Session{c.Retired, c.Session} {
		if s == nil {
			continue
		}
		data, err := db.encodeSession(s)
		if err != nil {
			return err
		}
		w := sessionWrite{id: []byte(s.ID), phone: []byte(menus.PhoneKey(s.Phone)), data: data, purge: purgeTime(s)}
		if len(s.Answers) > 0 || len(s.Login) > 0 {
			w.lapse = s.SealedUntil
		}
		recs = append(recs, w)
	}
	msgs, err := encodeEvents(c.Events)
	if err != nil {
		return err
	}
	inviteMsgs, err := encodeEvents(c.InviteEvents)
	if err != nil {
		return err
	}
	texts, err := encodeTexts(c.Texts)
	if err != nil {
		return err
	}
	textQueue := db.Texts()
	err = db.bolt.Batch(func(tx *bolt.Tx) error {
		for _, w := range recs {
			if err := putSession(tx, w); err != nil {
				return err
			}
		}
		if err := putMessages(tx, msgs); err != nil {
			return err
		}
		if err := textQueue.put(tx, texts); err != nil {
			return err
		}
		if c.LoginFailure {
			if _, err := putFailure(tx, menus.PhoneKey(c.Session.Phone), c.Session.Updated); err != nil {
				return err
			}
		}
		for _, key := range c.Release {
			if err := deleteFailure(tx, key); err != nil {
				return err
			}
		}
		var lw linkWrite
		if c.Link != nil {
			// A status Mono sent before this commit is the new link's too.
			var err error
			if lw, err = db.prepareLink(tx, c.Link); err != nil {
				return err
			}
		}
		if c.Invite != nil {
			// The invitation moves on only from pending: if Mono's webhook
			// completed it first, neither it nor its events are written again.
			held := getInvite(tx.Bucket(bucketInvites), []byte(c.Invite.ID))
			if held == nil || held.Status == menus.StatusPending {
				if err := putInvite(tx, withLinkStatus(keepClaim(held, c.Invite), lw.link)); err != nil {
					return err
				}
				if err := putMessages(tx, inviteMsgs); err != nil {
					return err
				}
			}
		}
		if lw.link == nil {
			return nil
		}
		if err := putLink(tx, lw.link, lw.data); err != nil {
			return err
		}
		return putMessages(tx, after(lw.events, msgs, inviteMsgs)) // told after the link
	})
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	return nil
}

// sessionWrite is one encoded session ready to be put.
type sessionWrite struct {
	id, phone, data []byte
	purge           time.Time
	lapse           time.Time // when its sealed answers lapse; zero: none to erase
}

// purgeTime is when a session may be swept: its purge time, or its expiry
// for a session that has none.
func purgeTime(s *menus.Session) time.Time {
	if s.Purge.IsZero() {
		return s.Expires
	}
	return s.Purge
}

// putSession writes a session record, moves its expiry index entry and
// makes it its phone's latest session (the latest written wins).
func putSession(tx *bolt.Tx, w sessionWrite) error {
	sessions, expiry := tx.Bucket(bucketSessions), tx.Bucket(bucketExpiry)
	if old := sessions.Get(w.id); old != nil {
		var prev struct {
			Expires     time.Time `json:"expires"`
			Purge       time.Time `json:"purge"`
			SealedUntil time.Time `json:"sealed_until"`
		}
		if err := json.Unmarshal(old, &prev); err == nil {
			at := prev.Purge
			if at.IsZero() {
				at = prev.Expires
			}
			if err := expiry.Delete(expiryKey(at, w.id)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketSealed).Delete(expiryKey(prev.SealedUntil, w.id)); err != nil {
				return err
			}
		}
	}
	if err := sessions.Put(w.id, w.data); err != nil {
		return err
	}
	if err := expiry.Put(expiryKey(w.purge, w.id), nil); err != nil {
		return err
	}
	if !w.lapse.IsZero() {
		if err := tx.Bucket(bucketSealed).Put(expiryKey(w.lapse, w.id), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketPhones).Put(w.phone, w.id)
}

// Latest returns the most recently written session of a phone, or
// menus.ErrNoSession.
func (db *DB) Latest(ctx context.Context, phone string) (*menus.Session, error) {
	var id []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		id = bytes.Clone(tx.Bucket(bucketPhones).Get([]byte(menus.PhoneKey(phone))))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read phone index: %w", err)
	}
	if id == nil {
		return nil, menus.ErrNoSession
	}
	return db.Session(ctx, string(id))
}

// Sweep deletes sessions whose purge time is before now, at most max of
// them, walking the expiry index from its oldest entry: it never scans the
// sessions themselves. Sealed answers go with their session, and those
// that lapsed before now are erased from sessions that stay. It returns how
// many sessions it deleted.
func (db *DB) Sweep(_ context.Context, now time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := scrubLapsed(tx, now, max); err != nil {
			return err
		}
		sessions, phones := tx.Bucket(bucketSessions), tx.Bucket(bucketPhones)
		var err error
		n, err = due(tx.Bucket(bucketExpiry), now, max, func(k []byte) error {
			id := k[8:]
			rec := sessions.Get(id)
			if rec == nil {
				return nil
			}
			var s struct {
				Phone string `json:"phone"`
			}
			if json.Unmarshal(rec, &s) == nil && bytes.Equal(phones.Get([]byte(menus.PhoneKey(s.Phone))), id) {
				if err := phones.Delete([]byte(menus.PhoneKey(s.Phone))); err != nil {
					return err
				}
			}
			return sessions.Delete(id)
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep sessions: %w", err)
	}
	return n, nil
}

// putFailure records a refused login of a phone at a time and returns its
// key. A sequence number keeps two failures at the same instant apart.
func putFailure(tx *bolt.Tx, phone string, at time.Time) ([]byte, error) {
	failures := tx.Bucket(bucketFailures)
	seq, err := failures.NextSequence()
	if err != nil {
		return nil, err
	}
	key := failureKey(phone, at, seq)
	if err := failures.Put(key, nil); err != nil {
		return nil, err
	}
	age := binary.BigEndian.AppendUint64(expiryKey(at, nil), seq)
	return key, tx.Bucket(bucketFailureAge).Put(append(age, phone...), nil)
}

// deleteFailure removes a failure record (a released reservation), given
// the hex key ReserveAttempt returned; an unknown or malformed key is
// ignored, since the record may have been swept already.
func deleteFailure(tx *bolt.Tx, hexKey string) error {
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) < 17 || key[len(key)-17] != 0 {
		return nil
	}
	phone := key[:len(key)-17]
	at, seq := key[len(key)-16:len(key)-8], key[len(key)-8:]
	age := append(append(append([]byte(nil), at...), seq...), phone...)
	if err := tx.Bucket(bucketFailureAge).Delete(age); err != nil {
		return err
	}
	return tx.Bucket(bucketFailures).Delete(key)
}

// ReserveAttempt reserves one guess at a secret for a phone, atomically: in
// one write transaction it counts the phone's refused and reserved
// attempts since a time and, below max, records one more at at. The key
// releases it (menus.Change.Release) when the bank did not refuse it.
func (db *DB) ReserveAttempt(_ context.Context, phone string, since, at time.Time, max int) (string, bool, error) {
	var key []byte
	// Batched with concurrent commits (one disk sync for them all): the
	// closure may run again, and then decides again from what is stored.
	err := db.bolt.Batch(func(tx *bolt.Tx) error {
		key = nil
		p := menus.PhoneKey(phone)
		if countFailures(tx, p, since) >= max {
			return nil
		}
		var err error
		key, err = putFailure(tx, p, at)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("reserve login attempt: %w", err)
	}
	return hex.EncodeToString(key), key != nil, nil
}

// LoginFailures counts the refused logins of a phone since a time.
func (db *DB) LoginFailures(_ context.Context, phone string, since time.Time) (int, error) {
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		n = countFailures(tx, menus.PhoneKey(phone), since)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count login failures: %w", err)
	}
	return n, nil
}

// countFailures counts a phone's failure records since a time.
func countFailures(tx *bolt.Tx, phone string, since time.Time) int {
	n := 0
	c := tx.Bucket(bucketFailures).Cursor()
	prefix := []byte(phone + "\x00")
	for k, _ := c.Seek(failureKey(phone, since, 0)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// scrubLapsed erases sealed answers that lapsed before now (at most max
// sessions), walking their lapse index.
func scrubLapsed(tx *bolt.Tx, now time.Time, max int) error {
	sessions := tx.Bucket(bucketSessions)
	_, err := due(tx.Bucket(bucketSealed), now, max, func(k []byte) error {
		id := k[8:]
		rec := sessions.Get(id)
		if rec == nil {
			return nil
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(rec, &fields); err != nil {
			return fmt.Errorf("scrub session %s: %w", id, err)
		}
		delete(fields, "sealed")
		delete(fields, "answers_at")
		delete(fields, "login_at")
		delete(fields, "sealed_until")
		data, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		return sessions.Put(id, data)
	})
	return err
}

// due walks an index whose keys start with a big-endian time, from the
// oldest, handing each key before a time to fn and deleting it, at most max
// of them. It returns how many it handled.
func due(index *bolt.Bucket, before time.Time, max int, fn func(k []byte) error) (int, error) {
	return dueUnder(index, nil, before, max, fn)
}

// failureKey orders a phone's failures by time: phone, 0, big-endian ns,
// sequence.
func failureKey(phone string, at time.Time, seq uint64) []byte {
	k := append([]byte(phone), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}

// SweepFailures deletes refused-login records older than before, at most
// max, walking their time index. It returns how many it deleted.
func (db *DB) SweepFailures(_ context.Context, before time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		failures := tx.Bucket(bucketFailures)
		var err error
		n, err = due(tx.Bucket(bucketFailureAge), before, max, func(k []byte) error {
			at := int64(binary.BigEndian.Uint64(k[:8]))
			seq := binary.BigEndian.Uint64(k[8:16])
			return failures.Delete(failureKey(string(k[16:]), time.Unix(0, at), seq))
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep login failures: %w", err)
	}
	return n, nil
}

// putLink writes a link and its phone index entry, dropping the entry of
// the phone the account was linked from before, if that was another one.
func putLink(tx *bolt.Tx, l *menus.Link, data []byte) error {
	links, phones := tx.Bucket(bucketLinks), tx.Bucket(bucketPhoneLinks)
	if old := links.Get([]byte(l.AccountID)); old != nil {
		var prev struct {
			Phone string `json:"phone"`
		}
		if err := json.Unmarshal(old, &prev); err == nil && prev.Phone != l.Phone {
			if err := phones.Delete(phoneKey(prev.Phone, l.AccountID)); err != nil {
				return err
			}
		}
	}
	if err := links.Put([]byte(l.AccountID), data); err != nil {
		return err
	}
	return phones.Put(phoneKey(l.Phone, l.AccountID), nil)
}

// Link returns the link of a Mono account id, or false.
func (db *DB) Link(_ context.Context, accountID string) (*menus.Link, bool, error) {
	var l *menus.Link
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLinks).Get([]byte(accountID))
		if v == nil {
			return nil
		}
		l = new(menus.Link)
		return json.Unmarshal(v, l)
	})
	if err != nil {
		return nil, false, fmt.Errorf("read link: %w", err)
	}
	return l, l != nil, nil
}

// LinksByPhone returns the links made from one phone number.
func (db *DB) LinksByPhone(_ context.Context, phone string) ([]menus.Link, error) {
	var out []menus.Link
	prefix := phoneKey(phone, "")
	err := db.bolt.View(func(tx *bolt.Tx) error {
		links := tx.Bucket(bucketLinks)
		c := tx.Bucket(bucketPhoneLinks).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := links.Get(k[len(prefix):])
			if v == nil {
				continue
			}
			var l menus.Link
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read links of phone: %w", err)
	}
	return out, nil
}

// expiryKey orders index entries by expiry time: big-endian nanoseconds,
// then the session id.
func expiryKey(t time.Time, id []byte) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

// phoneKey indexes links by phone (without its "+": aggregators differ).
func phoneKey(phone, accountID string) []byte {
	return []byte(menus.PhoneKey(phone) + "\x00" + accountID)
}
