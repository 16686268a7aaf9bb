package menus

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// Mark remembers a transcript without keeping it: its length and a keyed
// hash. The transcript holds everything the user typed, passwords included,
// so it is never stored; the key stays out of the database, so the hash
// cannot be brute-forced from a stolen file.
type Mark struct {
	Len int    `json:"len"`
	Sum []byte `json:"sum"`
}

// ErrNotExtension means a cumulative transcript does not continue the one
// the session remembers: a forged or confused callback.
var ErrNotExtension = errors.New("transcript does not extend the previous one")

// marker computes Marks under one key.
type marker struct{ key []byte }

// mark returns the Mark of a whole transcript.
func (m marker) mark(transcript string) Mark {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte(transcript))
	return Mark{Len: len(transcript), Sum: h.Sum(nil)}
}

// next works out this hop's input from a cumulative transcript and the
// previous Mark: the text after the remembered prefix and its "*" separator.
// It never splits on "*", so an input may itself contain "*". repeat is true
// when the transcript is the remembered one.
func (m marker) next(prev Mark, transcript string) (input string, repeat bool, err error) {
	n := prev.Len
	switch {
	case n < 0 || len(transcript) < n: // n < 0: a corrupt Mark, refused rather than a panic
		return "", false, ErrNotExtension
	case len(transcript) == n:
		if hmac.Equal(m.mark(transcript).Sum, prev.Sum) {
			return "", true, nil
		}
		return "", false, ErrNotExtension
	}
	if !hmac.Equal(m.mark(transcript[:n]).Sum, prev.Sum) {
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
	h := hmac.New(sha256.New, m.key)
	h.Write(prev.Sum)
	h.Write([]byte{0})
	h.Write([]byte(input))
	return Mark{Len: prev.Len + 1 + len(input), Sum: h.Sum(nil)}
}
