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

func TestConcurrentWrongPasswordsOfOnePhoneReachTheBankAtMostTheLockoutLimit(t *testing.T) {
	var logins atomic.Int32
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_lockout"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/connect/login" {
			logins.Add(1)
		}
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); sb.Close() })
	const limit = 3
	m, _ := startGateway(t, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = srv.URL, "test_sk_lockout", "app"
		c.Security.MaxLoginFailures = limit
		c.Security.PhoneRate = 0
		c.USSD.ResumeWindow = Duration{time.Nanosecond} // each dial is a fresh session, not a resume offer
	})
	const phone = "+2348091000002"
	handsets := make([]*handset, 20)
	for i := range handsets {
		handsets[i] = newHandset(t, m, phone)
		if screen := handsets[i].dial(); handsets[i].ended {
			t.Fatalf("dial %d: %s", i, screen)
		}
		handsets[i].send("1")
		handsets[i].send("user_good")
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, h := range handsets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h.send("wrong-password")
		}()
	}
	close(start)
	wg.Wait()
	if n := logins.Load(); n > limit {
		t.Errorf("%d logins reached the bank from one phone; the lockout allows %d", n, limit)
	}
	locked := 0
	for _, h := range handsets {
		if h.ended && strings.Contains(h.screen, "paused") {
			locked++
		}
	}
	if locked < len(handsets)-limit {
		t.Errorf("%d sessions were told the phone is paused, want at least %d", locked, len(handsets)-limit)
	}
}
