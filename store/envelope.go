package store

//go:generate go tool msgp -file=envelope.go -o=envelope_msgp.go -unexported -io=false -tests=false -d "tag json" -d "timezone utc"

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// envelope is a session as stored: the conversation's record with its
// secrets sealed. It is written as a header (the fields below) followed by
// Data, the conversation's own encoding, byte for byte: the store reads
// the header alone when it indexes or sweeps, and never parses Data.
//
// The header is written as a zero byte and then a MessagePack map keyed by
// the JSON names (generated code, no reflection). Sessions written before
// it have a uvarint length and a JSON header instead; that length is never
// zero, so the first byte tells the two apart and both are read.
type envelope struct {
	ID      string    `json:"id"`
	Phone   string    `json:"phone"`
	Updated time.Time `json:"updated"`
	Purge   time.Time `json:"purge"`
	Lapse   time.Time `json:"lapse,omitzero"`
	Sealed  []byte    `json:"sealed,omitempty"` // the secrets, sealed with the id as additional data
	Lapsed  bool      `json:"lapsed,omitempty"` // the sweeper erased the sealed secrets
	Data    []byte    `json:"-"`
}

// headerMsgpack starts an envelope with a MessagePack header.
const headerMsgpack = 0x00

// marshal writes the envelope: the header's format byte, header, data.
func (env *envelope) marshal() ([]byte, error) {
	out := make([]byte, 1, 1+env.Msgsize()+len(env.Data))
	out[0] = headerMsgpack
	out, err := env.MarshalMsg(out)
	if err != nil {
		return nil, fmt.Errorf("encode session %s: %w", env.ID, err)
	}
	return append(out, env.Data...), nil
}

// unmarshalEnvelope reads a stored session in either header format. Data
// is a slice of v: the caller clones v when it outlives the transaction.
func unmarshalEnvelope(v []byte) (envelope, error) {
	var env envelope
	if len(v) > 0 && v[0] == headerMsgpack {
		rest, err := env.UnmarshalMsg(v[1:])
		if err != nil {
			return env, fmt.Errorf("decode session: %w", err)
		}
		env.Data = rest
		return env, nil
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || n == 0 || n > uint64(len(v)-k) {
		return env, errors.New("decode session: malformed envelope")
	}
	head := v[k : k+int(n)]
	if err := json.Unmarshal(head, &env); err != nil {
		return env, fmt.Errorf("decode session: %w", err)
	}
	env.Data = v[k+int(n):]
	return env, nil
}
