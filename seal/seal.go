package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a seal key: AES-256.
const KeySize = 32

// Sealer encrypts what users type (passwords, PINs, OTPs, answers) while it
// waits between screens, with AES-256-GCM. The session id is bound in as
// additional data, so a sealed value cannot be moved to another session.
//
// New values are sealed with the current key; values sealed with a
// previous key (one rotated out) are still opened, so a key can be rotated
// without asking anyone in the middle of a link to type again.
type Sealer struct {
	keys []sealKey // the current key first, then the previous ones
}

// sealKey is one AES-256-GCM key and its raw bytes (for derived keys).
type sealKey struct {
	aead cipher.AEAD
	raw  []byte
}

// New returns a Sealer for a 32-byte key, also opening values sealed
// under each of the previous keys.
func New(key []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) != KeySize {
			if i == 0 {
				return nil, fmt.Errorf("seal key: want %d bytes, got %d", KeySize, len(k))
			}
			return nil, fmt.Errorf("previous seal key %d: want %d bytes, got %d", i, KeySize, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seal key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal key: %w", err)
		}
		s.keys = append(s.keys, sealKey{aead: aead, raw: append([]byte(nil), k...)})
	}
	return s, nil
}

// Seal encrypts plain with the current key under a fresh random nonce.
func (s *Sealer) Seal(plain, aad []byte) []byte {
	aead := s.keys[0].aead
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the platform cannot make keys: nothing is safe
	}
	return aead.Seal(nonce, nonce, plain, aad)
}

// ErrUnsealable means a sealed value was altered, or sealed under a key the
// Sealer does not hold.
var ErrUnsealable = errors.New("sealed value cannot be opened")

// Open decrypts what Seal produced with the same additional data, under
// the current key or a previous one.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	for _, k := range s.keys {
		n := k.aead.NonceSize()
		if len(sealed) < n+k.aead.Overhead() {
			return nil, ErrUnsealable
		}
		if plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], aad); err == nil {
			return plain, nil
		}
	}
	return nil, ErrUnsealable
}

// Derive returns a key for another purpose (such as hashing transcripts),
// so the seal key itself is used for one thing only.
func (s *Sealer) Derive(purpose string) []byte {
	return derive(s.keys[0].raw, purpose)
}

// DerivePrevious returns the keys Derive gave for a purpose under each
// previous seal key, so what they keyed can still be checked.
func (s *Sealer) DerivePrevious(purpose string) [][]byte {
	out := make([][]byte, 0, len(s.keys)-1)
	for _, k := range s.keys[1:] {
		out = append(out, derive(k.raw, purpose))
	}
	return out
}

// derive is HMAC-SHA256 of the purpose under a key.
func derive(key []byte, purpose string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("ussdlink/" + purpose))
	return h.Sum(nil)
}

// LoadKey returns the seal key: the configured one (base64 or hex of 32
// bytes) when set, else the one in the key file, which is created with mode
// 0600 when missing. generated reports that a new key file was written.
func LoadKey(configured, keyFile string) (key []byte, generated bool, err error) {
	if configured = strings.TrimSpace(configured); configured != "" {
		key, err := decodeKey(configured)
		return key, false, err
	}
	data, err := os.ReadFile(keyFile)
	switch {
	case err == nil:
		key, err := decodeKey(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, false, fmt.Errorf("key file %s: %w", keyFile, err)
		}
		return key, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, fmt.Errorf("read key file: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("generate seal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, false, fmt.Errorf("key file dir: %w", err)
	}
	f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create key file: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, false, fmt.Errorf("write key file: %w", err)
	}
	return key, true, nil
}

// DecodeKeys reads seal keys written as base64 or hex, such as those of
// [security] previous-seal-keys; blank entries are skipped.
func DecodeKeys(written []string) ([][]byte, error) {
	var out [][]byte
	for i, w := range written {
		if strings.TrimSpace(w) == "" {
			continue
		}
		k, err := decodeKey(strings.TrimSpace(w))
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// decodeKey reads a 32-byte key written as base64 or hex.
func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("seal key must be %d bytes, base64 or hex", KeySize)
}
