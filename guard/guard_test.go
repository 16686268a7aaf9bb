package guard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/guard"
)

// do serves req on app and returns the status, content type and body.
func do(t *testing.T, app *fiber.App, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("app.Test: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestEveryLineOfTheProxyHeaderIsRead(t *testing.T) {
	allow, _ := guard.ParsePrefixes([]string{"10.20.0.0/16"})
	auth := guard.CallbackAuth{Allow: allow, ProxyHeader: "X-Forwarded-For"}
	limiter := guard.NewLimiter(2, time.Now)
	app := fiber.New()
	app.Get("/auth", auth.Middleware(zerolog.Nop()), func(c *fiber.Ctx) error { return c.SendString("in") })
	app.Get("/rate", guard.RateByIP(limiter, "X-Forwarded-For"), func(c *fiber.Ctx) error { return c.SendString("in") })
	get := func(path string, lines ...string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, l := range lines {
			req.Header.Add("X-Forwarded-For", l)
		}
		status, _, _ := do(t, app, req)
		return status
	}
	if got := get("/auth", "10.20.1.1", "203.0.113.9"); got != fiber.StatusForbidden {
		t.Errorf("an allowed address in a first line: %d, want 403", got)
	}
	if got := get("/auth", "203.0.113.9", "198.51.100.1, 10.20.1.1"); got != fiber.StatusOK {
		t.Errorf("the last line's rightmost allowed address: %d, want 200", got)
	}
	var codes []int
	for i := range 4 {
		codes = append(codes, get("/rate", netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String(), "203.0.113.9"))
	}
	if codes[2] != fiber.StatusTooManyRequests || codes[3] != fiber.StatusTooManyRequests {
		t.Errorf("statuses = %v, want 429 from the third on", codes)
	}
}
