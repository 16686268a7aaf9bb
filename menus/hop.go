package menus

import (
	"crypto/hmac"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ussdlink/ussdlink/link"
)

// open starts a new session for a first hop.
func (e *Engine) open(hop link.Hop, now time.Time) *Session {
	dialect := hop.Dialect
	if dialect == "" && hop.Channel != "" {
		dialect = hop.Channel // a text conversation: "sms"
	}
	return &Session{
		Dialect:     dialect,
		Channel:     hop.Channel,
		ID:          hop.SessionID,
		Phone:       hop.Phone,
		ServiceCode: hop.ServiceCode,
		Network:     hop.Network,
		State:       StateBanks,
		Created:     now,
		Expires:     now.Add(e.cfg.SessionTTL),
	}
}

// input works out this hop's input and whether the hop repeats the last
// one. Cumulative dialects are compared by transcript. For latest-input
// dialects: a second session start is a repeat; a hop number, when the
// aggregator sends one, must move forward; without one, the same input
// again within the repeat window is taken for a repeated delivery.
func (e *Engine) input(s *Session, hop link.Hop, now time.Time) (string, bool, error) {
	switch {
	case hop.Cumulative:
		return e.marker.next(s.Mark, hop.Transcript)
	case hop.New:
		return "", true, nil
	case hop.Seq > 0 && hop.Seq < s.Seq:
		return "", false, errors.New("hop number went backwards")
	case hop.Seq > 0:
		return hop.Input, hop.Seq == s.Seq, nil
	}
	same := hmac.Equal(e.marker.mark(hop.Input).Sum, s.InputSum)
	return hop.Input, same && now.Sub(s.HopAt) < e.cfg.RepeatWindow, nil
}

// extension finds a deep-dial code: what follows the short code in the
// dialled string or the service code ("*384*123*7#" → "7"), or, when the
// network passes it on as the first input of a new session, that input.
func (e *Engine) extension(hop link.Hop) string {
	for _, base := range []string{e.cfg.ServiceCode, hop.ServiceCode} {
		for _, dialled := range []string{hop.Dialled, hop.ServiceCode} {
			if x := extensionOf(base, dialled); x != "" {
				return x
			}
		}
	}
	first := hop.Input
	if hop.Cumulative {
		first = hop.Transcript
	}
	if strings.HasPrefix(first, "*") || strings.HasSuffix(first, "#") {
		return "" // a dialled string that is not an extension of ours
	}
	return first
}

// extensionOf returns what dialled adds to base: "*384*123#" and
// "*384*123*7#" give "7".
func extensionOf(base, dialled string) string {
	stem := strings.TrimSuffix(base, "#")
	if stem == "" || !strings.HasSuffix(dialled, "#") {
		return ""
	}
	rest, ok := strings.CutPrefix(strings.TrimSuffix(dialled, "#"), stem+"*")
	if !ok {
		return ""
	}
	return rest
}

// validate refuses hops that cannot belong to any conversation: missing or
// oversized ids, a phone that is not a phone number, text that is not UTF-8
// or carries control characters (no handset can type them).
func validate(h link.Hop) error {
	if err := checkSessionID(h.SessionID); err != nil {
		return err
	}
	switch {
	case !isPhone(h.Phone):
		return &link.HopError{Reason: "phone number is not a phone number"}
	case len(h.Transcript) > 4096 || len(h.Input) > 1024 || len(h.ServiceCode) > 64 || len(h.Network) > 64 || len(h.Dialled) > 64:
		return &link.HopError{Reason: "oversized field"}
	}
	return checkText(h.ServiceCode, h.Network, h.Transcript, h.Input, h.Dialled)
}

// maxSessionID bounds an aggregator's session id: theirs are 10 to 40
// characters.
const maxSessionID = 128

// checkSessionID refuses a session id no aggregator sends (missing,
// oversized, not UTF-8, control characters) before it names a lock or a
// stored session: a session end carries nothing else to check.
func checkSessionID(id string) error {
	if id == "" || len(id) > maxSessionID {
		return &link.HopError{Reason: "missing or oversized session id"}
	}
	return checkText(id)
}

// checkText refuses fields no handset can type: not UTF-8, or carrying
// control characters.
func checkText(fields ...string) error {
	for _, f := range fields {
		if !utf8.ValidString(f) {
			return &link.HopError{Reason: "text is not UTF-8"}
		}
		if strings.ContainsFunc(f, unicode.IsControl) {
			return &link.HopError{Reason: "text carries control characters"}
		}
	}
	return nil
}

// isPhone accepts 5 to 20 digits with an optional leading "+".
func isPhone(p string) bool {
	d := strings.TrimPrefix(p, "+")
	return len(d) >= 5 && len(d) <= 20 && isDigits(d)
}
