package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
)

func TestAFileFromBeforePhoneLanguagesTakesTheirBucketAtOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := openDB(t, path, newSealer(t, 0x41))
	if err := db.Commit(ctx, link.Change{Session: &link.SessionRecord{ID: "s1", Phone: "+2348030000001", Updated: t0,
		Purge: t0.Add(time.Hour), Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// A file of schema 3 written before the bucket existed.
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("phone_language")) })
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  string // the language set once opened; "" sets none
		want string // read at open, before it is set
	}{
		{"the first open creates the bucket, empty", "ha", ""},
		{"opening again keeps what it holds", "", "ha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, path, newSealer(t, 0x41))
			defer db.Close()
			if got, err := db.PhoneLanguage(ctx, "2348030000001"); err != nil || got != tt.want {
				t.Fatalf("PhoneLanguage = %q, %v; want %q", got, err, tt.want)
			}
			if tt.set == "" {
				return
			}
			if err := db.Commit(ctx, link.Change{Session: &link.SessionRecord{ID: "s2", Phone: "+2348030000001", Updated: t0,
				Purge: t0.Add(time.Hour), Data: []byte(`{}`)}, Language: tt.set}); err != nil {
				t.Fatal(err)
			}
			if got := bucketSizes(t, db)["phone_language"]; got != 1 {
				t.Errorf("BucketSizes[phone_language] = %d, want 1", got)
			}
		})
	}
	db = openDB(t, path, newSealer(t, 0x41))
	defer db.Close()
	if _, err := db.Session(ctx, "s1"); err != nil {
		t.Errorf("the session written before: %v", err)
	}
}
