package partner

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// testSecret is a 32-byte Standard Webhooks secret.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="

func mustSigner(t *testing.T, secret string) *Signer {
	t.Helper()
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func TestNewSignerAcceptsStandardSecretsAndRefusesWeakOnes(t *testing.T) {
	key24 := base64.StdEncoding.EncodeToString(make([]byte, 24))
	key23 := base64.StdEncoding.EncodeToString(make([]byte, 23))
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"whsec_ prefixed", testSecret, true},
		{"bare base64", strings.TrimPrefix(testSecret, "whsec_"), true},
		{"24-byte key, the minimum", "whsec_" + key24, true},
		{"surrounding whitespace from a config file", " " + testSecret + "\n", true},
		{"empty", "", false},
		{"prefix only", "whsec_", false},
		{"not base64", "whsec_not*base64!", false},
		{"url-safe alphabet is not the standard one", "whsec_" + strings.Repeat("-_", 16), false},
		{"23-byte key, too short", "whsec_" + key23, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.secret)
			if tt.ok != (err == nil) {
				t.Fatalf("NewSigner(%q) error = %v, want ok %v", tt.secret, err, tt.ok)
			}
			if err != nil {
				if s != nil {
					t.Error("a refused secret still returned a signer")
				}
				if secret := strings.TrimPrefix(strings.TrimSpace(tt.secret), "whsec_"); len(secret) > 4 && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes the secret", err)
				}
			}
		})
	}
}

func TestGenerateSecretMakesDistinct32ByteSecretsThatSign(t *testing.T) {
	seen := map[string]bool{}
	for range 8 {
		secret := GenerateSecret()
		if !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("secret %q lacks the whsec_ prefix", secret)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || len(key) != 32 {
			t.Fatalf("secret decodes to %d bytes (err %v), want 32", len(key), err)
		}
		if seen[secret] {
			t.Fatal("GenerateSecret repeated a secret")
		}
		seen[secret] = true
		mustSigner(t, secret)
	}
}

func TestSignMatchesStandardWebhooksSign(t *testing.T) {
	lib, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	s := mustSigner(t, testSecret)
	tests := []struct {
		name string
		id   string
		at   time.Time
		body []byte
	}{
		{"account linked", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Unix(1674087231, 0), []byte(`{"type":"ACCOUNT_LINKED","timestamp":"2023-01-19T00:13:51Z","data":{"account_id":"abc"}}`)},
		{"empty body", "msg_1", time.Unix(1700000000, 0), nil},
		{"sub-second time is signed in whole seconds", "msg_1", time.Unix(1700000000, 999_999_999), []byte(`{}`)},
		{"unicode and newlines in the body", "msg_ñ", time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("WAT", 3600)), []byte("{\"name\":\"Ọlá\"}\n")},
		{"binary body", "x", time.Unix(0, 0), []byte{0, 1, 2, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := lib.Sign(tt.id, tt.at, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Sign(tt.id, tt.at, tt.body); got != want {
				t.Errorf("Sign = %q, Standard Webhooks signs %q", got, want)
			}
			h := s.Headers(tt.id, tt.at, tt.body)
			if h.Get(standardwebhooks.HeaderWebhookID) != tt.id ||
				h.Get(standardwebhooks.HeaderWebhookTimestamp) != strconv.FormatInt(tt.at.Unix(), 10) ||
				h.Get(standardwebhooks.HeaderWebhookSignature) != want {
				t.Errorf("Headers = %v", h)
			}
			if err := lib.VerifyIgnoringTimestamp(tt.body, h); err != nil {
				t.Errorf("Standard Webhooks refuses Headers: %v", err)
			}
		})
	}
}

func TestHeadersVerifyOnlyUnderTheSameSecretAndBody(t *testing.T) {
	s := mustSigner(t, testSecret)
	body := []byte(`{"type":"ACCOUNT_LINKED"}`)
	h := s.Headers("msg_1", time.Now(), body)
	other := GenerateSecret()
	tests := []struct {
		name   string
		secret string
		body   []byte
		header http.Header
		ok     bool
	}{
		{"same secret and body", testSecret, body, h, true},
		{"another secret", other, body, h, false},
		{"tampered body", testSecret, []byte(`{"type":"ACCOUNT_UNLINKED"}`), h, false},
		{"swapped id", testSecret, body, withHeader(h, "webhook-id", "msg_2"), false},
		{"stale timestamp", testSecret, body, s.Headers("msg_1", time.Now().Add(-time.Hour), body), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lib, err := standardwebhooks.NewWebhook(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := lib.Verify(tt.body, tt.header); (err == nil) != tt.ok {
				t.Errorf("Verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func withHeader(h http.Header, k, v string) http.Header {
	h = h.Clone()
	h.Set(k, v)
	return h
}
