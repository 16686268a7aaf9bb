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

// encodeLink encodes a link for the links bucket.
func encodeLink(l *link.Link) ([]byte, error) {
	out, err := l.MarshalMsg(append(make([]byte, 0, 1+l.Msgsize()), recordMsgpack))
	if err != nil {
		return nil, fmt.Errorf("encode link %s: %w", l.AccountID, err)
	}
	return out, nil
}

// decodeLink reads a stored link in either format.
func decodeLink(v []byte, l *link.Link) error {
	switch {
	case len(v) == 0:
		return errors.New("decode link: empty record")
	case v[0] == recordMsgpack:
		if _, err := l.UnmarshalMsg(v[1:]); err != nil {
			return fmt.Errorf("decode link: %w", err)
		}
		return nil
	}
	return json.Unmarshal(v, l)
}

// encodeMessage encodes a queued message for its queue's bucket.
func encodeMessage(m *link.Message) ([]byte, error) {
	out, err := m.MarshalMsg(append(make([]byte, 0, 1+m.Msgsize()), recordMsgpack))
	if err != nil {
		return nil, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	return out, nil
}

// decodeMessage reads a queued message in either format.
func decodeMessage(v []byte, m *link.Message) error {
	switch {
	case len(v) == 0:
		return errors.New("decode message: empty record")
	case v[0] == recordMsgpack:
		if _, err := m.UnmarshalMsg(v[1:]); err != nil {
			return fmt.Errorf("decode message: %w", err)
		}
		return nil
	}
	return json.Unmarshal(v, m)
}
