package mono

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ussdlink/ussdlink/reqid"
	"github.com/ussdlink/ussdlink/wirejson"
)

const (
	defaultBaseURL  = "https://api.withmono.com"
	defaultTimeout  = 20 * time.Second
	defaultAttempts = 3
	defaultBackoff  = 200 * time.Millisecond
	maxBackoff      = 2 * time.Second
	maxResponse     = 1 << 20 // bytes of a response body read at most
	maxMessage      = 200     // characters of Mono's message kept in an Error
	minRedact       = 4       // shorter sent values are not scrubbed from messages
)

// Client calls Mono's Partners (Connect) API with one secret key. It is safe
// for concurrent use; build one with NewClient and share it.
type Client struct {
	secret   string
	baseURL  string
	wire     roundTripper   // nil until NewClient picks one
	roots    *x509.CertPool // the default wire's trusted roots; nil: the system's
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	appID    string
	api      API
	observe  func(endpoint, outcome string, took time.Duration)
}

// WithObserver has every call reported once it is done, retries included:
// its endpoint (the op name, e.g. "login"), its outcome (see Outcome) and
// how long it took. For metrics; it never sees what was sent.
func WithObserver(f func(endpoint, outcome string, took time.Duration)) Option {
	return func(c *Client) { c.observe = f }
}

// Outcome names an error's kind for metrics: "ok" for nil.
func Outcome(err error) string {
	if err == nil {
		return "ok"
	}
	switch KindOf(err) {
	case KindRejected, KindAccountLocked:
		return "rejected"
	case KindUnauthorized, KindMisconfigured:
		return "unauthorized"
	case KindNotFound:
		return "not_found"
	case KindTemporary:
		return "temporary"
	case KindUnknown:
		return "unknown"
	}
	return "error"
}

// Option configures a Client in NewClient.
type Option func(*Client)

// WithBaseURL points the client at another Mono host, such as the sandbox
// fake or a test server. A trailing slash is ignored.
func WithBaseURL(u string) Option {
	return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") }
}

// WithHTTPClient makes the client send its requests through h, for custom
// transports or proxies. A nil h keeps the default: fasthttp's client, or
// net/http's standard transport when the environment names a proxy for
// Mono (HTTPS_PROXY and the like).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.wire = netHTTP{client: h}
		}
	}
}

// WithRootCAs makes the client trust roots instead of the system's
// certificate authorities, on either default wire (fasthttp's, or
// net/http's when the environment names a proxy): for a Mono reached
// through a TLS-terminating proxy with a certificate authority of its
// own, or a test server. A client given WithHTTPClient uses that client's
// TLS settings instead.
func WithRootCAs(roots *x509.CertPool) Option {
	return func(c *Client) { c.roots = roots }
}

// WithTimeout bounds each call, retries and backoff included, so a slow bank
// login cannot hold a USSD hop forever. The default is 20s; 0 means no limit
// beyond the caller's context.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = max(d, 0) }
}

// WithRetry sets the total number of attempts per call and the base of the
// exponential backoff between them (capped at 2s, with full jitter), so
// network errors, 429 and 5xx answers get another chance. The default is 3
// attempts from 200ms; attempts <= 1 disables retries.
func WithRetry(attempts int, base time.Duration) Option {
	return func(c *Client) {
		c.attempts = max(attempts, 1)
		c.backoff = max(base, 0)
	}
}

// WithAppID sets the Mono app id that CreateSession sends when the request
// names none, so callers need not repeat it.
func WithAppID(id string) Option {
	return func(c *Client) { c.appID = id }
}

// WithAPI chooses the version of the Partners API the client speaks: V1,
// the seeds' (the default), or V2, Mono's current one. Every call follows
// it; callers see the same types whichever is spoken.
func WithAPI(v API) Option {
	return func(c *Client) {
		if v != "" {
			c.api = v
		}
	}
}

// NewClient returns a Client that authenticates with secretKey (test_sk_… or
// live_sk_…) and talks to https://api.withmono.com unless told otherwise.
func NewClient(secretKey string, opts ...Option) *Client {
	c := &Client{
		secret:   secretKey,
		baseURL:  defaultBaseURL,
		timeout:  defaultTimeout,
		attempts: defaultAttempts,
		backoff:  defaultBackoff,
		api:      V1,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	if c.wire == nil {
		c.wire = defaultWire(c.baseURL, c.timeout, c.roots, proxied(c.baseURL))
	}
	return c
}

// defaultWire is the round tripper of a client not given WithHTTPClient:
// net/http's when a proxy is in the way (viaProxy), fasthttp's otherwise;
// either trusts roots when they are given.
func defaultWire(base string, timeout time.Duration, roots *x509.CertPool, viaProxy bool) roundTripper {
	if viaProxy {
		return netHTTP{client: &http.Client{Transport: newTransport(roots)}}
	}
	return newFastHTTP(base, timeout, roots)
}

// newTransport is net/http's connection pool to Mono: every hop calls it, from
// as many sessions at once as the gateway serves, so it keeps enough idle
// connections per host for them to be reused rather than opened (and
// TLS-handshaken) call after call; the default keeps two. It trusts roots
// when they are given (WithRootCAs), the system's otherwise.
func newTransport(roots *x509.CertPool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxIdleConns
	t.MaxIdleConnsPerHost = maxIdleConns
	t.TLSClientConfig = tlsConfig(roots, "")
	return t
}

// maxIdleConns is how many idle connections to Mono are kept.
const maxIdleConns = 256

// call describes one API call.
type call struct {
	op      string
	method  string
	path    string
	session string   // x-session-id, when set
	body    any      // JSON request body; nil sends none
	redact  []string // sent values to scrub from Mono's messages
	// once marks a call Mono must not receive twice (a login, a commit, a
	// code exchange): it is retried only when the request provably never
	// reached Mono, and an answer that was lost is an unknown outcome.
	once bool
}

// decodeStep turns a 2xx login or commit answer into a Step, or an *Error
// when Mono refused it.
func decodeStep(op string, status int, data []byte, redact []string) (*Step, error) {
	var w stepWire
	if err := wirejson.Unmarshal(data, &w); err != nil {
		return nil, badResponse(op, status, err)
	}
	rc := w.ResponseCode
	if rc == 0 && isObject(w.Data) {
		var inner struct {
			ResponseCode int `json:"responseCode"`
		}
		if wirejson.Unmarshal(w.Data, &inner) == nil {
			rc = inner.ResponseCode
		}
	}
	fail := func(code int, fallback string) *Error {
		msg := w.Message
		if strings.TrimSpace(msg) == "" {
			msg = fallback
		}
		return &Error{Op: op, Status: status, ResponseCode: code, Message: clean(msg, redact)}
	}
	if rc == CodeRejected || statusFailed(w.Status) {
		return nil, fail(CodeRejected, "rejected")
	}
	step := &Step{ResponseCode: rc, Message: w.Message}
	switch rc {
	case CodeLinked:
		var d struct {
			Code string `json:"code"`
		}
		if isObject(w.Data) {
			if err := wirejson.Unmarshal(w.Data, &d); err != nil {
				return nil, badResponse(op, status, err)
			}
		}
		if d.Code == "" {
			return nil, fail(rc, "linked without a code")
		}
		step.Code = d.Code
	case CodeSelectAccount:
		var accounts []Account
		switch {
		case isArray(w.Data):
			if err := wirejson.Unmarshal(w.Data, &accounts); err != nil {
				return nil, badResponse(op, status, err)
			}
		case isObject(w.Data):
			var d struct {
				Accounts []Account `json:"accounts"`
			}
			if err := wirejson.Unmarshal(w.Data, &d); err != nil {
				return nil, badResponse(op, status, err)
			}
			accounts = d.Accounts
		}
		if len(accounts) == 0 {
			return nil, fail(rc, "no accounts to choose from")
		}
		step.Accounts = accounts
	case CodeUserInput:
		var d struct {
			UI
			UserInput *UI `json:"userInput"`
		}
		if isObject(w.Data) {
			if err := wirejson.Unmarshal(w.Data, &d); err != nil {
				return nil, badResponse(op, status, err)
			}
		}
		form := d.UI
		if d.UserInput != nil && len(d.UserInput.Form) > 0 {
			form = *d.UserInput
		}
		if len(form.Form) == 0 {
			return nil, fail(rc, "input requested without a form")
		}
		step.Form = &form
	default:
		return nil, fail(rc, fmt.Sprintf("unexpected responseCode %d", rc))
	}
	return step, nil
}

// statusFailed reports whether a step's status field (a number or a string)
// says the step was refused.
func statusFailed(raw json.RawMessage) bool {
	if s, ok := stringOf(raw); ok && strings.EqualFold(strings.TrimSpace(s), "failed") {
		return true
	}
	return intOf(raw) == CodeRejected
}

// do performs cl with the client's timeout and retry policy and returns the
// status and body of a 2xx answer; anything else is an error.
//
// Any call is retried after a refused connection, a 429, or a 503 that says
// when to come back (Retry-After): Mono never saw it, or said it did
// nothing. Other network errors, timeouts and 5xx answers are retried only
// for calls Mono may safely receive twice; for the others (cl.once) the
// outcome is unknown, and the error says so (KindUnknown).
func (c *Client) do(ctx context.Context, cl call) (status int, data []byte, err error) {
	if c.observe != nil {
		start := time.Now()
		defer func() { c.observe(cl.op, Outcome(err), time.Since(start)) }()
	}
	return c.attempt(ctx, cl)
}

// attempt is do without the observer.
func (c *Client) attempt(ctx context.Context, cl call) (int, []byte, error) {
	var payload []byte
	if cl.body != nil {
		b, err := encode(cl.body)
		if err != nil {
			return 0, nil, fmt.Errorf("mono %s: encoding request: %w", cl.op, err)
		}
		payload = b
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	x := c.exchange(ctx, cl, payload) // the same for every attempt
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, nil, &Error{Op: cl.op, Err: err}
		}
		a, sent, err := c.wire.roundTrip(ctx, x)
		status, data := a.status, a.body
		var last *Error
		wait, fixed := time.Duration(0), false
		switch {
		case errors.Is(err, errTooLarge):
			return 0, nil, &Error{Op: cl.op, Status: status, Message: errTooLarge.Error(), Unknown: cl.once}
		case err != nil:
			last = &Error{Op: cl.op, Err: err, Unknown: cl.once && sent}
			if ctx.Err() != nil {
				last.Err = ctx.Err()
				return 0, nil, last
			}
			if last.Unknown {
				return 0, nil, last
			}
		case status >= 200 && status < 300:
			return status, data, nil
		default:
			last = httpError(cl.op, status, data, cl.redact)
			if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
				wait, fixed = retryAfter(a.retryAfter, time.Now())
			}
			switch {
			case status == http.StatusTooManyRequests:
			case status == http.StatusServiceUnavailable && fixed:
			case status >= 500 && cl.once:
				last.Unknown = true // Mono may have acted before failing to answer
				return 0, nil, last
			case status < 500:
				return 0, nil, last
			}
		}
		if attempt >= c.attempts {
			return 0, nil, last
		}
		if !fixed {
			wait = c.backoffFor(attempt)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return 0, nil, last // the next attempt could not start in time
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, nil, &Error{Op: cl.op, Err: ctx.Err()}
			case <-t.C:
			}
		}
	}
}

// exchange is what every attempt of cl sends, carrying payload.
func (c *Client) exchange(ctx context.Context, cl call, payload []byte) *exchange {
	return &exchange{method: cl.method, url: c.baseURL + cl.path, secret: c.secret,
		session: cl.session, reqID: reqid.From(ctx), body: payload}
}

// backoffFor returns the jittered wait after the given failed attempt:
// uniform in [0, min(maxBackoff, base·2^(attempt-1))].
func (c *Client) backoffFor(attempt int) time.Duration {
	if c.backoff <= 0 {
		return 0
	}
	d := c.backoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// httpError builds the *Error for a non-2xx answer from its body.
func httpError(op string, status int, data []byte, redact []string) *Error {
	e := &Error{Op: op, Status: status}
	var env struct {
		ResponseCode json.RawMessage `json:"responseCode"`
		Message      json.RawMessage `json:"message"`
		Error        json.RawMessage `json:"error"`
	}
	var msg string
	if wirejson.Unmarshal(data, &env) == nil {
		e.ResponseCode = intOf(env.ResponseCode)
		msg = textOf(env.Message)
		if msg == "" {
			msg = textOf(env.Error)
		}
	}
	if strings.TrimSpace(msg) == "" {
		msg = http.StatusText(status)
	}
	if msg == "" {
		msg = "HTTP " + strconv.Itoa(status)
	}
	e.Message = clean(msg, redact)
	return e
}

// badResponse is the error for a 2xx answer that could not be decoded.
func badResponse(op string, status int, err error) *Error {
	return &Error{Op: op, Status: status, Message: "invalid response: " + err.Error(), Err: err}
}

// emptyResponse is the error for a 2xx answer that lacks what was asked for;
// Mono's message is kept when it sent one.
func emptyResponse(op string, status int, message, fallback string) *Error {
	if strings.TrimSpace(message) == "" {
		message = fallback
	}
	return &Error{Op: op, Status: status, Message: clean(message, nil)}
}

// pick returns the string field key from the top level of a JSON object or,
// failing that, from its data object, along with any message.
func pick(data []byte, key string) (value, message string, err error) {
	var top map[string]json.RawMessage
	if err := wirejson.Unmarshal(data, &top); err != nil {
		return "", "", err
	}
	message = textOf(top["message"])
	if v := textOf(top[key]); v != "" {
		return v, message, nil
	}
	if d := top["data"]; isObject(d) {
		var inner map[string]json.RawMessage
		if err := wirejson.Unmarshal(d, &inner); err != nil {
			return "", message, err
		}
		return textOf(inner[key]), message, nil
	}
	return "", message, nil
}

// textOf reads a message-like JSON value: a string, an array of strings, or
// an object with a message of its own.
func textOf(raw json.RawMessage) string {
	switch jsonKind(raw) {
	case '"':
		s, _ := stringOf(raw)
		return s
	case '[':
		var list []string
		if wirejson.Unmarshal(raw, &list) == nil {
			return strings.Join(list, "; ")
		}
	case '{':
		var obj struct {
			Message string `json:"message"`
		}
		if wirejson.Unmarshal(raw, &obj) == nil {
			return obj.Message
		}
	}
	return ""
}

// intOf reads a JSON number or numeric string; anything else is 0.
func intOf(raw json.RawMessage) int {
	if jsonKind(raw) == '"' {
		s, _ := stringOf(raw)
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return v
		}
		return 0
	}
	var n float64
	if wirejson.Unmarshal(raw, &n) == nil {
		return int(n)
	}
	return 0
}

// clean makes Mono's message safe to keep: values the caller sent are
// scrubbed (in case Mono echoes them), control characters become spaces, and
// the result is trimmed to maxMessage characters.
func clean(msg string, redact []string) string {
	for _, s := range redact {
		for _, form := range sentForms(s) {
			msg = strings.ReplaceAll(msg, form, "***")
		}
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	msg = strings.TrimSpace(msg)
	if utf8.RuneCountInString(msg) > maxMessage {
		msg = string([]rune(msg)[:maxMessage])
	}
	return msg
}

// sentForms returns s as sent and as it would appear JSON-escaped, longest
// first, or nothing when s is too short to scrub without mangling messages.
func sentForms(s string) []string {
	if utf8.RuneCountInString(s) < minRedact {
		return nil
	}
	var forms []string
	for _, escapeHTML := range []bool{true, false} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escapeHTML)
		if enc.Encode(s) != nil {
			continue
		}
		quoted := strings.TrimSpace(buf.String())
		if inner := quoted[1 : len(quoted)-1]; inner != s && !slices.Contains(forms, inner) {
			forms = append(forms, inner)
		}
	}
	return append(forms, s)
}

// encode marshals v without HTML escaping, so values go out as given.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// jsonKind is the first byte of the value raw holds ('"' a string, '{'
// an object, '[' an array, a digit or '-' a number, 't', 'f' or 'n'), 0
// when it is empty: what a loosely typed field is, read once, instead of
// decoding it as one type after another until one fits.
func jsonKind(raw json.RawMessage) byte {
	if t := bytes.TrimSpace(raw); len(t) > 0 {
		return t[0]
	}
	return 0
}

// stringOf is the value of raw when it holds a JSON string.
func stringOf(raw json.RawMessage) (string, bool) {
	if jsonKind(raw) != '"' {
		return "", false
	}
	var s string
	return s, wirejson.Unmarshal(raw, &s) == nil
}

// isObject reports whether raw holds a JSON object.
func isObject(raw json.RawMessage) bool { return jsonKind(raw) == '{' }

// isArray reports whether raw holds a JSON array.
func isArray(raw json.RawMessage) bool { return jsonKind(raw) == '[' }
