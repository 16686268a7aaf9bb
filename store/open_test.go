package store_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store"
)

// bbolt locks its file with flock, which holds between two opens in one
// process as between two processes: the second open stands for a second
// gateway.
func TestOpeningAStoreAnotherHoldsFailsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "ussdlink.db")
	sealer, err := seal.New(make([]byte, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	first, err := store.Open(path, sealer)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := store.Open(path, sealer)
	took := time.Since(start)
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second open of a held store succeeded")
	}
	if !errors.Is(err, store.ErrInUse) {
		t.Errorf("err = %v, want ErrInUse", err)
	}
	if want := "the store is in use by another process (" + path + ")"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to read %q", err, want)
	}
	if took > time.Second {
		t.Errorf("the second open took %v, want it to fail at once", took)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := store.Open(path, sealer)
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	again.Close()
}
