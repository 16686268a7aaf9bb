package store

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Sessions are kept in two buckets. A session's record lives under a key
// given at its first write, in the order of first writes, so the sessions
// in progress, which are the newest, sit together in the last pages of the
// tree: the hops of one group commit rewrite a few shared pages instead of
// one leaf and one branch page each, however many sessions are stored. The
// session id finds that key through an index written once per session.
var (
	bucketSessionKeys = []byte("session_keys") // session id → its record's key (8 bytes BE)
	bucketSessionRows = []byte("session_rows") // record key → session record (envelope)
)

// sessionRows is the sessions' two buckets in one transaction, and the
// recent records its commit reports its writes to (nil: none).
type sessionRows struct {
	tx         *bolt.Tx
	keys, rows *bolt.Bucket
	recent     *recent
}

// sessionsOf returns the sessions' buckets of tx, reporting writes to
// recent when it is not nil.
func sessionsOf(tx *bolt.Tx, recent *recent) sessionRows {
	return sessionRows{tx: tx, keys: tx.Bucket(bucketSessionKeys), rows: tx.Bucket(bucketSessionRows), recent: recent}
}

// remember marks session id pending in s.recent, and has its record
// (nil: deleted) reported once s.tx commits.
func (s sessionRows) remember(id, record []byte) {
	if s.recent == nil {
		return
	}
	name, tx, recent := string(id), uint64(s.tx.ID()), s.recent
	recent.pend(name, tx)
	s.tx.OnCommit(func() { recent.set(name, record, tx) })
}

// rowsFill is how full the session records' pages are filled before they
// split, leaving room for the records still in progress to grow.
const rowsFill = 0.9

// get returns the record of session id, or nil. It is valid for the
// transaction only.
func (s sessionRows) get(id []byte) []byte {
	k := s.keys.Get(id)
	if k == nil {
		return nil
	}
	return s.rows.Get(k)
}

// put writes the record of session id, under its key, given now if it has
// none. record must not change afterwards: the transaction (and recent)
// keep it.
func (s sessionRows) put(id, record []byte) error {
	_, err := s.swap(id, record)
	return err
}

// swap is put, returning the record it replaced (nil when there was none):
// one look-up of the session's key for both. The record returned is valid
// for the transaction only.
func (s sessionRows) swap(id, record []byte) (prev []byte, err error) {
	k := bytes.Clone(s.keys.Get(id))
	if k == nil {
		seq, err := s.rows.NextSequence()
		if err != nil {
			return nil, err
		}
		k = binary.BigEndian.AppendUint64(nil, seq)
		if err := s.keys.Put(id, k); err != nil {
			return nil, err
		}
	} else {
		// The Put below replaces the leaf's reference to the value, and
		// bbolt rewrites no page before the commit: these bytes (the
		// file's, or an earlier write's own record) stay as they are.
		prev = s.rows.Get(k)
	}
	// Records are mostly appended (new keys come last), so their pages
	// are filled before they split: at bbolt's default half, a full store
	// would be half empty.
	s.rows.FillPercent = rowsFill
	if err := s.rows.Put(k, record); err != nil {
		return nil, err
	}
	s.remember(id, record)
	return prev, nil
}

// delete removes session id's record and its key.
func (s sessionRows) delete(id []byte) error {
	k := bytes.Clone(s.keys.Get(id))
	if k == nil {
		return nil
	}
	if err := s.rows.Delete(k); err != nil {
		return err
	}
	if err := s.keys.Delete(id); err != nil {
		return err
	}
	s.remember(id, nil)
	return nil
}
