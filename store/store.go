// Package store keeps the gateway's state in one bbolt file: sessions with
// their expiry index, linked accounts, invitations and the outgoing queues.
// A session is an opaque record (link.SessionRecord): the store indexes,
// seals and sweeps it without reading the conversation it holds. What users
// type is sealed before it is written; nothing typed is ever stored in plain
// text. The store knows no package of the gateway but link.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store/kit"
)

// Bucket names. Every bucket is created when the file is opened.
var (
	bucketExpiry     = []byte("expiry")      // purge time (8 bytes BE unix ns) + session id → nil
	bucketLinks      = []byte("links")       // Mono account id → link
	bucketPhoneLinks = []byte("phone_links") // phone + 0 + account id → nil
	bucketPhones     = []byte("phones")      // phone → id of its latest session
	bucketSealed     = []byte("sealed")      // lapse time (8 bytes BE) + session id → nil: sealed secrets to erase
	bucketFailures   = []byte("failures")    // phone + 0 + time (8 bytes BE unix ns) → nil
	bucketFailureAge = []byte("failure_age") // time (8 bytes BE) + phone → nil, for sweeping
)

// DB is the gateway's bbolt file.
type DB struct {
	bolt   *bolt.DB
	sealer *seal.Sealer
	// writes is the group commit every hop's write goes through, and
	// batchDelay how long its idle committer waits for company.
	writes     *group
	batchDelay time.Duration
	// linkUpdates decides whether a new link takes its account's
	// remembered update, and announces it (WithLinkUpdates); nil: none is
	// applied.
	linkUpdates LinkUpdates
	// funnel decides the funnel entry of a session Sweep deletes
	// (WithFunnel); nil: the sweep counts none.
	funnel link.FunnelOf
	// recent holds the records of the sessions written last, read by
	// Session without a transaction.
	recent *recent
}

// WriterStats is what the store's group committer has done since the
// store opened. The hops' commits, the login reservations and the
// queues' outcomes go through it, one group (a transaction and its two
// disk syncs) at a time; the other writes (sweeps, invitations, texts
// queued on their own) take bbolt's writer lock beside it. When Busy
// grows as fast as the clock, the committer is saturated and hops queue
// for it.
type WriterStats struct {
	Groups uint64        // groups of writes taken, each committed in one transaction (more when one of its writes fails)
	Writes uint64        // the writes taken into them, a failed one too
	Busy   time.Duration // time spent committing them: syncs included, and waits for bbolt's lock while another write holds it
}

// WriterStats reports what the store's group committer has done so far;
// a group is counted once it is answered.
func (db *DB) WriterStats() WriterStats {
	g := db.writes
	return WriterStats{Groups: g.groups.Load(), Writes: g.writesDone.Load(), Busy: time.Duration(g.busy.Load())}
}

// Option tunes Open.
type Option func(*DB)

// WithBatchDelay sets how long a commit that finds the writer idle waits
// for others to share its disk sync. Commits that arrive while a sync is
// under way always share the next one, so under load the delay adds
// nothing; a lone commit pays it on top of its sync. Each commit is
// durable before it returns either way. The default is 0: no wait.
func WithBatchDelay(d time.Duration) Option {
	return func(db *DB) { db.batchDelay = d }
}

// ErrInUse says another process holds the store's file (bbolt locks it for
// one process at a time): a second gateway on the same file fails at once
// with it rather than waiting.
var ErrInUse = errors.New("the store is in use by another process")

// pageSize is the page size of a new file (an existing one keeps its
// own): a session record is about 1.5 KB, and a 4 KB page held two with a
// quarter of it empty; a 16 KB page holds ten.
const pageSize = 16 * 1024

// lockWait is how long Open waits for the file's lock: long enough for a
// process that is just closing it, short enough to fail at once otherwise.
const lockWait = 100 * time.Millisecond

// Open opens (creating when needed) the database at path. Values typed by
// users are sealed with sealer. A file another process holds gives an error
// wrapping ErrInUse and naming the path. A file of an older schema is
// migrated to the current one as it opens; one of a newer schema is
// refused with an error wrapping ErrSchemaTooNew.
func Open(path string, sealer *seal.Sealer, opts ...Option) (*DB, error) {
	if sealer == nil {
		return nil, errors.New("open store: a sealer is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait, PageSize: pageSize})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w (%s)", ErrInUse, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		version, err := readSchema(tx)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketSessionKeys, bucketSessionRows, bucketExpiry, bucketLinks, bucketPhoneLinks, bucketPhones, bucketSealed, bucketFailures, bucketFailureAge,
			bucketOutbox, bucketOutboxDue, bucketOutboxOrder, bucketDead, bucketSMS, bucketSMSDue, bucketSMSOrder, bucketSMSDead,
			bucketInvites, bucketInviteCodes, bucketInvitePhone, bucketInviteRef, bucketReauthOf,
			bucketIdempotency, bucketMonoEvents, bucketMonoEventAge, bucketMonoUpdates, bucketMonoUpdateAge,
			bucketOptOut, bucketSMSConv, bucketSMSSeen, bucketSMSSeenAt, bucketFunnel, bucketPhoneLanguage} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		if err := createRetentionIndexes(tx); err != nil {
			return err
		}
		return migrate(tx, version)
	})
	if err == nil {
		err = moveSessions(bdb)
	}
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{bolt: bdb, sealer: sealer, recent: newRecent()}
	for _, o := range opts {
		o(db)
	}
	db.writes = newGroup(bdb, db.batchDelay)
	return db, nil
}

// Writable reports whether the file takes a write: it commits an empty
// transaction (and its sync), for the admin listener's /readyz.
func (db *DB) Writable(_ context.Context) error {
	if err := db.bolt.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("store not writable: %w", err)
	}
	return nil
}

// Close commits the writes queued and closes the file; later writes fail.
func (db *DB) Close() error {
	db.writes.close()
	db.recent.close()
	return db.bolt.Close()
}

// Session returns the stored session, or link.ErrNoSession.
func (db *DB) Session(_ context.Context, id string) (*link.SessionRecord, error) {
	data, known := db.recent.get(id) // a session in progress: as its last hop committed it
	if known && data == nil {
		return nil, link.ErrNoSession
	}
	if known {
		return db.decodeSession(data)
	}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if v := sessionsOf(tx, nil).get([]byte(id)); v != nil {
			data = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	if data == nil {
		return nil, link.ErrNoSession
	}
	return db.decodeSession(data)
}

// decodeSession parses a stored session and opens its sealed secrets.
func (db *DB) decodeSession(data []byte) (*link.SessionRecord, error) {
	r, sealed, err := readEnvelope(data)
	if err != nil {
		return nil, err
	}
	if len(sealed) > 0 {
		plain, err := db.sealer.Open(sealed, []byte(r.ID))
		if err != nil {
			// Sealed under a key no longer held (lost, or rotated out of
			// previous-seal-keys): the session goes on without them, and
			// whatever needed them is asked again.
			r.SecretsLost = true
			return r, nil
		}
		r.Secrets = plain
	}
	return r, nil
}

// readEnvelope parses a stored session into its record, without opening
// its secrets, and returns them still sealed.
func readEnvelope(data []byte) (*link.SessionRecord, []byte, error) {
	env, err := unmarshalEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	r := &link.SessionRecord{ID: env.ID, Phone: env.Phone, Updated: env.Updated, Purge: env.Purge,
		Lapse: env.Lapse, Data: env.Data, SecretsLapsed: env.Lapsed}
	return r, env.Sealed, nil
}

// encodeSession serialises a session with its secrets sealed. The caller's
// plain secrets are left as they are: the caller erases them.
func (db *DB) encodeSession(r *link.SessionRecord) ([]byte, error) {
	env := envelope{ID: r.ID, Phone: r.Phone, Updated: r.Updated, Purge: r.Purge, Lapse: r.Lapse, Data: r.Data}
	if len(r.Secrets) > 0 {
		env.Sealed = db.sealer.Seal(r.Secrets, []byte(r.ID))
	}
	return env.marshal()
}

// Commit writes a hop's session (and a session it retired), their expiry
// index entries and any new link in one transaction, synced to disk before
// it returns. Commits from concurrent hops share one disk sync (the group
// commit): the closure only puts what was encoded beforehand, and the link
// as the stored state decides, so running it again, as the group commit
// may, changes nothing. A new link may take the data status of an
// account_updated Mono sent before it committed, as the LinkUpdates option
// decides (see prepareLink); the partner then hears of it after the link's
// own events. The session's funnel entry, when it ended in this change,
// adds its counts in the same transaction (summed with those of the
// commits beside it in the group, addFunnels), and the language its phone
// chose, when it chose one, becomes the phone's (a language that is not a
// code, kit.Language, fails the commit before anything is written).
func (db *DB) Commit(_ context.Context, c link.Change) error {
	if c.Session == nil {
		return errors.New("commit: a change without its session")
	}
	if err := kit.Language(c.Language); err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	var recs []sessionWrite
	for _, r := range []*link.SessionRecord{c.Retired, c.Session} {
		if r == nil {
			continue
		}
		data, err := db.encodeSession(r)
		if err != nil {
			return err
		}
		w := sessionWrite{id: []byte(r.ID), phone: []byte(link.PhoneKey(r.Phone)), data: data, purge: r.Purge}
		if len(r.Secrets) > 0 {
			w.lapse = r.Lapse
		}
		recs = append(recs, w)
	}
	msgs, err := kit.EventMessages(c.Events)
	if err != nil {
		return err
	}
	inviteMsgs, err := kit.EventMessages(c.InviteEvents)
	if err != nil {
		return err
	}
	texts, err := kit.TextMessages(c.Texts)
	if err != nil {
		return err
	}
	textQueue := db.Texts()
	funnel := kit.FunnelCounts(c.Funnel, c.RetiredFunnel)
	err = db.writes.doCounting(func(tx *bolt.Tx) error {
		for _, w := range recs {
			if err := putSession(tx, db.recent, w); err != nil {
				return err
			}
		}
		if c.Language != "" {
			if err := putLanguage(tx, link.PhoneKey(c.Session.Phone), c.Language); err != nil {
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
			if _, err := putFailure(tx, link.PhoneKey(c.Session.Phone), c.Session.Updated); err != nil {
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
			if held == nil || held.Status == link.StatusPending {
				if err := putInvite(tx, kit.WithLinkStatus(kit.KeepClaim(held, c.Invite), lw.link)); err != nil {
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
		return putMessages(tx, kit.After(lw.events, msgs, inviteMsgs)) // told after the link
	}, funnel)
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	return nil
}

// sessionWrite is one encoded session ready to be put.
type sessionWrite struct {
	id, phone, data []byte
	purge           time.Time
	lapse           time.Time // when its sealed secrets lapse; zero: none to erase
}

// putSession writes a session record, moves its expiry and lapse index
// entries and makes it its phone's latest session (the latest written
// wins). An index entry whose time did not change, and a phone whose
// latest session is already this one, are left as they are: their pages
// are not rewritten.
func putSession(tx *bolt.Tx, recent *recent, w sessionWrite) error {
	sessions, expiry, sealed := sessionsOf(tx, recent), tx.Bucket(bucketExpiry), tx.Bucket(bucketSealed)
	old, err := sessions.swap(w.id, w.data)
	if err != nil {
		return err
	}
	var prev envelope
	had := false // a readable earlier record, whose index entries move
	if old != nil {
		prev, err = unmarshalEnvelope(old)
		had = err == nil
	}
	if !had || !prev.Purge.Equal(w.purge) {
		if had {
			if err := expiry.Delete(expiryKey(prev.Purge, w.id)); err != nil {
				return err
			}
		}
		if err := expiry.Put(expiryKey(w.purge, w.id), nil); err != nil {
			return err
		}
	}
	indexed := prev.Lapse // the lapse index holds an entry only for sealed secrets
	if len(prev.Sealed) == 0 {
		indexed = time.Time{}
	}
	if err := moveIndex(sealed, indexed, w.lapse, w.id); err != nil {
		return err
	}
	phones := tx.Bucket(bucketPhones)
	if bytes.Equal(phones.Get(w.phone), w.id) {
		return nil
	}
	return phones.Put(w.phone, w.id)
}

// moveIndex moves id's entry in the lapse index from one time to another;
// a zero time is no entry.
func moveIndex(index *bolt.Bucket, from, to time.Time, id []byte) error {
	if from.Equal(to) {
		return nil
	}
	if !from.IsZero() {
		if err := index.Delete(expiryKey(from, id)); err != nil {
			return err
		}
	}
	if to.IsZero() {
		return nil
	}
	return index.Put(expiryKey(to, id), nil)
}

// Latest returns the most recently written session of a phone, or
// link.ErrNoSession.
func (db *DB) Latest(ctx context.Context, phone string) (*link.SessionRecord, error) {
	var id []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		id = bytes.Clone(tx.Bucket(bucketPhones).Get([]byte(link.PhoneKey(phone))))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read phone index: %w", err)
	}
	if id == nil {
		return nil, link.ErrNoSession
	}
	return db.Session(ctx, string(id))
}

// Sweep deletes sessions whose purge time is before now, at most max of
// them, walking the expiry index from its oldest entry: it never scans the
// sessions themselves. Sealed secrets go with their session, and those
// that lapsed before now are erased from sessions that stay. With
// WithFunnel, each session deleted is counted in the drop-off funnel as
// its hook decides, in the same transaction. It returns how many sessions
// it deleted.
func (db *DB) Sweep(_ context.Context, now time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := scrubLapsed(tx, db.recent, now, max); err != nil {
			return err
		}
		sessions, phones := sessionsOf(tx, db.recent), tx.Bucket(bucketPhones)
		var ended []*link.FunnelEntry
		var err error
		n, err = due(tx.Bucket(bucketExpiry), now, max, func(k []byte) error {
			id := k[8:]
			rec := sessions.get(id)
			if rec == nil {
				return nil
			}
			if db.funnel != nil {
				// A copy: the hook may keep what it decodes, and the
				// transaction's writes may move the page rec lies on.
				if r, _, err := readEnvelope(bytes.Clone(rec)); err == nil {
					ended = append(ended, db.funnel(r))
				}
			}
			if s, err := unmarshalEnvelope(rec); err == nil && bytes.Equal(phones.Get([]byte(link.PhoneKey(s.Phone))), id) {
				if err := phones.Delete([]byte(link.PhoneKey(s.Phone))); err != nil {
					return err
				}
			}
			return sessions.delete(id)
		})
		if err != nil {
			return err
		}
		return addFunnel(tx, kit.FunnelCounts(ended...))
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
// releases it (link.Change.Release) when the bank did not refuse it.
func (db *DB) ReserveAttempt(_ context.Context, phone string, since, at time.Time, max int) (string, bool, error) {
	var key []byte
	// Batched with concurrent commits (one disk sync for them all): the
	// closure may run again, and then decides again from what is stored.
	err := db.writes.do(func(tx *bolt.Tx) error {
		key = nil
		p := link.PhoneKey(phone)
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
		n = countFailures(tx, link.PhoneKey(phone), since)
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

// scrubLapsed erases sealed secrets that lapsed before now (at most max
// sessions), walking their lapse index: the sealed blob and its lapse go,
// and the record is marked, so that the conversation reading it back knows
// its secrets lapsed.
func scrubLapsed(tx *bolt.Tx, recent *recent, now time.Time, max int) error {
	sessions := sessionsOf(tx, recent)
	_, err := due(tx.Bucket(bucketSealed), now, max, func(k []byte) error {
		id := k[8:]
		rec := sessions.get(id)
		if rec == nil {
			return nil
		}
		env, err := unmarshalEnvelope(rec)
		if err != nil {
			return fmt.Errorf("scrub session %s: %w", id, err)
		}
		env.Sealed, env.Lapse, env.Lapsed = nil, time.Time{}, true
		data, err := env.marshal() // a copy: rec belongs to the bucket being written
		if err != nil {
			return fmt.Errorf("scrub session %s: %w", id, err)
		}
		return sessions.put(id, data)
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
func putLink(tx *bolt.Tx, l *link.Link, data []byte) error {
	links, phones := tx.Bucket(bucketLinks), tx.Bucket(bucketPhoneLinks)
	if old := links.Get([]byte(l.AccountID)); old != nil {
		var prev link.Link
		if err := decodeLink(old, &prev); err == nil && prev.Phone != l.Phone {
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
func (db *DB) Link(_ context.Context, accountID string) (*link.Link, bool, error) {
	var l *link.Link
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLinks).Get([]byte(accountID))
		if v == nil {
			return nil
		}
		l = new(link.Link)
		return decodeLink(v, l)
	})
	if err != nil {
		return nil, false, fmt.Errorf("read link: %w", err)
	}
	return l, l != nil, nil
}

// LinksByPhone returns the links made from one phone number.
func (db *DB) LinksByPhone(_ context.Context, phone string) ([]link.Link, error) {
	var out []link.Link
	prefix := phoneKey(phone, "")
	err := db.bolt.View(func(tx *bolt.Tx) error {
		links := tx.Bucket(bucketLinks)
		c := tx.Bucket(bucketPhoneLinks).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := links.Get(k[len(prefix):])
			if v == nil {
				continue
			}
			var l link.Link
			if err := decodeLink(v, &l); err != nil {
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
	return []byte(link.PhoneKey(phone) + "\x00" + accountID)
}

// FirstLook reads what a new session's first screen asks of its phone
// (link.FirstLook): the reads of its own, each a lookup in the mapped file.
func (db *DB) FirstLook(ctx context.Context, phone string, since, now time.Time) (link.FirstLook, error) {
	return kit.FirstLook(ctx, db, phone, since, now)
}
