package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store"
)

// schemaOf reads the schema version recorded in a closed file ("" when
// none is).
func schemaOf(t *testing.T, path string) string {
	t.Helper()
	var v string
	viewRaw(t, path, func(tx *bolt.Tx) error {
		if meta := tx.Bucket([]byte("meta")); meta != nil {
			v = string(meta.Get([]byte("schema")))
		}
		return nil
	})
	return v
}

// rawUpdate changes a closed file with bbolt itself.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(fn)
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenChecksTheSchemaVersion(t *testing.T) {
	cases := []struct {
		name   string
		stored string // the version the file records; "": a new file
		want   error
		after  string // the version recorded after the open
	}{
		{"a new file gets the current version", "", nil, "3"},
		{"a file of the previous version is migrated", "2", nil, "3"},
		{"a file of the current version opens", "3", nil, "3"},
		{"a file of a newer version is refused and left alone", "4", store.ErrSchemaTooNew, "4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ussdlink.db")
			if c.stored != "" {
				openDB(t, path, newSealer(t, 0x41)).Close()
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte(c.stored))
				})
			}
			db, err := store.Open(path, newSealer(t, 0x41))
			if err == nil {
				db.Close()
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Open = %v, want %v", err, c.want)
			}
			if err != nil && (!strings.Contains(err.Error(), "schema "+c.stored) || !strings.Contains(err.Error(), "3")) {
				t.Errorf("Open = %q, want it to name the file's version %s and this one's, 3", err, c.stored)
			}
			if got := schemaOf(t, path); got != c.after {
				t.Errorf("schema version after Open = %q, want %q", got, c.after)
			}
		})
	}
}

// v1Session is a session as schema 1 stored it: the conversation's JSON,
// with its sealed answers inline.
type v1Session struct {
	ID          string    `json:"id"`
	Phone       string    `json:"phone"`
	State       string    `json:"state"`
	Hops        int       `json:"hops"`
	Updated     time.Time `json:"updated"`
	Expires     time.Time `json:"expires"`
	Purge       time.Time `json:"purge,omitempty"`
	SealedUntil time.Time `json:"sealed_until,omitempty"`
	Sealed      []byte    `json:"sealed,omitempty"`
}

func TestOpenMigratesSessionsOfTheUnversionedFormat(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	sealer := newSealer(t, 0x42)
	answers := []byte(`{"answers":{"password":"` + secretPassword + `"}}`)
	old := []v1Session{
		{ID: "typing", Phone: "+2348030000041", State: "form", Hops: 3, Updated: t0, Expires: t0.Add(3 * time.Minute),
			Purge: t0.Add(13 * time.Minute), SealedUntil: t0.Add(2 * time.Minute), Sealed: sealer.Seal(answers, []byte("typing"))},
		{ID: "browsing", Phone: "+2348030000042", State: "banks", Hops: 1, Updated: t0, Expires: t0.Add(3 * time.Minute)},
	}
	// A file as the unversioned gateway left it: its sessions, their expiry
	// and lapse indexes and phones, and no schema version.
	openDB(t, path, sealer).Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("meta")); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("sessions")); err != nil {
			return err
		}
		for _, s := range old {
			data, err := json.Marshal(s)
			if err != nil {
				return err
			}
			purge := s.Purge
			if purge.IsZero() {
				purge = s.Expires
			}
			puts := []struct{ bucket, key, value []byte }{
				{[]byte("sessions"), []byte(s.ID), data},
				{[]byte("expiry"), timeKey(purge, s.ID), nil},
				{[]byte("phones"), []byte(link.PhoneKey(s.Phone)), []byte(s.ID)},
			}
			if len(s.Sealed) > 0 {
				puts = append(puts, struct{ bucket, key, value []byte }{[]byte("sealed"), timeKey(s.SealedUntil, s.ID), nil})
			}
			for _, p := range puts {
				if err := tx.Bucket(p.bucket).Put(p.key, p.value); err != nil {
					return err
				}
			}
		}
		return nil
	})

	openDB(t, path, sealer).Close() // migrates
	db := openDB(t, path, sealer)   // finds the current version: migrates nothing again
	got, err := db.Session(ctx, "typing")
	if err != nil {
		t.Fatal(err)
	}
	want := &link.SessionRecord{ID: "typing", Phone: "+2348030000041", Updated: t0, Purge: t0.Add(13 * time.Minute),
		Lapse: t0.Add(2 * time.Minute), Secrets: answers}
	data := got.Data
	got.Data = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("migrated session = %+v, want %+v", got, want)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatalf("migrated data %s: %v", data, err)
	}
	if _, ok := fields["sealed"]; ok || fields["id"] != "typing" || fields["state"] != "form" || fields["hops"] != 3.0 || fields["sealed_until"] == nil {
		t.Errorf("migrated data = %s, want the old session without its sealed blob", data)
	}
	browsing, err := db.Latest(ctx, "+2348030000042")
	if err != nil || browsing.ID != "browsing" || !browsing.Purge.Equal(t0.Add(3*time.Minute)) || browsing.Secrets != nil || !browsing.Lapse.IsZero() {
		t.Errorf("migrated session without a purge time = %+v, %v; want it purged at its expiry, without secrets", browsing, err)
	}
	// The indexes still find them: the answers lapse, then the sessions go.
	if n, err := db.Sweep(ctx, t0.Add(5*time.Minute), 100); err != nil || n != 1 {
		t.Errorf("Sweep at t0+5m = %d, %v; want browsing", n, err)
	}
	if got, err := db.Session(ctx, "typing"); err != nil || got.Secrets != nil || !got.SecretsLapsed {
		t.Errorf("after its answers lapsed, typing = %+v, %v", got, err)
	}
	if n, err := db.Sweep(ctx, t0.Add(time.Hour), 100); err != nil || n != 1 {
		t.Errorf("Sweep at t0+1h = %d, %v; want typing", n, err)
	}
	db.Close()
	if got := schemaOf(t, path); got != "3" {
		t.Errorf("schema version after the migration = %q, want 3", got)
	}
	viewRaw(t, path, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("sessions")) != nil {
			t.Error("the bucket sessions were kept in before schema 3 is still there")
		}
		return nil
	})
}

// timeKey is an index key: big-endian nanoseconds, then an id.
func timeKey(at time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), id...)
}

func TestASchema2FileWithManySessionsIsMovedInBatches(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	sealer := newSealer(t, 0x43)
	openDB(t, path, sealer).Close()
	const sessions = 25000 // more than two batches
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		legacy, err := tx.CreateBucket([]byte("sessions"))
		if err != nil {
			return err
		}
		for i := range sessions {
			id := fmt.Sprintf("s%05d", i)
			head, _ := json.Marshal(map[string]any{"id": id, "phone": "+2348030000043", "updated": t0, "purge": t0.Add(time.Hour)})
			rec := append(append(binary.AppendUvarint(nil, uint64(len(head))), head...), id...)
			if err := legacy.Put([]byte(id), rec); err != nil {
				return err
			}
			if err := tx.Bucket([]byte("expiry")).Put(timeKey(t0.Add(time.Hour), id), nil); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("2"))
	})
	db := openDB(t, path, sealer)
	for _, i := range []int{0, 9999, 10000, 19999, 24999} {
		id := fmt.Sprintf("s%05d", i)
		got, err := db.Session(ctx, id)
		if err != nil || string(got.Data) != id {
			t.Fatalf("session %s after the move: %+v, %v", id, got, err)
		}
	}
	if n, err := db.Sweep(ctx, t0.Add(2*time.Hour), sessions+1); err != nil || n != sessions {
		t.Errorf("Sweep after the move deleted %d, %v; want all %d through the expiry index", n, err, sessions)
	}
	db.Close()
	if got := schemaOf(t, path); got != "3" {
		t.Errorf("schema after the move = %q, want 3", got)
	}
	viewRaw(t, path, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("sessions")) != nil {
			t.Error("the bucket of schema 2 is still there")
		}
		return nil
	})
}
