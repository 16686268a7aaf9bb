package guard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ussdlink/ussdlink/guard"
)

func TestClientIP(t *testing.T) {
	tests := []struct {
		name   string
		header string   // the trusted proxy header; empty: none
		lines  []string // X-Forwarded-For lines the request carries
		want   string   // the address, or "" when none is read
	}{
		{name: "no proxy header: the connection's address", lines: []string{"203.0.113.9"}, want: "0.0.0.0"},
		{name: "one address", header: "X-Forwarded-For", lines: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "the rightmost entry", header: "X-Forwarded-For", lines: []string{"10.20.1.1, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "the last line's rightmost entry", header: "X-Forwarded-For", lines: []string{"203.0.113.9", "198.51.100.1, 10.20.1.1"}, want: "10.20.1.1"},
		{name: "an address with a port", header: "X-Forwarded-For", lines: []string{"203.0.113.9:4711"}, want: "203.0.113.9"},
		{name: "a bracketed IPv6 address", header: "X-Forwarded-For", lines: []string{"[2001:db8::1]"}, want: "2001:db8::1"},
		{name: "an IPv4-mapped IPv6 address", header: "X-Forwarded-For", lines: []string{"::ffff:203.0.113.9"}, want: "203.0.113.9"},
		{name: "a missing header", header: "X-Forwarded-For", want: ""},
		{name: "an unreadable entry", header: "X-Forwarded-For", lines: []string{"203.0.113.9, unknown"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fiber.New()
			app.Get("/", func(c *fiber.Ctx) error {
				ip, ok := guard.ClientIP(c, tt.header)
				if !ok {
					return c.SendString("")
				}
				return c.SendString(ip.String())
			})
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, l := range tt.lines {
				req.Header.Add("X-Forwarded-For", l)
			}
			if _, _, got := do(t, app, req); got != tt.want {
				t.Errorf("ClientIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		per   int
		after time.Duration // time from the first three events to the next one
		want  []bool        // the first three events, then the next one
	}{
		{name: "within the limit", per: 4, after: 0, want: []bool{true, true, true, true}},
		{name: "over the limit", per: 2, after: 0, want: []bool{true, true, false, false}},
		{name: "the window slides on", per: 2, after: 2 * time.Minute, want: []bool{true, true, false, true}},
		{name: "the previous window still weighs", per: 2, after: time.Minute, want: []bool{true, true, false, false}},
		{name: "disabled", per: 0, after: 0, want: []bool{true, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			l := guard.NewLimiter(tt.per, func() time.Time { return now })
			var got []bool
			for range 3 {
				got = append(got, l.Allow("+2348031000007"))
			}
			now = now.Add(tt.after)
			got = append(got, l.Allow("+2348031000007"))
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Fatalf("Allow = %v, want %v", got, tt.want)
				}
			}
			if tt.per > 0 && !l.Allow("+2348031000008") {
				t.Errorf("another key was refused")
			}
		})
	}
}
