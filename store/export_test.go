package store

import (
	"encoding/json"
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
