package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The schema version is recorded in the file, so that a file written in an
// older layout is migrated when opened and one written by a newer gateway
// is refused rather than misread.
var (
	bucketMeta = []byte("meta")   // name → value: what the file says about itself
	keySchema  = []byte("schema") // the schema version, in decimal
)

// Schema versions:
//
//  1. Before versions were recorded: a session was the conversation's own
//     JSON with its sealed answers inline under "sealed".
//  2. A session is an envelope (see envelope) around the conversation's
//     data, with the store's own fields.
//  3. Sessions move from one bucket keyed by id to a record bucket keyed
//     in the order of first writes, found through an id index (see
//     sessionRows).
const schemaVersion = 3

// bucketLegacySessions is where schemas 1 and 2 kept sessions, by id.
var bucketLegacySessions = []byte("sessions")

// ErrSchemaTooNew says the file was written by a newer gateway, in a layout
// this one does not know: it is refused, not misread or rewritten.
var ErrSchemaTooNew = errors.New("the store was written by a newer version")

// readSchema returns the file's schema version, refusing one newer than
// this code knows before anything is written. A file without a version is
// of schema 1: it holds the old layout when it holds sessions; without any
// it is new, and migrating it changes nothing.
func readSchema(tx *bolt.Tx) (int, error) {
	version := 1
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keySchema); v != nil {
			var err error
			if version, err = strconv.Atoi(string(v)); err != nil {
				return 0, fmt.Errorf("schema version %q: %w", v, err)
			}
		}
	}
	if version > schemaVersion {
		return 0, fmt.Errorf("%w: schema %d, this version knows up to %d", ErrSchemaTooNew, version, schemaVersion)
	}
	return version, nil
}

// migrate brings a file of schema from up to the current one and records
// it, in the opening transaction: a crash leaves the file as it was. The
// one step left out is moving sessions out of the bucket schemas 1 and 2
// kept them in, which moveSessions does after, in batches: until it is
// done, the file records schema 2.
func migrate(tx *bolt.Tx, from int) error {
	if from == schemaVersion {
		return nil
	}
	version := schemaVersion
	if legacy := tx.Bucket(bucketLegacySessions); legacy != nil {
		if from < 2 {
			if err := migrateSessions(legacy); err != nil {
				return fmt.Errorf("migrate from schema %d to 2: %w", from, err)
			}
		}
		version = 2
	}
	return recordSchema(tx, version)
}

// recordSchema records the file's schema version.
func recordSchema(tx *bolt.Tx, version int) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucketMeta, err)
	}
	return meta.Put(keySchema, []byte(strconv.Itoa(version)))
}

// moveBatch is how many sessions moveSessions moves per transaction: a
// transaction keeps every page it changes in memory until it commits.
const moveBatch = 10000

// moveSessions moves the sessions of the bucket schemas 1 and 2 kept them
// in to the layout of schema 3, moveBatch at a time, each batch deleted
// from the old bucket in the transaction that moves it, so that a crash
// in between leaves the rest to move at the next open; then it deletes
// the old bucket and records schema 3.
func moveSessions(db *bolt.DB) error {
	for done := false; !done; {
		err := db.Update(func(tx *bolt.Tx) error {
			legacy := tx.Bucket(bucketLegacySessions)
			if legacy == nil {
				done = true
				return nil
			}
			var ids, records [][]byte
			c := legacy.Cursor()
			for k, v := c.First(); k != nil && len(ids) < moveBatch; k, v = c.Next() {
				ids, records = append(ids, bytes.Clone(k)), append(records, bytes.Clone(v))
			}
			rows := sessionsOf(tx, nil) // at open: nothing read yet to remember for
			for i, id := range ids {
				if err := rows.put(id, records[i]); err != nil {
					return err
				}
				if err := legacy.Delete(id); err != nil {
					return err
				}
			}
			if len(ids) == moveBatch {
				return nil // more to move
			}
			done = true
			if err := tx.DeleteBucket(bucketLegacySessions); err != nil {
				return err
			}
			return recordSchema(tx, schemaVersion)
		})
		if err != nil {
			return fmt.Errorf("migrate to schema %d: move sessions: %w", schemaVersion, err)
		}
	}
	return nil
}

// migrateSessions rewrites every session of schema 1 as an envelope: its
// JSON without the sealed blob becomes the data; its purge time (its expiry
// when it has none) and, with a sealed blob, its sealed_until become the
// envelope's. The blob moves as it is: it is sealed with the same id, so
// it still opens. The expiry and lapse indexes already hold these times.
func migrateSessions(sessions *bolt.Bucket) error {
	rewritten := map[string][]byte{} // written once the walk is done with the bucket
	err := sessions.ForEach(func(k, v []byte) error {
		data, err := migrateSession(v)
		if err != nil {
			return fmt.Errorf("session %s: %w", k, err)
		}
		rewritten[string(k)] = data
		return nil
	})
	if err != nil {
		return err
	}
	for k, data := range rewritten {
		if err := sessions.Put([]byte(k), data); err != nil {
			return err
		}
	}
	return nil
}

// migrateSession turns one session of schema 1 into its envelope.
func migrateSession(old []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(old, &fields); err != nil {
		return nil, err
	}
	var v1 struct {
		ID          string    `json:"id"`
		Phone       string    `json:"phone"`
		Updated     time.Time `json:"updated"`
		Purge       time.Time `json:"purge"`
		Expires     time.Time `json:"expires"`
		SealedUntil time.Time `json:"sealed_until"`
		Sealed      []byte    `json:"sealed"`
	}
	if err := json.Unmarshal(old, &v1); err != nil {
		return nil, err
	}
	delete(fields, "sealed")
	data, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	env := envelope{ID: v1.ID, Phone: v1.Phone, Updated: v1.Updated, Purge: v1.Purge, Data: data, Sealed: v1.Sealed}
	if env.Purge.IsZero() {
		env.Purge = v1.Expires
	}
	if len(v1.Sealed) > 0 {
		env.Lapse = v1.SealedUntil
	}
	return env.marshal()
}
