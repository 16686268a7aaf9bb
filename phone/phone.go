// Package phone gives every phone number the gateway meets one form, E.164
// ("+2348031000007"), so that one subscriber is one identity whichever way an
// aggregator, a text provider or a partner writes the number: "234…",
// "+234…", "00234…" or the national "0803…". It reads numbers with
// libphonenumber's Go port rather than hand-written rules.
package phone

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid says a string is not a valid phone number. Normalize's errors
// wrap it; they never carry the number itself.
var ErrInvalid = errors.New("not a valid phone number")

// maxRaw bounds what is handed to the parser: no phone number, however
// written, is longer, and a network's junk is refused before any regexp runs.
const maxRaw = 32

// Numbers reads phone numbers as one subscriber's identity. Region is the
// ISO 3166-1 alpha-2 country national numbers ("0803…") are read in; empty,
// only international numbers are accepted. The zero value is ready to use.
type Numbers struct {
	Region string
	// seen remembers what the network's numbers read as (FromNetwork):
	// every hop of a session carries its caller's number, and reading one
	// runs libphonenumber's regular expressions. Nil (the zero value):
	// nothing is remembered.
	seen *memo
}

// New returns Numbers reading national numbers in region, refusing a
// region libphonenumber does not know.
func New(region string) (Numbers, error) {
	r := strings.ToUpper(strings.TrimSpace(region))
	if !phonenumbers.GetSupportedRegions()[r] {
		return Numbers{}, fmt.Errorf("%q is not an ISO 3166-1 alpha-2 country code with phone numbering metadata (e.g. \"NG\", \"GH\")", region)
	}
	return Numbers{Region: r, seen: &memo{m: make(map[string]string, memoSize)}}, nil
}

// memo is a bounded map of raw numbers to their E.164 form (or "" when
// refused), emptied when full: a flood of distinct numbers costs parsing,
// never memory.
type memo struct {
	mu sync.RWMutex
	m  map[string]string
}

// memoSize bounds the memo: the callers of a busy minute.
const memoSize = 8192

// get returns what raw was read as, and whether it was.
func (c *memo) get(raw string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[raw]
	return v, ok
}

// put remembers what raw was read as.
func (c *memo) put(raw, e164 string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= memoSize {
		clear(c.m)
	}
	c.m[raw] = e164
}

// Normalize returns raw in E.164, or an error wrapping ErrInvalid when raw is
// not a valid phone number. A number with "+" or "00" in front is read as
// international; a number of digits alone is read as international when it
// is a valid one (aggregators often drop the "+": "233244123456"), and only
// otherwise as national in the Region. Spaces, dots, dashes and brackets
// between digits are ignored; letters, extensions and anything else are not
// accepted. Valid means in a range libphonenumber knows to be assigned: for
// numbers people type (a partner's invitation), where a typo must not
// reach a stranger.
func (n Numbers) Normalize(raw string) (string, error) {
	return n.read(raw, phonenumbers.IsValidNumber, false)
}

// FromNetwork is Normalize for the numbers a mobile network itself sends
// (the caller of a USSD session, the sender of a text): the network vouches
// that the subscriber exists, so a number of a possible length for its
// country is taken even in a range libphonenumber's metadata does not list
// yet — regulators open new ranges faster than the metadata follows, and
// refusing one would shut its subscribers out. What no network assigns is
// still refused: a length the country does not use, or significant digits
// that begin with its trunk prefix (+234 0…, a national number keyed after
// the country code).
func (n Numbers) FromNetwork(raw string) (string, error) {
	if n.seen == nil {
		return n.read(raw, assignable, true)
	}
	if e164, ok := n.seen.get(raw); ok {
		if e164 == "" {
			return "", fmt.Errorf("phone: %w", ErrInvalid)
		}
		return e164, nil
	}
	e164, err := n.read(raw, assignable, true)
	n.seen.put(strings.Clone(raw), e164) // raw may point into a reused request buffer
	return e164, err
}

// assignable reports whether a network could have given out num: a
// possible length for its country, not beginning with the trunk prefix.
func assignable(num *phonenumbers.PhoneNumber) bool {
	// The length and prefix checks first: they need no regular
	// expression, and pass for nearly every number a network sends.
	if possibleUntrunked(num) {
		return true
	}
	return phonenumbers.IsValidNumber(num)
}

// possibleUntrunked reports whether num has a possible length for its
// country and does not begin with its trunk prefix.
func possibleUntrunked(num *phonenumbers.PhoneNumber) bool {
	if phonenumbers.IsPossibleNumberWithReason(num) != phonenumbers.IS_POSSIBLE {
		return false
	}
	region := phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode()))
	trunk := phonenumbers.GetNddPrefixForRegion(region, true)
	return region != "ZZ" && (trunk == "" || !strings.HasPrefix(phonenumbers.GetNationalSignificantNumber(num), trunk))
}

// read reads raw into E.164, taking the number when ok says so. With
// trunked, digits alone are read as a national number only when they start
// with the home country's trunk prefix ("0803…"): a lenient check would
// otherwise take any international number it refused as some national one.
func (n Numbers) read(raw string, ok func(*phonenumbers.PhoneNumber) bool, trunked bool) (string, error) {
	s, fine := compact(raw)
	switch {
	case !fine:
		return "", fmt.Errorf("phone: %w", ErrInvalid)
	case strings.HasPrefix(s, "+"):
		return parse(s, "ZZ", ok)
	case strings.HasPrefix(s, "00"):
		return parse("+"+s[2:], "ZZ", ok)
	}
	if e164, err := parse("+"+s, "ZZ", ok); err == nil {
		return e164, nil
	}
	if n.Region == "" {
		return "", fmt.Errorf("phone: no home country to read a national number in: %w", ErrInvalid)
	}
	if trunk := phonenumbers.GetNddPrefixForRegion(n.Region, true); trunked && trunk != "" && !strings.HasPrefix(s, trunk) {
		return "", fmt.Errorf("phone: %w", ErrInvalid)
	}
	return parse(s, n.Region, ok)
}

// parse reads s (in region, for a national number) and formats it in
// E.164 when ok holds it a number.
func parse(s, region string, ok func(*phonenumbers.PhoneNumber) bool) (string, error) {
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !ok(num) || num.GetExtension() != "" {
		return "", fmt.Errorf("phone: %w", ErrInvalid)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// compact drops the separators people write between digits and reports
// whether what is left is digits with at most one leading "+".
func compact(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxRaw {
		return "", false
	}
	var b strings.Builder
	for i, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", false
		}
	}
	s := b.String()
	digits := strings.TrimPrefix(s, "+")
	return s, digits != ""
}

// Mask shows a phone number's country prefix and last three digits
// only: "+234*******001". It is the default for logs.
func Mask(p string) string {
	r := []rune(p)
	keep := 4
	if len(r) > 0 && r[0] != '+' {
		keep = 3
	}
	if len(r) <= keep+3 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:keep]) + strings.Repeat("*", len(r)-keep-3) + string(r[len(r)-3:])
}
