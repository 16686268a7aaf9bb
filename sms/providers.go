// Package sms carries what USSD cannot: receipts, invitations, late outcomes
// and reauthorisation nudges go out through an SMSSender; inbound messages
// from each provider drive a short text conversation.
package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/phone"
)

const (
	sendTimeout    = 10 * time.Second // Client.Timeout when a provider has no Client
	maxSendReply   = 64 << 10         // bytes of a provider's answer read at most
	maxSendMessage = 200              // characters of a provider's message kept in a SendError
	minSendRedact  = 4                // shorter sent values are not scrubbed from messages

	defaultAfricasTalkingURL = "https://api.africastalking.com"
	defaultTwilioURL         = "https://api.twilio.com"
	defaultTermiiURL         = "https://api.ng.termii.com"
	defaultTermiiChannel     = "generic"
)

// Message is one outgoing text.
type Message struct {
	To   string // recipient in international format, e.g. +2348031234567
	Text string // the text; it can hold codes, so it never appears in errors
}

// SMSSender sends a text through one provider. It makes a single attempt:
// retrying is the caller's job (through its durable outbox), guided by
// SendError.Temporary. Implementations are safe for concurrent use.
type SMSSender interface {
	// Send hands m to the provider and returns the provider's id for it.
	// A failure is a *SendError.
	Send(ctx context.Context, m Message) (providerID string, err error)
	// Name is the provider's short name, e.g. "twilio".
	Name() string
}

// SendError is a failed Send. Temporary failures (no answer, a timeout, 408,
// 429 or 5xx) are worth retrying later; the rest are final (bad credentials,
// an invalid number, a rejected recipient). Nothing in it holds the message
// text or a credential.
type SendError struct {
	Provider  string // the sender's Name
	Status    int    // HTTP status of the provider's answer; 0 when none arrived
	Message   string // the provider's own wording, scrubbed and shortened
	Temporary bool   // worth retrying later
	Err       error  // the underlying transport or decoding error, if any
}

// Error implements error.
func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("sms ")
	b.WriteString(e.Provider)
	if e.Status != 0 {
		b.WriteString(": status ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Temporary {
		b.WriteString(" (temporary)")
	}
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *SendError) Unwrap() error { return e.Err }

// AfricasTalking sends through Africa's Talking's bulk SMS API.
type AfricasTalking struct {
	BaseURL  string       // default https://api.africastalking.com
	Username string       // the application's username ("sandbox" in their sandbox)
	APIKey   string       // sent in the apiKey header
	From     string       // sender id or short code; empty: the account default
	Client   *http.Client // default: a client with a 10 s timeout
}

// Name implements SMSSender.
func (AfricasTalking) Name() string { return "africastalking" }

// Africa's Talking recipient status codes taken as accepted.
const (
	atProcessed = 100
	atSent      = 101
	atQueued    = 102
)

// Send implements SMSSender: POST /version1/messaging, form-encoded. The
// message is accepted when the first recipient's statusCode is 100, 101 or
// 102; any other recipient status is final.
func (p AfricasTalking) Send(ctx context.Context, m Message) (string, error) {
	const name = "africastalking"
	if err := checkMessage(name, m); err != nil {
		return "", err
	}
	form := url.Values{}
	form.Set("username", p.Username)
	form.Set("to", m.To)
	form.Set("message", m.Text)
	if p.From != "" {
		form.Set("from", p.From)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		baseURL(p.BaseURL, defaultAfricasTalkingURL)+"/version1/messaging",
		strings.NewReader(form.Encode()))
	if err != nil {
		return "", &SendError{Provider: name, Message: "cannot build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("apiKey", p.APIKey)

	redact := []string{m.Text, p.APIKey}
	status, data, serr := roundTrip(p.Client, req, name)
	if serr != nil {
		return "", serr
	}
	var reply struct {
		SMSMessageData struct {
			Message    string `json:"Message"`
			Recipients []struct {
				StatusCode json.RawMessage `json:"statusCode"`
				Status     string          `json:"status"`
				MessageID  string          `json:"messageId"`
			} `json:"Recipients"`
		} `json:"SMSMessageData"`
	}
	if status < 200 || status > 299 {
		// Africa's Talking answers errors in plain text as often as in JSON.
		return "", statusError(name, status, plainMessage(data), redact)
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return "", &SendError{Provider: name, Status: status, Message: "undecodable response"}
	}
	rs := reply.SMSMessageData.Recipients
	if len(rs) == 0 {
		return "", &SendError{Provider: name, Status: status,
			Message: cleanSend(orText(reply.SMSMessageData.Message, "no recipients in response"), redact)}
	}
	r := rs[0]
	code := jsonInt(r.StatusCode)
	if code != atProcessed && code != atSent && code != atQueued {
		return "", &SendError{Provider: name, Status: status,
			Message: cleanSend(fmt.Sprintf("recipient %s (statusCode %d)", orText(r.Status, "rejected"), code), redact)}
	}
	if r.MessageID == "" {
		return "", &SendError{Provider: name, Status: status, Message: "no messageId in response"}
	}
	return r.MessageID, nil
}

// Twilio sends through Twilio's Messages API.
type Twilio struct {
	BaseURL    string       // default https://api.twilio.com
	AccountSID string       // AC…; also the basic-auth user
	AuthToken  string       // basic-auth password
	From       string       // the sending number, E.164
	Client     *http.Client // default: a client with a 10 s timeout
}

// Name implements SMSSender.
func (Twilio) Name() string { return "twilio" }

// Send implements SMSSender: POST /2010-04-01/Accounts/{sid}/Messages.json,
// form-encoded, basic auth. A 201 carries the message's sid.
func (p Twilio) Send(ctx context.Context, m Message) (string, error) {
	const name = "twilio"
	if err := checkMessage(name, m); err != nil {
		return "", err
	}
	form := url.Values{}
	form.Set("To", m.To)
	form.Set("From", p.From)
	form.Set("Body", m.Text)
	endpoint := baseURL(p.BaseURL, defaultTwilioURL) +
		"/2010-04-01/Accounts/" + url.PathEscape(p.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &SendError{Provider: name, Message: "cannot build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(p.AccountSID, p.AuthToken)

	redact := []string{m.Text, p.AuthToken}
	status, data, serr := roundTrip(p.Client, req, name)
	if serr != nil {
		return "", serr
	}
	var reply struct {
		SID     string          `json:"sid"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	decoded := json.Unmarshal(data, &reply) == nil
	if status < 200 || status > 299 {
		msg := plainMessage(data)
		if decoded && reply.Message != "" {
			msg = reply.Message
			if c := jsonInt(reply.Code); c != 0 {
				msg = strconv.Itoa(c) + " " + msg
			}
		}
		return "", statusError(name, status, msg, redact)
	}
	if !decoded {
		return "", &SendError{Provider: name, Status: status, Message: "undecodable response"}
	}
	if reply.SID == "" {
		return "", &SendError{Provider: name, Status: status, Message: cleanSend(orText(reply.Message, "no sid in response"), redact)}
	}
	return reply.SID, nil
}

// Termii sends through Termii's SMS API (Nigeria).
type Termii struct {
	BaseURL string       // default https://api.ng.termii.com
	APIKey  string       // sent in the JSON body as api_key
	From    string       // registered sender id
	Channel string       // "generic" (default), "dnd" or "whatsapp"
	Client  *http.Client // default: a client with a 10 s timeout
}

// Name implements SMSSender.
func (Termii) Name() string { return "termii" }

// Send implements SMSSender: POST /api/sms/send with a JSON body; the number
// goes out as digits without the '+'. A 2xx carrying message_id is success.
func (p Termii) Send(ctx context.Context, m Message) (string, error) {
	const name = "termii"
	if err := checkMessage(name, m); err != nil {
		return "", err
	}
	channel := p.Channel
	if channel == "" {
		channel = defaultTermiiChannel
	}
	body, err := encodeJSON(map[string]string{
		"api_key": p.APIKey,
		"to":      digitsOnly(m.To),
		"from":    p.From,
		"sms":     m.Text,
		"type":    "plain",
		"channel": channel,
	})
	if err != nil {
		return "", &SendError{Provider: name, Message: "cannot encode request"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		baseURL(p.BaseURL, defaultTermiiURL)+"/api/sms/send", bytes.NewReader(body))
	if err != nil {
		return "", &SendError{Provider: name, Message: "cannot build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	redact := []string{m.Text, p.APIKey}
	status, data, serr := roundTrip(p.Client, req, name)
	if serr != nil {
		return "", serr
	}
	var reply struct {
		MessageID json.RawMessage `json:"message_id"`
		Message   json.RawMessage `json:"message"`
	}
	if status < 200 || status > 299 {
		return "", statusError(name, status, plainMessage(data), redact)
	}
	if json.Unmarshal(data, &reply) != nil {
		return "", &SendError{Provider: name, Status: status, Message: "undecodable response"}
	}
	id := jsonText(reply.MessageID)
	if id == "" {
		return "", &SendError{Provider: name, Status: status, Message: cleanSend(orText(jsonText(reply.Message), "no message_id in response"), redact)}
	}
	return id, nil
}

// Sandbox is an SMSSender that sends nothing: it keeps every message in an
// in-memory mailbox and logs it. Its texts are the gateway's own (receipts
// and codes), never what users type, so the log line carries the text; the
// number is masked. The zero value is ready to use (and logs nowhere); use it
// through a pointer.
type Sandbox struct {
	Log zerolog.Logger

	mu   sync.Mutex
	n    int
	sent []Message
}

// Name implements SMSSender.
func (*Sandbox) Name() string { return "sandbox" }

// Send implements SMSSender: it records m and returns "sandbox_<n>".
func (s *Sandbox) Send(ctx context.Context, m Message) (string, error) {
	const name = "sandbox"
	if err := ctx.Err(); err != nil {
		return "", &SendError{Provider: name, Temporary: true, Err: err}
	}
	if err := checkMessage(name, m); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.n++
	id := "sandbox_" + strconv.Itoa(s.n)
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	// The body stays out of the log, as with every provider: a reply may
	// quote what its reader typed. The sandbox's inbox shows it.
	s.Log.Info().Str("provider", name).Str("id", id).Str("to", phone.Mask(m.To)).
		Int("units", gsm.Units(m.Text)).Msg("sandbox sms sent")
	return id, nil
}

// Inbox returns what phone has received, oldest first. Numbers are compared
// by their digits, so "+2348031234567" and "2348031234567" are one phone.
func (s *Sandbox) Inbox(phone string) []Message {
	want := digitsOnly(phone)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.sent {
		if digitsOnly(m.To) == want {
			out = append(out, m)
		}
	}
	return out
}

// Sent returns every message sent, oldest first.
func (s *Sandbox) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent...)
}

// checkMessage refuses, before any network call, a message no provider
// could deliver. Such a failure is final.
func checkMessage(provider string, m Message) error {
	switch {
	case digitsOnly(m.To) == "":
		return &SendError{Provider: provider, Message: "no recipient number"}
	case strings.TrimSpace(m.Text) == "":
		return &SendError{Provider: provider, Message: "empty message"}
	}
	return nil
}

// roundTrip sends req with c (or a default client) and reads at most
// maxSendReply bytes of the answer. A request that got no complete answer is
// a temporary *SendError.
func roundTrip(c *http.Client, req *http.Request, provider string) (int, []byte, *SendError) {
	if c == nil {
		c = &http.Client{Timeout: sendTimeout}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, &SendError{Provider: provider, Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSendReply))
	if err != nil {
		return 0, nil, &SendError{Provider: provider, Status: resp.StatusCode, Message: "reading response", Temporary: true, Err: err}
	}
	return resp.StatusCode, data, nil
}

// statusError is the *SendError for a non-2xx answer.
func statusError(provider string, status int, msg string, redact []string) *SendError {
	msg = cleanSend(msg, redact)
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &SendError{Provider: provider, Status: status, Message: msg, Temporary: temporaryStatus(status)}
}

// temporaryStatus reports whether an HTTP status is worth retrying later.
func temporaryStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// baseURL is u without a trailing slash, or def when u is empty.
func baseURL(u, def string) string {
	if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
		return u
	}
	return def
}

// digitsOnly keeps the ASCII digits of s: "+234 803…" becomes "234803…".
func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// orText is s, or fallback when s is blank.
func orText(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

// plainMessage is a non-JSON answer body as a message, or a JSON body's
// "message" (or "error") when it has one.
func plainMessage(data []byte) string {
	var env struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &env) == nil {
		if s := jsonText(env.Message); s != "" {
			return s
		}
		return jsonText(env.Error)
	}
	if !utf8.Valid(data) {
		return ""
	}
	return string(data)
}

// jsonText reads a JSON string or number as text; anything else is "".
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// jsonInt reads a JSON number or numeric string; anything else is 0.
func jsonInt(raw json.RawMessage) int {
	n, err := strconv.Atoi(strings.TrimSpace(jsonText(raw)))
	if err != nil {
		return 0
	}
	return n
}

// cleanSend makes a provider's message safe to keep: the values sent (the
// text, the credential) are scrubbed in every form a provider might echo them
// in, as are the text's runs of four or more digits (its codes); control
// characters become spaces, and the result is cut to maxSendMessage
// characters.
func cleanSend(msg string, redact []string) string {
	var forms []string
	for i, s := range redact {
		forms = append(forms, sentForms(s)...)
		if i == 0 { // the text: its codes too
			forms = append(forms, digitRuns(s)...)
		}
	}
	// Longest first, so a longer form is not half-replaced by a shorter one.
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	for _, f := range forms {
		msg = strings.ReplaceAll(msg, f, "***")
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	msg = strings.Join(strings.Fields(msg), " ")
	if utf8.RuneCountInString(msg) > maxSendMessage {
		msg = string([]rune(msg)[:maxSendMessage]) + "…"
	}
	return msg
}

// sentForms is s as sent, trimmed, JSON-escaped and URL-encoded: every form
// a provider might echo it in. Nothing when s is too short to scrub without
// mangling messages.
func sentForms(s string) []string {
	if utf8.RuneCountInString(strings.TrimSpace(s)) < minSendRedact {
		return nil
	}
	forms := []string{s, strings.TrimSpace(s), url.QueryEscape(s), url.PathEscape(s)}
	if b, err := json.Marshal(s); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	if b, err := encodeJSON(s); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// digitRuns is every run of at least minSendRedact ASCII digits in s.
func digitRuns(s string) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= minSendRedact {
			runs = append(runs, s[start:i])
		}
		start = -1
	}
	return runs
}

// encodeJSON marshals v without HTML escaping, so values go out as given.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
