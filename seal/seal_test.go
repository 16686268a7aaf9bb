package seal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/seal"
)

// testKey is a fixed 32-byte key, so failures are reproducible.
func testKey(fill byte) []byte {
	return bytes.Repeat([]byte{fill}, seal.KeySize)
}

func newSealer(t *testing.T, fill byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(testKey(fill))
	if err != nil {
		t.Fatalf("seal.New: %v", err)
	}
	return s
}

func TestSealOpenRoundTrips(t *testing.T) {
	s := newSealer(t, 0x11)
	for _, plain := range [][]byte{
		[]byte("S3cr3t-P@ss*#"),
		[]byte(""),
		bytes.Repeat([]byte("otp-918273"), 100),
	} {
		sealed := s.Seal(plain, []byte("ATUid_session1"))
		got, err := s.Open(sealed, []byte("ATUid_session1"))
		if err != nil {
			t.Fatalf("Open(%q): %v", plain, err)
		}
		if want := plain; !bytes.Equal(got, want) {
			t.Errorf("Open = %q, want %q", got, want)
		}
		if len(plain) > 0 && bytes.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plain text %q", plain)
		}
	}
}

func TestOpenRefusesTamperedOrMovedValues(t *testing.T) {
	s := newSealer(t, 0x11)
	plain := []byte("S3cr3t-P@ss*#")
	aad := []byte("session-A")
	sealed := s.Seal(plain, aad)

	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		sealed []byte
		aad    []byte
	}{
		{"another session id as additional data", sealed, []byte("session-B")},
		{"empty additional data", sealed, nil},
		{"bit flipped in the nonce", flipped(0), aad},
		{"bit flipped in the cipher text", flipped(len(sealed) / 2), aad},
		{"bit flipped in the tag", flipped(len(sealed) - 1), aad},
		{"truncated", sealed[:len(sealed)-1], aad},
		{"shorter than nonce and tag", sealed[:10], aad},
		{"empty", nil, aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open(tt.sealed, tt.aad)
			if !errors.Is(err, seal.ErrUnsealable) {
				t.Errorf("Open error = %v, want ErrUnsealable", err)
			}
			if got != nil {
				t.Errorf("Open returned %q alongside the error, want nil", got)
			}
		})
	}
}

func TestOpenUnderAnotherKeyFails(t *testing.T) {
	sealed := newSealer(t, 0x11).Seal([]byte("otp-918273"), []byte("s1"))
	_, err := newSealer(t, 0x22).Open(sealed, []byte("s1"))
	if got, want := err, seal.ErrUnsealable; !errors.Is(got, want) {
		t.Errorf("Open under another key: error = %v, want %v", got, want)
	}
}

func TestNewSealerRefusesWrongKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := seal.New(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d-byte key) = nil error, want a refusal", n)
		}
	}
}

func TestSealUsesAFreshNonceEachTime(t *testing.T) {
	s := newSealer(t, 0x11)
	plain, aad := []byte("S3cr3t-P@ss*#"), []byte("s1")
	a, b := s.Seal(plain, aad), s.Seal(plain, aad)
	if bytes.Equal(a, b) {
		t.Fatalf("two Seals of the same plain text are identical: %x", a)
	}
	if bytes.Equal(a[:12], b[:12]) {
		t.Errorf("two Seals share a nonce: %x", a[:12])
	}
}

func TestDeriveIsDeterministicPerPurpose(t *testing.T) {
	key := testKey(0x11)
	s := newSealer(t, 0x11)
	transcript, again, other := s.Derive("transcript"), s.Derive("transcript"), s.Derive("outbox")

	if got, want := again, transcript; !bytes.Equal(got, want) {
		t.Errorf("Derive(transcript) twice: %x then %x", want, got)
	}
	if bytes.Equal(transcript, other) {
		t.Errorf("Derive gives the same key for two purposes: %x", other)
	}
	if bytes.Equal(transcript, key) || bytes.Equal(other, key) {
		t.Error("Derive returned the seal key itself")
	}
	if got, want := len(transcript), 32; got != want {
		t.Errorf("len(Derive) = %d, want %d", got, want)
	}
	if got := newSealer(t, 0x22).Derive("transcript"); bytes.Equal(got, transcript) {
		t.Error("Derive gives the same key under two seal keys")
	}
	if got, want := newSealer(t, 0x11).Derive("transcript"), transcript; !bytes.Equal(got, want) {
		t.Errorf("Derive differs between two Sealers of one key: %x vs %x", got, want)
	}
}

func TestLoadKeyAcceptsConfiguredKey(t *testing.T) {
	key := make([]byte, seal.KeySize)
	for i := range key {
		key[i] = byte(i*7 + 3) // includes bytes that give '+', '/' in base64
	}
	keyFile := filepath.Join(t.TempDir(), "never", "seal.key")
	tests := []struct {
		name       string
		configured string
	}{
		{"base64", base64.StdEncoding.EncodeToString(key)},
		{"base64 without padding", base64.RawStdEncoding.EncodeToString(key)},
		{"url-safe base64", base64.URLEncoding.EncodeToString(key)},
		{"hex", hex.EncodeToString(key)},
		{"upper-case hex", strings.ToUpper(hex.EncodeToString(key))},
		{"surrounded by white space", "  " + hex.EncodeToString(key) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, generated, err := seal.LoadKey(tt.configured, keyFile)
			if err != nil {
				t.Fatalf("LoadKey: %v", err)
			}
			if want := key; !bytes.Equal(got, want) {
				t.Errorf("LoadKey = %x, want %x", got, want)
			}
			if generated {
				t.Error("generated = true for a configured key")
			}
		})
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was touched although a key was configured: stat error %v", err)
	}
}

func TestLoadKeyRefusesConfiguredKeyOfWrongLength(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "seal.key")
	for _, configured := range []string{
		hex.EncodeToString(make([]byte, 16)),
		hex.EncodeToString(make([]byte, 31)),
		hex.EncodeToString(make([]byte, 33)),
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 24)),
		// 48 bytes: not all zeros, whose base64 ("AAAA…", 64 characters) is also 32 bytes of hex.
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 48)),
		"not a key at all",
	} {
		if key, _, err := seal.LoadKey(configured, keyFile); err == nil {
			t.Errorf("LoadKey(%q) = %x, nil; want an error", configured, key)
		}
	}
}

func TestLoadKeyCreatesKeyFileOnceWithMode0600(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "state", "seal.key")

	first, generated, err := seal.LoadKey("", keyFile)
	if err != nil {
		t.Fatalf("first LoadKey: %v", err)
	}
	if !generated {
		t.Error("first LoadKey: generated = false, want true")
	}
	if got, want := len(first), seal.KeySize; got != want {
		t.Errorf("generated key is %d bytes, want %d", got, want)
	}
	if bytes.Equal(first, make([]byte, seal.KeySize)) {
		t.Error("generated key is all zeros")
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("key file mode = %v, want %v", got, want)
	}

	second, generated, err := seal.LoadKey("", keyFile)
	if err != nil {
		t.Fatalf("second LoadKey: %v", err)
	}
	if generated {
		t.Error("second LoadKey: generated = true, want false")
	}
	if got, want := second, first; !bytes.Equal(got, want) {
		t.Errorf("second LoadKey = %x, want the first key %x", got, want)
	}
	if _, err := seal.New(second); err != nil {
		t.Errorf("NewSealer(loaded key): %v", err)
	}
}

func TestLoadKeyRefusesCorruptKeyFile(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":     "this is not a key\n",
		"empty":       "",
		"short hex":   hex.EncodeToString(make([]byte, 16)) + "\n",
		"long base64": base64.StdEncoding.EncodeToString(make([]byte, 40)) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "seal.key")
			if err := os.WriteFile(keyFile, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			key, generated, err := seal.LoadKey("", keyFile)
			if err == nil {
				t.Fatalf("LoadKey = %x, generated %v, nil error; want an error", key, generated)
			}
			data, _ := os.ReadFile(keyFile)
			if got, want := string(data), content; got != want {
				t.Errorf("corrupt key file was rewritten to %q", got)
			}
		})
	}
}
