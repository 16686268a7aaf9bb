package store_test

import (
	"bytes"
	"testing"

	"github.com/ussdlink/ussdlink/seal"
)

// newSealer is a sealer of a fixed 32-byte key, so failures are
// reproducible.
func newSealer(t *testing.T, fill byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{fill}, seal.KeySize))
	if err != nil {
		t.Fatalf("seal.New: %v", err)
	}
	return s
}
