package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// encodings lists the forms a leaked value could take in a file or a log.
func encodings(secret string) []string {
	j, _ := json.Marshal(secret)
	out := []string{secret, strings.Trim(string(j), `"`), url.QueryEscape(secret), hex.EncodeToString([]byte(secret))}
	for shift := 0; shift < 3; shift++ {
		b := []byte(strings.Repeat("x", shift) + secret)
		enc := base64.StdEncoding.EncodeToString(b)
		// Keep the part of the encoding that depends only on the secret.
		start := (shift*4 + 2) / 3
		if start+8 < len(enc)-4 {
			out = append(out, enc[start+1:len(enc)-4])
		}
	}
	return out
}

// leaks returns the secrets found in data, in any of their encodings.
func leaks(data []byte, secrets []string) []string {
	var found []string
	for _, s := range secrets {
		for _, e := range encodings(s) {
			if len(e) >= 4 && bytes.Contains(data, []byte(e)) {
				found = append(found, fmt.Sprintf("%q as %q", s, e))
				break
			}
		}
	}
	return found
}

// typedSecrets are the distinctive values the secrecy tests type. The
// sandbox's PIN, 1234, is typed too but is no distinctive string (the OTP
// hint "080****1234" holds it); every field is sealed by the same code.
var typedSecrets = []string{"pass_good", "p*ss #good", "123456", "lagos-city-secret", "Wr0ng-P@ss*#"}

func TestNothingSecretAtRest(t *testing.T) {
	m, _ := startGateway(t, nil)
	// Complete flows, a refused answer, and abandoned flows that leave typed
	// values sealed between screens.
	walk(t, m, "+2348050000001", "1", "user_good", "pass_good")
	walk(t, m, "+2348050000002", "1", "user_star", "p*ss #good")
	walk(t, m, "+2348050000003", "1", "user_otp", "pass_good", "123456")
	walk(t, m, "+2348050000004", "1", "user_question", "pass_good", "lagos-city-secret", "lagos")
	walk(t, m, "+2348050000005", "1", "user_good", "Wr0ng-P@ss*#", "user_good", "pass_good")
	abandoned := walk(t, m, "+2348050000006", "stanbic", "user_good", "pass_good") // the one match opens; PIN never typed
	if !strings.Contains(abandoned.screen, "PIN") {
		t.Fatalf("abandoned flow is not at the PIN prompt: %s", abandoned.screen)
	}
	walk(t, m, "+2348050000007", "access", "1", "2", "user_good", "1234") // mobile PIN, linked
	path := m.Config.Store.Path
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.db, m.app, m.engine = nil, nil, nil // closed: the cleanup must not close again
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if found := leaks(raw, typedSecrets); len(found) > 0 {
		t.Errorf("the database file holds typed secrets: %v", found)
	}
	for _, transcript := range []string{"1*user_good*pass_good", "user_otp*pass_good"} {
		if bytes.Contains(raw, []byte(transcript)) {
			t.Errorf("the database file holds a transcript %q", transcript)
		}
	}
	info, err := os.Stat(filepath.Join(filepath.Dir(path), "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("seal key file mode = %v, want 0600", mode)
	}
}

func TestNothingSecretInLogsOrErrors(t *testing.T) {
	// Mono answers a refused login by echoing the request, the worst case.
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_logs"})
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/connect/login" {
			body := new(bytes.Buffer)
			body.ReadFrom(r.Body)
			if strings.Contains(body.String(), "echo_user") {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"status":400,"message":"bad credentials in %s"}`, strings.ReplaceAll(body.String(), `"`, `'`))
				return
			}
			r.Body = io.NopCloser(body)
		}
		sb.ServeHTTP(w, r)
	}))
	defer echo.Close()
	m, logs := startGateway(t, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = echo.URL, "test_sk_logs", "app"
		c.Log.Level = "debug"
	})
	phones := []string{"+2348060000001", "+2348060000002", "+2348060000003", "+2348060000004"}
	walk(t, m, phones[0], "1", "user_otp", "pass_good", "123456")
	walk(t, m, phones[1], "1", "echo_user", "Wr0ng-P@ss*#")
	walk(t, m, phones[2], "1", "user_question", "pass_good", "lagos-city-secret", "lagos")
	walk(t, m, phones[3], "1", "user_star", "p*ss #good")
	out := []byte(logs.String())
	if found := leaks(out, typedSecrets); len(found) > 0 {
		t.Errorf("logs hold typed secrets: %v", found)
	}
	for _, p := range phones {
		if bytes.Contains(out, []byte(p)) || bytes.Contains(out, []byte(strings.TrimPrefix(p, "+"))) {
			t.Errorf("logs hold the full phone number %s", p)
		}
	}
	if !bytes.Contains(out, []byte("+234*******001")) {
		t.Errorf("logs do not name phones masked: %s", out)
	}
	if !bytes.Contains(out, []byte("bad credentials in")) {
		t.Errorf("Mono's refusal was not logged at all")
	}
}
