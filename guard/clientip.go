package guard

import (
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ClientIP is the caller's address: the connection's, or, when proxyHeader
// names the header a trusted reverse proxy writes, that header's rightmost
// entry. The header is read across all its lines, which mean the same as
// one line joined with commas: the rightmost entry of the last line is the
// one the proxy wrote, whatever the caller sent before it. ok is false when
// the header is configured but missing or unreadable, or the connection has
// no IP address; the allow-list then refuses the caller.
func ClientIP(c *fiber.Ctx, proxyHeader string) (ip netip.Addr, ok bool) {
	if proxyHeader != "" {
		lines := c.Request().Header.PeekAll(proxyHeader)
		if len(lines) == 0 {
			return netip.Addr{}, false
		}
		v := string(lines[len(lines)-1])
		if i := strings.LastIndexByte(v, ','); i >= 0 {
			v = v[i+1:]
		}
		v = strings.TrimSpace(v)
		if ap, err := netip.ParseAddrPort(v); err == nil {
			return ap.Addr().Unmap(), true
		}
		ip, err := netip.ParseAddr(strings.Trim(v, "[]"))
		return ip.Unmap(), err == nil
	}
	ip, ok = netip.AddrFromSlice(c.Context().RemoteIP())
	return ip.Unmap(), ok
}
