package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store"
	"github.com/ussdlink/ussdlink/store/storetest"
)

// TestContract runs the store contract against bbolt, each behaviour on a
// fresh file in its own temporary directory.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return openBolt(t, filepath.Join(t.TempDir(), "ussdlink.db"))
	})
}

// openBolt opens the bbolt store at path as the contract needs it, with
// the seal key of a restart: the same each time.
func openBolt(t *testing.T, path string) storetest.Backend {
	t.Helper()
	sealer, err := seal.New(bytes.Repeat([]byte{0x5c}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(path, sealer, store.WithLinkUpdates(storetest.LinkUpdates),
		store.WithFunnel(storetest.FunnelOf), store.WithBatchDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Opened(t, db, db.Close, db.Webhooks(), db.Texts(),
		func(t *testing.T) storetest.Backend { return openBolt(t, path) },
		func(t *testing.T) []byte {
			t.Helper()
			raw, err := os.ReadFile(path) // bbolt writes every page it syncs: this is the file as it lies
			if err != nil {
				t.Fatalf("read the store's file: %v", err)
			}
			return raw
		})
}
