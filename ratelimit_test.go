package main

import (
	"net/http"
	"testing"
	"time"
)

func TestBruteForceIsRateLimited(t *testing.T) {
	clock := &testClock{now: time.Now()}
	m, _ := startMain(t, func(m *Main) {
		m.Now = clock.Now
		m.Config.Security.PhoneRate = 12
		m.Config.Security.IPRate = 3
	})
	t.Run("a phone over its hop rate gets a polite END and changes nothing", func(t *testing.T) {
		const phone = "+2348080000002"
		h := walk(t, m, phone, "98", "0", "98", "0", "98", "0", "98", "0", "98", "0", "98") // 12 hops
		id := h.session
		stored, _ := storedSession(m, id)
		h.send("0")
		h.expect("Too many requests")
		if !h.ended {
			t.Fatalf("over the rate, the session goes on: %s", h.screen)
		}
		after, _ := storedSession(m, id)
		if after.Hops != stored.Hops || after.State != stored.State {
			t.Errorf("a refused hop changed the session: %d→%d hops", stored.Hops, after.Hops)
		}
		clock.Advance(2 * time.Minute)
		walk(t, m, phone).expect("Choose bank")
	})
	t.Run("an address over its rate on the partner routes gets 429", func(t *testing.T) {
		var codes []int
		for range 5 {
			resp, err := http.Get(m.URL() + "/v1/links/none")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		if codes[2] == http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests || codes[4] != http.StatusTooManyRequests {
			t.Errorf("statuses = %v, want 429 from the fourth on", codes)
		}
	})
}

func TestRateLimitsOfZeroAreOff(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) { c.Security.PhoneRate, c.Security.IPRate = 0, 0 })
	h := newHandset(t, m, "+2348080000009")
	h.dial()
	for range 40 {
		h.send("98")
		h.send("0")
	}
	h.expect("Choose bank")
	for range 20 {
		resp, err := http.Get(m.URL() + "/v1/none")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatal("ip-rate 0 still limits")
		}
	}
}
