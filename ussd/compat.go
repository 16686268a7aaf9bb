package ussd

import (
	"net/netip"

	"github.com/ussdlink/ussdlink/guard"
)

// ParsePrefixes reads CIDRs into an allow-list; it is guard.ParsePrefixes,
// forwarded only so that callers not yet switched keep building.
//
// Deprecated: use guard.ParsePrefixes.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) { return guard.ParsePrefixes(cidrs) }
