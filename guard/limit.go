package guard

import (
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Limiter counts events per key (a phone, an address) over a sliding
// minute, approximated from the current and previous fixed windows, in
// memory bounded by the keys seen in the last two windows.
type Limiter struct {
	per    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	start time.Time
	cur   map[string]int
	prev  map[string]int
}

// NewLimiter allows per events a minute for each key; per <= 0 disables
// limiting (a nil *Limiter allows everything).
func NewLimiter(per int, now func() time.Time) *Limiter {
	if per <= 0 {
		return nil
	}
	return &Limiter{per: per, window: time.Minute, now: now, cur: map[string]int{}, prev: map[string]int{}}
}

// Allow records an event for key and reports whether it is within the limit.
// An event over the limit is not counted, so a caller that backs off is let
// through again as the window slides.
func (l *Limiter) Allow(key string) bool {
	if l == nil {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch elapsed := now.Sub(l.start); {
	case elapsed >= 2*l.window || elapsed < 0:
		l.prev, l.cur = map[string]int{}, map[string]int{}
		l.start = now.Truncate(l.window)
	case elapsed >= l.window:
		l.prev, l.cur = l.cur, map[string]int{}
		l.start = l.start.Add(l.window)
	}
	weight := 1 - float64(now.Sub(l.start))/float64(l.window)
	if float64(l.prev[key])*weight+float64(l.cur[key]) >= float64(l.per) {
		return false
	}
	l.cur[key]++
	return true
}

// RateByIP limits requests per caller address with l, answering 429 over
// the limit. The address is the connection's, or the rightmost entry of
// proxyHeader when one is configured (see ClientIP). refused, when set, is
// told of every refusal (for metrics).
func RateByIP(l *Limiter, proxyHeader string, refused ...func()) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if l == nil {
			return c.Next()
		}
		ip, _ := ClientIP(c, proxyHeader)
		if !l.Allow(ip.String()) {
			for _, f := range refused {
				f()
			}
			c.Set(fiber.HeaderRetryAfter, "60")
			return c.Status(fiber.StatusTooManyRequests).JSON(fiber.Map{
				"error": fiber.Map{"code": "rate_limited", "message": "too many requests; retry in a minute"},
			})
		}
		return c.Next()
	}
}
