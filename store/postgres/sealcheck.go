package postgres

import (
	"crypto/sha256"
	"crypto/subtle"
)

// keyCheckPurpose derives the key whose hash identifies the seal key in
// the database; the seal key itself never leaves the instance.
const keyCheckPurpose = "postgres seal key check"

// keyCheck is the value stored for a derived key: its SHA-256.
func keyCheck(derived []byte) []byte {
	sum := sha256.Sum256(derived)
	return sum[:]
}

// equal compares two check values in constant time.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
