package store

import (
	"encoding/binary"
	"errors"
)

// EnvelopeHeader splits a stored session into its JSON header and the
// conversation's data after it, for tests that look into the raw file.
func EnvelopeHeader(v []byte) (header, data []byte, err error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return nil, nil, errors.New("malformed envelope")
	}
	return v[k : k+int(n)], v[k+int(n):], nil
}

// Envelope joins a header and data as a stored session.
func Envelope(header, data []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}
