package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store"
)

func TestASessionWithAJSONHeaderIsReadAndRewrittenInTheCurrentFormat(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "json-header.db")
	db := openDB(t, path, newSealer(t, 0x21))
	if err := db.Commit(ctx, link.Change{Session: &link.SessionRecord{ID: "s1", Phone: "+2348030000001",
		Updated: t0, Purge: t0.Add(time.Hour), Data: []byte("first")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The session as the store wrote it before MessagePack headers: a
	// uvarint length, a JSON header, the data.
	head, _ := json.Marshal(map[string]any{"id": "s1", "phone": "+2348030000001", "updated": t0, "purge": t0.Add(2 * time.Hour)})
	legacy := append(append(binary.AppendUvarint(nil, uint64(len(head))), head...), "legacy data"...)
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		ex := tx.Bucket([]byte("expiry"))
		if err := ex.Delete(append(binary.BigEndian.AppendUint64(nil, uint64(t0.Add(time.Hour).UnixNano())), "s1"...)); err != nil {
			return err
		}
		if err := ex.Put(append(binary.BigEndian.AppendUint64(nil, uint64(t0.Add(2*time.Hour).UnixNano())), "s1"...), nil); err != nil {
			return err
		}
		return store.PutRawSession(tx, "s1", legacy)
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path, newSealer(t, 0x21))
	got, err := db.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != "legacy data" || !got.Purge.Equal(t0.Add(2*time.Hour)) || got.Phone != "+2348030000001" {
		t.Fatalf("read back %+v", got)
	}
	got.Data, got.Purge = []byte("rewritten"), t0.Add(3*time.Hour)
	if err := db.Commit(ctx, link.Change{Session: got}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	viewRaw(t, path, func(tx *bolt.Tx) error {
		if v := store.RawSession(tx, "s1"); len(v) == 0 || v[0] != 0 {
			t.Errorf("the rewritten session does not start with the MessagePack header's zero byte: % x", v[:min(len(v), 8)])
		}
		return nil
	})
	if entries := readExpiry(t, path); len(entries) != 1 || !entries[0].at.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("expiry index after rewriting = %+v, want only the new purge time", entries)
	}
}

func TestALinkStoredAsJSONIsReadAndRewrittenInTheCurrentFormat(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "json-link.db")
	db := openDB(t, path, newSealer(t, 0x22))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	old := fullLink("acc_json", "+2348030000002", "s_old")
	legacy, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("links")).Put([]byte("acc_json"), legacy); err != nil {
			return err
		}
		return tx.Bucket([]byte("phone_links")).Put([]byte("2348030000002\x00acc_json"), nil)
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path, newSealer(t, 0x22))
	got, ok, err := db.Link(ctx, "acc_json")
	if err != nil || !ok || got.SessionID != "s_old" || !got.Linked.Equal(old.Linked) {
		t.Fatalf("Link = %+v, %v, %v", got, ok, err)
	}
	byPhone, err := db.LinksByPhone(ctx, "+2348030000002")
	if err != nil || len(byPhone) != 1 || byPhone[0].AccountID != "acc_json" {
		t.Fatalf("LinksByPhone = %+v, %v", byPhone, err)
	}
	// Linked again from another phone: rewritten, and moved to that phone.
	again := fullLink("acc_json", "+2348030000003", "s_new")
	if err := db.Commit(ctx, link.Change{Session: &link.SessionRecord{ID: "s_new", Phone: again.Phone, Updated: t0,
		Purge: t0.Add(time.Hour), Data: []byte("d")}, Link: again}); err != nil {
		t.Fatal(err)
	}
	if l, err := db.LinksByPhone(ctx, "+2348030000002"); err != nil || len(l) != 0 {
		t.Fatalf("the old phone still lists %+v (%v)", l, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	viewRaw(t, path, func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("links")).Get([]byte("acc_json")); len(v) == 0 || v[0] != 0x01 {
			t.Errorf("the rewritten link does not start with the MessagePack format byte: %.20q", v)
		}
		return nil
	})
}
