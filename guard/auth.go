package guard

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// CallbackAuth decides whether a callback comes from the aggregator: a
// shared token (in the URL's token parameter or the X-Callback-Token
// header) and an allow-list of source networks. Either may be unset; with
// both unset every caller is accepted.
type CallbackAuth struct {
	Token string         // required token; empty: not checked
	Allow []netip.Prefix // allowed source networks; empty: any
	// ProxyHeader names the header a trusted reverse proxy puts the caller's
	// address in (X-Forwarded-For, X-Real-IP). Only when it is set is any
	// such header believed; the rightmost address across all its lines is
	// taken, the one the proxy itself saw (see ClientIP).
	ProxyHeader string
}

// HeaderCallbackToken carries the callback token when it is not in the URL.
const HeaderCallbackToken = "X-Callback-Token"

// ParsePrefixes reads CIDRs (a lone address is its own /32 or /128).
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("allow-ips: %q: %w", c, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("allow-ips: %q: %w", c, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Enabled reports whether any check is configured.
func (a CallbackAuth) Enabled() bool { return a.Token != "" || len(a.Allow) > 0 }

// Middleware refuses callbacks from outside the allow-list with 403 and
// callbacks without the right token with 401, before anything is parsed.
func (a CallbackAuth) Middleware(log zerolog.Logger) fiber.Handler {
	want := sha256.Sum256([]byte(a.Token))
	return func(c *fiber.Ctx) error {
		if len(a.Allow) > 0 {
			ip, ok := ClientIP(c, a.ProxyHeader)
			if !ok || !allowed(a.Allow, ip) {
				log.Warn().Str("path", c.Path()).Str("ip", ip.String()).Msg("callback from a source not allowed")
				return c.Status(fiber.StatusForbidden).SendString("forbidden")
			}
		}
		if a.Token != "" {
			got := c.Query("token")
			if got == "" {
				got = c.Get(HeaderCallbackToken)
			}
			// Compared as digests, in constant time: neither the token's
			// bytes nor its length leak through timing.
			sum := sha256.Sum256([]byte(got))
			if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				log.Warn().Str("path", c.Path()).Msg("callback without a valid token")
				return c.Status(fiber.StatusUnauthorized).SendString("unauthorized")
			}
		}
		return c.Next()
	}
}

// allowed reports whether ip is in one of the networks.
func allowed(nets []netip.Prefix, ip netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
