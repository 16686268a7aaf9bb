package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ussdlink/ussdlink/link"
)

// A link is stored as a format byte and MessagePack (link.Link's
// generated code, keyed by its JSON names); links written before it are
// JSON, whose first byte is '{', and are read as such.
const linkMsgpack = 0x01

// encodeLink encodes a link for the links bucket.
func encodeLink(l *link.Link) ([]byte, error) {
	out, err := l.MarshalMsg(append(make([]byte, 0, 1+l.Msgsize()), linkMsgpack))
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
	case v[0] == linkMsgpack:
		if _, err := l.UnmarshalMsg(v[1:]); err != nil {
			return fmt.Errorf("decode link: %w", err)
		}
		return nil
	}
	return json.Unmarshal(v, l)
}
