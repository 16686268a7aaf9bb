package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

func TestBruteForceIsLockedOut(t *testing.T) {
	clock := &testClock{now: time.Now()}
	m, _ := startMain(t, func(m *Main) {
		m.Now = clock.Now
		m.Config.Security.PhoneRate = 12
		m.Config.Security.IPRate = 3
	})
	t.Run("three refused logins pause the phone's logins without a Mono call", func(t *testing.T) {
		const phone = "+2348080000001"
		h := walk(t, m, phone, "1", "user_good", "bad-1", "user_good", "bad-2", "user_good", "bad-3")
		h.expect("Too many failed attempts")
		before := m.sandboxCalls()
		h = walk(t, m, phone)
		h.expect("paused")
		if !h.ended {
			t.Fatalf("locked phone was offered a screen: %s", h.screen)
		}
		if after := m.sandboxCalls(); after != before {
			t.Errorf("a locked phone reached Mono: %d calls before, %d after", before, after)
		}
		clock.Advance(31 * time.Minute)
		h = walk(t, m, phone)
		h.expect("Choose bank")
	})
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
