package partner

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names and secret format
// (https://www.standardwebhooks.com).
const (
	webhookHeaderID        = "webhook-id"
	webhookHeaderTimestamp = "webhook-timestamp"
	webhookHeaderSignature = "webhook-signature"
	webhookSecretPrefix    = "whsec_"
	// webhookMinKeySize is the shortest signing key accepted: the standard
	// asks for secrets of 24 to 64 bytes.
	webhookMinKeySize = 24
	// webhookGeneratedKeySize is the size of the keys GenerateSecret makes.
	webhookGeneratedKeySize = 32
)

// Signer signs the webhooks sent to the partner the Standard Webhooks way
// (HMAC-SHA256 over id, timestamp and body), so the partner can check with
// any Standard Webhooks library that a webhook came from the gateway, was
// not altered and is not an old one replayed. Make one with NewSigner; it
// is safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer for a shared secret written as Standard
// Webhooks prints it, "whsec_" followed by the base64 of the key, or as the
// bare base64. It refuses an empty or undecodable secret and keys shorter
// than 24 bytes, which would be too easy to guess. Errors never quote the
// secret, so they are safe to log.
func NewSigner(secret string) (*Signer, error) {
	encoded := strings.TrimPrefix(strings.TrimSpace(secret), webhookSecretPrefix)
	if encoded == "" {
		return nil, errors.New("webhook secret: empty")
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, errors.New(`webhook secret: not "whsec_" + base64`)
	}
	if len(key) < webhookMinKeySize {
		return nil, fmt.Errorf("webhook secret: key is %d bytes, want at least %d", len(key), webhookMinKeySize)
	}
	return &Signer{key: key}, nil
}

// GenerateSecret returns a new random secret, "whsec_" + base64 of 32
// bytes, for an operator to configure in the gateway and give the partner.
func GenerateSecret() string {
	key := make([]byte, webhookGeneratedKeySize)
	rand.Read(key) // never fails: crypto/rand crashes the program instead
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the webhook-signature value for one webhook: "v1," and the
// base64 of HMAC-SHA256 over id, "." , the Unix time in seconds, "." and
// the body. The id and time are signed with the body so that neither can be
// swapped to replay it.
func (s *Signer) Sign(id string, at time.Time, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, at.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Headers returns the three Standard Webhooks headers for one webhook:
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature, ready
// to be added to the request that carries body.
func (s *Signer) Headers(id string, at time.Time, body []byte) http.Header {
	h := make(http.Header, 3)
	h.Set(webhookHeaderID, id)
	h.Set(webhookHeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(webhookHeaderSignature, s.Sign(id, at, body))
	return h
}
