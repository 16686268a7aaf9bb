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
}

// New returns Numbers reading national numbers in region, refusing a
// region libphonenumber does not know.
func New(region string) (Numbers, error) {
	r := strings.ToUpper(strings.TrimSpace(region))
	if !phonenumbers.GetSupportedRegions()[r] {
		return Numbers{}, fmt.Errorf("%q is not an ISO 3166-1 alpha-2 country code with phone numbering metadata (e.g. \"NG\", \"GH\")", region)
	}
	return Numbers{Region: r}, nil
}

// Normalize returns raw in E.164, or an error wrapping ErrInvalid when raw is
// not a valid phone number. A number with "+" or "00" in front is read as
// international; a number of digits alone is read as international when it
// is a valid one (aggregators often drop the "+": "233244123456"), and only
// otherwise as national in the Region. Spaces, dots, dashes and brackets
// between digits are ignored; letters, extensions and anything else are not
// accepted.
func (n Numbers) Normalize(raw string) (string, error) {
	s, ok := compact(raw)
	switch {
	case !ok:
		return "", fmt.Errorf("phone: %w", ErrInvalid)
	case strings.HasPrefix(s, "+"):
		return international(s)
	case strings.HasPrefix(s, "00"):
		return international("+" + s[2:])
	}
	if e164, err := international("+" + s); err == nil {
		return e164, nil
	}
	return n.national(s)
}

// international reads a number that starts with "+".
func international(s string) (string, error) {
	return valid(phonenumbers.Parse(s, "ZZ"))
}

// national reads a number of digits in the Region.
func (n Numbers) national(s string) (string, error) {
	if n.Region == "" {
		return "", fmt.Errorf("phone: no home country to read a national number in: %w", ErrInvalid)
	}
	return valid(phonenumbers.Parse(s, n.Region))
}

// valid formats a parsed number in E.164 when libphonenumber holds it valid.
func valid(num *phonenumbers.PhoneNumber, err error) (string, error) {
	if err != nil || !phonenumbers.IsValidNumber(num) || num.GetExtension() != "" {
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
