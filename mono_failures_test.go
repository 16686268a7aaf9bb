package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

func TestExternalMonoFailuresEndWithClearScreens(t *testing.T) {
	const key = "test_sk_external"
	cases := []struct {
		name   string
		path   string // the endpoint that fails; "" fails none
		status int
		want   string
		calls  int64 // requests the failing endpoint must have seen
	}{
		{name: "an external Mono at base-url links like the sandbox", want: "is linked"},
		{name: "Mono 5xx on login is retried then ends with a clear screen", path: "/v1/connect/login", status: 503, want: "could not be reached", calls: 3},
		{name: "a refused key ends as service unavailable without retry", path: "/v1/connect/session", status: 401, want: "Service unavailable", calls: 1},
		{name: "no Partners add-on ends as service unavailable", path: "/v1/connect/session", status: 403, want: "Service unavailable", calls: 1},
		{name: "a failed code exchange ends with a clear screen", path: "/account/auth", status: 500, want: "could not be reached", calls: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Options{SecretKey: key})
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == tc.path {
					calls.Add(1)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					w.Write([]byte(`{"status":"failed","message":"upstream boom at 10.1.2.3"}`))
					return
				}
				sb.ServeHTTP(w, r)
			}))
			defer srv.Close()
			m, logs := startGateway(t, func(c *Config) {
				c.Mono.BaseURL = srv.URL
				c.Mono.SecretKey = key
				c.Mono.AppID = "app_external"
				c.Mono.Timeout = Duration{5 * time.Second}
			})
			h := newHandset(t, m, "+2348039990000")
			h.dial()
			h.choose("GTBank")
			h.send("user_good")
			h.send("pass_good")
			h.expect(tc.want)
			if !h.ended {
				t.Fatalf("session did not end: %s", h.screen)
			}
			if strings.Contains(h.screen, "boom") || strings.Contains(h.screen, "503") {
				t.Errorf("screen shows Mono's raw error: %s", h.screen)
			}
			if got := calls.Load(); got != tc.calls {
				t.Errorf("failing endpoint saw %d requests, want %d", got, tc.calls)
			}
			if tc.status != 0 && !strings.Contains(logs.String(), "boom") {
				t.Errorf("Mono's message was not kept in the logs")
			}
		})
	}
}

// lossyMono is Mono behind a network that loses answers: the first call to
// a chosen path reaches the sandbox, which acts on it, and then its answer
// is lost — the connection drops, or a proxy answers 502.
type lossyMono struct {
	sb   *sandbox.Sandbox
	path string
	lose func(w http.ResponseWriter)

	mu    sync.Mutex
	lost  int
	calls map[string]int
}

func (l *lossyMono) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.calls[r.URL.Path]++
	drop := r.URL.Path == l.path && l.lost == 0
	if drop {
		l.lost++
	}
	l.mu.Unlock()
	if !drop {
		l.sb.ServeHTTP(w, r)
		return
	}
	l.sb.ServeHTTP(httptest.NewRecorder(), r) // Mono acts on it…
	l.lose(w)                                 // …and its answer never arrives
}

// dropAnswer closes the connection without an answer.
func dropAnswer(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

// proxyError is a proxy in front of Mono answering 502.
func proxyError(w http.ResponseWriter) {
	w.WriteHeader(http.StatusBadGateway)
	w.Write([]byte("<html>502 Bad Gateway</html>"))
}

func TestALostAnswerFromMonoIsNeverTheUsersFault(t *testing.T) {
	tests := []struct {
		name  string
		path  string
		lose  func(http.ResponseWriter)
		steps []step
	}{
		{"login answer dropped", "/v1/connect/login", dropAnswer, []step{
			{typed: "1"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true}}},
		{"login answer lost behind a proxy", "/v1/connect/login", proxyError, []step{
			{typed: "1"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true}}},
		{"OTP commit answer dropped: the bank sends a new code", "/v1/connect/commit", dropAnswer, []step{
			{typed: "1"}, {typed: "user_otp"}, {typed: "pass_good", want: []string{"OTP"}},
			{typed: "123456", want: []string{"new code", "OTP"}},
			{typed: "123456", want: []string{"is linked"}, end: true}}},
		{"account commit answer lost: the accounts are offered again", "/v1/connect/commit", proxyError, []step{
			{typed: "1"}, {typed: "user_multi"}, {typed: "pass_good", want: []string{"Choose the account"}},
			{typed: "2", want: []string{"Choose the account"}},
			{typed: "2", want: []string{"is linked"}, end: true}}},
		{"code exchange answer dropped", "/account/auth", dropAnswer, []step{
			{typed: "1"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lossy := &lossyMono{sb: sandbox.New(sandbox.Options{SecretKey: "test_sk_lossy"}), path: tt.path, lose: tt.lose, calls: map[string]int{}}
			srv := httptest.NewServer(lossy)
			t.Cleanup(func() { srv.Close(); lossy.sb.Close() })
			m, logs := startGateway(t, func(c *Config) {
				c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = srv.URL, "test_sk_lossy", "app"
				c.Security.MaxLoginFailures = 1 // one refusal counted would lock the phone
			})
			const phone = "+2348091000001"
			h := newHandset(t, m, phone)
			walkSteps(t, h, m, tt.steps)
			if t.Failed() {
				t.Log(logs.String())
			}
			if lossy.lost != 1 {
				t.Fatalf("answers lost = %d, want 1", lossy.lost)
			}
			for _, refused := range []string{"Login failed", "Not accepted", "failed attempts", "paused"} {
				if strings.Contains(logs.String(), "\""+refused) {
					t.Errorf("a screen said %q", refused)
				}
			}
			n, err := m.db.LoginFailures(context.Background(), phone, time.Now().Add(-time.Hour))
			if err != nil || n != 0 {
				t.Errorf("refused logins recorded = %d, %v; want none", n, err)
			}
			// The phone can link again at once: nothing counted against it.
			again := newHandset(t, m, phone)
			walkSteps(t, again, m, []step{{typed: "1"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true}})
		})
	}
}
