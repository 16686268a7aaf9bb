package store

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
type Sealer struct {
	aead cipher.AEAD
	key  []byte
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal key: want %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &Sealer{aead: aead, key: append([]byte(nil), key...)}, nil
}

// Seal encrypts plain under a fresh random nonce.
func (s *Sealer) Seal(plain, aad []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the platform cannot make keys: nothing is safe
	}
	return s.aead.Seal(nonce, nonce, plain, aad)
}

// ErrUnsealable means a sealed value was altered, or sealed under another key.
var ErrUnsealable = errors.New("sealed value cannot be opened")

// Open decrypts what Seal produced with the same additional data.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrUnsealable
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrUnsealable
	}
	return plain, nil
}

// Derive returns a key for another purpose (such as hashing transcripts),
// so the seal key itself is used for one thing only.
func (s *Sealer) Derive(purpose string) []byte {
	h := hmac.New(sha256.New, s.key)
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
