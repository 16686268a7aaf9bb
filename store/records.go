package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ussdlink/ussdlink/link"
)

// Links and queued messages are stored as a format byte and MessagePack
// (link's generated code, keyed by the JSON names); those written before
// it are JSON, whose first byte is '{', and are read as such.
const recordMsgpack = 0x01

// msgpRecord is a value with generated MessagePack code.
type msgpRecord interface {
	MarshalMsg([]byte) ([]byte, error)
	UnmarshalMsg([]byte) ([]byte, error)
	Msgsize() int
}

// encodeRecord encodes r in the current format.
func encodeRecord(r msgpRecord) ([]byte, error) {
	return r.MarshalMsg(append(make([]byte, 0, 1+r.Msgsize()), recordMsgpack))
}

// decodeRecord reads v, in either format, into r (a pointer).
func decodeRecord(v []byte, r msgpRecord) error {
	switch {
	case len(v) == 0:
		return errors.New("empty record")
	case v[0] == recordMsgpack:
		_, err := r.UnmarshalMsg(v[1:])
		return err
	}
	return json.Unmarshal(v, r)
}

// encodeLink encodes a link for the links bucket.
func encodeLink(l *link.Link) ([]byte, error) {
	out, err := encodeRecord(l)
	if err != nil {
		return nil, fmt.Errorf("encode link %s: %w", l.AccountID, err)
	}
	return out, nil
}

// decodeLink reads a stored link.
func decodeLink(v []byte, l *link.Link) error {
	if err := decodeRecord(v, l); err != nil {
		return fmt.Errorf("decode link: %w", err)
	}
	return nil
}

// encodeMessage encodes a queued message for its queue's bucket.
func encodeMessage(m *link.Message) ([]byte, error) {
	out, err := encodeRecord(m)
	if err != nil {
		return nil, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	return out, nil
}

// decodeMessage reads a queued message.
func decodeMessage(v []byte, m *link.Message) error {
	if err := decodeRecord(v, m); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	return nil
}
