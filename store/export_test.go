package store

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// EnvelopeHeader splits a stored session into its header, as JSON, and the
// conversation's data after it, for tests that look into the raw file.
func EnvelopeHeader(v []byte) (header, data []byte, err error) {
	env, err := unmarshalEnvelope(v)
	if err != nil {
		return nil, nil, err
	}
	header, err = json.Marshal(env)
	return header, env.Data, err
}

// Envelope joins a header, given as JSON, and data as a stored session in
// the current format.
func Envelope(header, data []byte) []byte {
	var env envelope
	if err := json.Unmarshal(header, &env); err != nil {
		panic(err)
	}
	env.Data = data
	out, err := env.marshal()
	if err != nil {
		panic(err)
	}
	return out
}

// RawSession returns the stored record of session id in tx, or nil, for
// tests that look into the raw file.
func RawSession(tx *bolt.Tx, id string) []byte { return sessionsOf(tx, nil).get([]byte(id)) }

// PutRawSession writes a raw record for session id in tx, for tests that
// forge what is stored.
func PutRawSession(tx *bolt.Tx, id string, v []byte) error {
	return sessionsOf(tx, nil).put([]byte(id), v)
}
