package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A page on another site the operator's browser visits can POST a
// "simple" request to the loopback admin listener: it must not change
// the log level (nor, through /phone/, send callbacks with the token).
func TestCrossSitePostCannotChangeTheLevel(t *testing.T) {
	lvl := NewLevel(io.Discard, zerolog.InfoLevel)
	h := Handler(Options{Level: lvl})
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8081/log/level", strings.NewReader("trace"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if got := lvl.Get(); got != zerolog.InfoLevel {
		t.Errorf("a cross-site POST set the level to %v (status %d)", got, w.Code)
	}
}

// Only the named levels are accepted: a number such as "100" silences
// every line, errors included, though the answer says it must be a name.
func TestNumericLevelIsRefused(t *testing.T) {
	lvl := NewLevel(io.Discard, zerolog.InfoLevel)
	req := httptest.NewRequest(http.MethodPut, "/log/level?level=100", nil)
	w := httptest.NewRecorder()
	lvl.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest || lvl.Get() != zerolog.InfoLevel {
		t.Errorf("PUT level=100: status %d, level now %v; want 400 and info", w.Code, lvl.Get())
	}
}
