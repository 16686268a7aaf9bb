package menus

//go:generate go tool msgp -file=transcript.go -o=transcript_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc"

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"sync"
)

// Mark remembers a transcript without keeping it: its length and a keyed
// hash. The transcript holds everything the user typed, passwords included,
// so it is never stored; the key stays out of the database, so the hash
// cannot be brute-forced from a stolen file.
type Mark struct {
	Len int    `json:"len"`
	Sum []byte `json:"sum"`
	// Key names the key the hash was made with (a short digest of it, not
	// the key), so a mark made under a key the gateway no longer holds is
	// told apart from a transcript that does not continue it.
	Key string `json:"key,omitempty"`
}

// ErrNotExtension means a cumulative transcript does not continue the one
// the session remembers: a forged or confused callback.
var ErrNotExtension = errors.New("transcript does not extend the previous one")

// ErrUncheckable means the remembered transcript was hashed under a key the
// gateway no longer holds (the seal key was lost): the hop can be neither
// trusted nor refused, and the conversation starts again.
var ErrUncheckable = errors.New("the previous transcript was hashed under a key no longer held")

// marker computes Marks under the current key and checks them under it or
// a previous one (the seal key rotated).
type marker struct{ keys []*markKey }

// markKey is one key Marks are made under, with its name and the HMACs
// made with it, kept for the next hop: every hop checks one Mark and
// makes another.
type markKey struct {
	key  []byte
	id   string    // keyID(key)
	macs sync.Pool // of hash.Hash: HMAC-SHA256 under key
}

// newMarker returns a marker for the current key and the previous ones.
func newMarker(current []byte, previous ...[]byte) marker {
	var m marker
	for _, k := range append([][]byte{current}, previous...) {
		mk := &markKey{key: k, id: keyID(k)}
		mk.macs.New = func() any { return hmac.New(sha256.New, k) }
		m.keys = append(m.keys, mk)
	}
	return m
}

// keyID names a key in Marks: the first bytes of a hash under it.
func keyID(key []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("mark key id"))
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// sum is the HMAC of parts under the key.
func (k *markKey) sum(parts ...[]byte) []byte {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	out := h.Sum(make([]byte, 0, sha256.Size))
	k.macs.Put(h)
	return out
}

// mark returns the Mark of a whole transcript, under the current key.
func (m marker) mark(transcript string) Mark {
	return markWith(m.keys[0], transcript)
}

// markWith returns the Mark of a transcript under one key.
func markWith(k *markKey, transcript string) Mark {
	return Mark{Len: len(transcript), Sum: k.sum([]byte(transcript)), Key: k.id}
}

// keyFor returns the key a Mark was made with. Marks from before keys were
// named are checked under each key held.
func (m marker) keyFor(prev Mark) ([]*markKey, error) {
	if prev.Key == "" {
		return m.keys, nil
	}
	for _, k := range m.keys {
		if k.id == prev.Key {
			return []*markKey{k}, nil
		}
	}
	return nil, ErrUncheckable
}

// matches reports whether transcript hashes to prev under one of keys.
func matches(keys []*markKey, prev Mark, transcript string) bool {
	for _, k := range keys {
		if hmac.Equal(k.sum([]byte(transcript)), prev.Sum) {
			return true
		}
	}
	return false
}

// next works out this hop's input from a cumulative transcript and the
// previous Mark: the text after the remembered prefix and its "*" separator.
// It never splits on "*", so an input may itself contain "*". repeat is true
// when the transcript is the remembered one.
func (m marker) next(prev Mark, transcript string) (input string, repeat bool, err error) {
	keys, err := m.keyFor(prev)
	if err != nil {
		return "", false, err
	}
	n := prev.Len
	switch {
	case n < 0 || len(transcript) < n: // n < 0: a corrupt Mark, refused rather than a panic
		return "", false, ErrNotExtension
	case len(transcript) == n:
		if matches(keys, prev, transcript) {
			return "", true, nil
		}
		return "", false, ErrNotExtension
	}
	if !matches(keys, prev, transcript[:n]) {
		return "", false, ErrNotExtension
	}
	if n == 0 {
		return transcript, false, nil
	}
	if transcript[n] != '*' {
		return "", false, ErrNotExtension
	}
	return transcript[n+1:], false, nil
}

// chain returns the Mark after appending one latest-input hop to prev, for
// dialects that send only the newest input.
func (m marker) chain(prev Mark, input string) Mark {
	k := m.keys[0]
	return Mark{Len: prev.Len + 1 + len(input), Sum: k.sum(prev.Sum, []byte{0}, []byte(input)), Key: k.id}
}
