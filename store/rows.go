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

// sessionRows is the sessions' two buckets in one transaction.
type sessionRows struct{ keys, rows *bolt.Bucket }

// sessionsOf returns the sessions' buckets of tx.
func sessionsOf(tx *bolt.Tx) sessionRows {
	return sessionRows{keys: tx.Bucket(bucketSessionKeys), rows: tx.Bucket(bucketSessionRows)}
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
// none.
func (s sessionRows) put(id, record []byte) error {
	k := bytes.Clone(s.keys.Get(id))
	if k == nil {
		seq, err := s.rows.NextSequence()
		if err != nil {
			return err
		}
		k = binary.BigEndian.AppendUint64(nil, seq)
		if err := s.keys.Put(id, k); err != nil {
			return err
		}
	}
	// Records are mostly appended (new keys come last), so their pages
	// are filled before they split: at bbolt's default half, a full store
	// would be half empty.
	s.rows.FillPercent = rowsFill
	return s.rows.Put(k, record)
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
	return s.keys.Delete(id)
}
