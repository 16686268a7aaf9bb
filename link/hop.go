package link

//go:generate go tool msgp -file=hop.go -o=hop_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc" -d "ignore Hop HopError"

import (
	"slices"
	"strings"
	"time"
)

// Hop is one callback from an aggregator, in no aggregator's format.
// Cumulative dialects (Africa's Talking) set Transcript to the whole input
// history and Cumulative; the engine works out this hop's input from what
// the session remembers. Latest-input dialects set Input.
type Hop struct {
	// Dialect names the aggregator route the hop came through
	// ("africastalking"); the edge sets it.
	Dialect     string
	SessionID   string
	Phone       string
	ServiceCode string
	Network     string
	New         bool   // the aggregator says this is a session's first hop
	Input       string // this hop's input, for latest-input dialects
	Transcript  string // the whole input history, for cumulative dialects
	Cumulative  bool
	// Seq is the aggregator's number for this hop (Hubtel's Sequence), when
	// it sends one: a repeated delivery carries the same number.
	Seq int
	// Dialled is the whole string the user dialled, when the aggregator
	// sends it on a first hop ("*713*22*7#"): it may carry a deep-dial code.
	Dialled string
	// Closing, when set, says the aggregator ended the session, and how
	// ("Incomplete", "Release", "Timeout"): there is nothing to answer.
	Closing string
	Limit   int // screen budget for this hop; 0 means the engine's default
	// Channel is "sms" for a text-message conversation, "" for USSD; TTL,
	// when set, is its session's inactivity limit.
	Channel string
	TTL     time.Duration
	// ReplyByText queues the reply as a text in the hop's own commit, for
	// text conversations whose provider takes replies as messages.
	ReplyByText bool
}

// Reply is what the gateway answers a hop: a screen's text and whether the
// session ends with it. Dialects turn it into their own format.
type Reply struct {
	Text string `json:"text"`
	End  bool   `json:"end"`
	// Screen is the conversation state the reply shows (a state name, never
	// user data), for metrics and the hop's log line; From is the state
	// before the hop and Outcome what the hop was: OutcomeInput, or
	// OutcomeRepeat for a repeated callback answered as before. Neither
	// From nor Outcome is stored.
	Screen  string `json:"screen,omitempty"`
	From    string `json:"-"`
	Outcome string `json:"-"`
}

// What a hop was, as Reply.Outcome says.
const (
	OutcomeNew    = "new"    // the first hop of a session
	OutcomeInput  = "input"  // an input taken by the conversation
	OutcomeRepeat = "repeat" // a repeated callback, answered with the reply it had
	OutcomeOver   = "over"   // a hop after the session was over
)

// HopError says a callback cannot be processed as sent (a 4xx for the
// aggregator). Its message is safe to log: it never holds what was typed.
type HopError struct{ Reason string }

// Error implements error.
func (e *HopError) Error() string { return "bad hop: " + e.Reason }

// ShortCode reports whether v can name a mobile network in metrics and
// the funnel: at most 16 letters, digits, '.', '-' or '_' ("62130",
// "mtn-ng"). An aggregator, or someone posting as one, may send anything:
// what is not a short code is counted as "other".
func ShortCode(v string) bool {
	if v == "" || len(v) > 16 {
		return false
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// knownNetworks are the mobile networks of the gateway's markets as
// aggregators name them: MCC-MNC codes (Nigeria 621, Ghana 620, Kenya 639,
// Uganda 641, Tanzania 640, Rwanda 635, Zambia 645, Côte d'Ivoire 612,
// Senegal 608, Cameroon 624) and the names Ghanaian aggregators send.
var knownNetworks = map[string]bool{
	"62120": true, "62122": true, "62124": true, "62125": true, "62126": true, "62127": true, "62130": true,
	"62140": true, "62150": true, "62160": true,
	"62001": true, "62002": true, "62003": true, "62004": true, "62006": true, "62007": true,
	"63902": true, "63903": true, "63907": true, "64101": true, "64110": true, "64111": true, "64114": true,
	"64002": true, "64004": true, "64005": true, "63510": true, "63513": true, "64501": true, "64502": true,
	"61202": true, "61203": true, "61205": true, "60801": true, "60802": true, "62401": true, "62402": true,
	"mtn": true, "vodafone": true, "telecel": true, "airteltigo": true, "airtel": true, "tigo": true,
	"glo": true, "9mobile": true, "etisalat": true, "safaricom": true, "telkom": true,
}

// NetworkLabel is the network durable counters and metrics group a hop by:
// n when it is known (KnownNetwork) or one the operator names
// (configured), "" for none, "other" for anything else an aggregator (or
// someone posting as one) sends, so that made-up names cannot grow them.
func NetworkLabel(n string, configured []string) string {
	if n == "" || KnownNetwork(n) || slices.Contains(configured, n) {
		return n
	}
	return "other"
}

// KnownNetwork reports whether n names one of the mobile networks of the
// gateway's markets (a code or, case aside, a name): what durable counters
// may be grouped by.
func KnownNetwork(n string) bool {
	return knownNetworks[n] || knownNetworks[strings.ToLower(n)]
}
