// Package partner is the partner side of the gateway: the lender or savings
// app that links its users' bank accounts through it. It holds the partner's
// REST API, the webhooks the gateway receives, and the delivery of the
// webhooks the gateway sends the partner from the outbox, signed the
// Standard Webhooks way.
package partner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/outbox"
)

// DefaultWebhookRetryFor is how long a webhook the partner did not take is
// tried again unless configured: two days, a weekend's outage.
const DefaultWebhookRetryFor = 48 * time.Hour

// Delivery defaults and limits.
const (
	deliveryDefaultTimeout    = 10 * time.Second
	deliveryDefaultBackoff    = 5 * time.Second
	deliveryDefaultMaxBackoff = time.Hour
	deliveryPollEvery         = 30 * time.Second // look at the outbox at least this often
	deliveryUserAgent         = "ussdlink-webhooks/1"
	deliveryMaxDrain          = 64 << 10 // bytes of a partner's answer read (and dropped) to reuse the connection
)

// Outbox is the durable queue of webhooks the Deliverer works through. It
// is an interface so the worker can be tested against a failing store; the
// gateway passes its store. Events about one link share an ordering key, so
// the partner gets them in the order they happened (ACCOUNT_LINKED before
// DATA_STATUS).
type Outbox = outbox.Queue

// Deliverer sends the outbox's webhooks to the partner, signed, retrying
// each with exponential backoff until the partner answers 2xx or RetryFor
// has passed since it was enqueued; then it is given up to the dead
// letters. Delivery is at least once: a webhook keeps its id and exact
// bytes across retries, so the partner can drop repeats by webhook-id. The
// events about one link are delivered one at a time, in order; events
// about different links go up to four at once. The queueing itself is
// outbox.Worker's.
//
// Set the fields, then call Run once; Notify may be called at any time.
// Fields changed after the first Notify or Run have no effect. A Deliverer
// must not be copied once used.
type Deliverer struct {
	// URL is the partner's webhook endpoint.
	URL string
	// Observe, when set, hears each delivery attempt's result (see
	// outbox.Worker.Observe).
	Observe func(result string)
	// Signer signs every request.
	Signer *Signer
	// Outbox holds the messages to send.
	Outbox Outbox
	// Client sends the requests. Nil means a client with a 10s timeout that
	// does not follow redirects (a redirect counts as a failure). A client
	// without a timeout is given the 10s one per request, so that a silent
	// partner can neither stall the queue nor hold up shutdown.
	Client *http.Client
	// RetryFor is how long after a message was enqueued failures are still
	// retried; after that a failure gives it up. Zero means 48h.
	RetryFor time.Duration
	// Backoff is the delay after a first failure, doubling with every
	// further one up to MaxBackoff, with jitter so that retries of many
	// messages do not arrive together. Zero means 5s and 1h.
	Backoff, MaxBackoff time.Duration
	// MaxInFlight is how many webhooks are sent at once (a session's
	// events still go one after another); zero means
	// DefaultWebhooksInFlight.
	MaxInFlight int
	// Now tells the time; nil means time.Now. It also stamps the
	// webhook-timestamp header, which partners check against their clock.
	Now func() time.Time
	// Log records each attempt: message id, type, attempt, status or
	// error. Bodies are never logged: they hold phone numbers.
	Log zerolog.Logger

	once   sync.Once
	worker *outbox.Worker
}

// Notify wakes Run at once to look for due messages, such as after new
// events were committed. It never blocks, and may be called from any
// goroutine, before or during Run; wake-ups while Run is busy are merged.
func (d *Deliverer) Notify() {
	d.queueWorker().Notify()
}

// queueWorker returns the worker that runs the queue, made once from the
// fields.
func (d *Deliverer) queueWorker() *outbox.Worker {
	d.once.Do(func() {
		client := d.client()
		first, ceiling := d.backoffs()
		d.worker = &outbox.Worker{
			Queue:       d.Outbox,
			Send:        func(ctx context.Context, m link.Message) error { return d.deliver(ctx, client, m) },
			Noun:        "webhook",
			MaxInFlight: d.maxInFlight(),
			RetryFor:    d.retryFor(),
			Backoff:     first,
			MaxBackoff:  ceiling,
			PollEvery:   deliveryPollEvery,
			Now:         d.now,
			Log:         d.Log,
			Observe:     d.Observe,
		}
	})
	return d.worker
}

// Run delivers due messages, at most four at a time, and between them sleeps
// until the next message is due, Notify is called or ctx ends, looking at
// the outbox at least every 30s anyway. When ctx ends it waits for the
// deliveries under way (each bounded by the client timeout) to finish and
// record their outcome, then returns nil. It returns an error at once when
// the Deliverer is not configured, or is already running.
func (d *Deliverer) Run(ctx context.Context) error {
	switch {
	case d.URL == "":
		return errors.New("webhook deliverer: no partner URL")
	case d.Signer == nil:
		return errors.New("webhook deliverer: no signer")
	case d.Outbox == nil:
		return errors.New("webhook deliverer: no outbox")
	}
	if _, err := url.ParseRequestURI(d.URL); err != nil {
		return errors.New("webhook deliverer: partner URL is not a valid URL")
	}
	if err := d.queueWorker().Run(ctx); err != nil {
		return fmt.Errorf("webhook deliverer: %w", err)
	}
	return nil
}

// deliver makes one attempt at a message. It returns why the partner did
// not take it, in words fit to log and store, or nil.
func (d *Deliverer) deliver(ctx context.Context, client *http.Client, m link.Message) error {
	status, failure := d.post(ctx, client, m, d.now())
	if status != 0 {
		outbox.Logger(ctx).UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Int("status", status) })
	}
	if failure != "" {
		return errors.New(failure)
	}
	return nil
}

// post sends a message once. It returns the partner's status (0 when there
// was no answer) and, when the attempt failed, why, in words fit to log and
// store: never the body, and never the URL, which may carry a token.
func (d *Deliverer) post(ctx context.Context, client *http.Client, m link.Message, at time.Time) (status int, failure string) {
	if client.Timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deliveryDefaultTimeout)
		defer cancel()
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(m.Body))
	if err != nil {
		return 0, "building request failed"
	}
	for k, v := range d.Signer.Headers(m.ID, at, m.Body) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", deliveryUserAgent)

	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, deliveryMaxDrain))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, "partner answered HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// backoff returns the delay before the attempt after the given number of
// failures: Backoff doubled per earlier failure, capped at MaxBackoff, with
// equal jitter.
func (d *Deliverer) backoff(failures int) time.Duration {
	first, ceiling := d.backoffs()
	return outbox.Backoff(failures, first, ceiling)
}

// backoffs returns Backoff and MaxBackoff, or their defaults.
func (d *Deliverer) backoffs() (first, ceiling time.Duration) {
	first, ceiling = d.Backoff, d.MaxBackoff
	if first <= 0 {
		first = deliveryDefaultBackoff
	}
	if ceiling <= 0 {
		ceiling = deliveryDefaultMaxBackoff
	}
	return first, ceiling
}

// client returns Client, or the default: a 10s timeout, and redirects
// answered as they are (so they count as failures).
func (d *Deliverer) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return &http.Client{
		Timeout:       deliveryDefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// retryFor returns RetryFor or its default.
func (d *Deliverer) retryFor() time.Duration {
	if d.RetryFor > 0 {
		return d.RetryFor
	}
	return DefaultWebhookRetryFor
}

// now returns the current time from Now, or the clock.
func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// DefaultWebhooksInFlight is how many webhooks are sent at once unless
// configured: a flow makes several events, and a partner's endpoint takes
// tens of milliseconds to answer each.
const DefaultWebhooksInFlight = 16

// maxInFlight is MaxInFlight or its default.
func (d *Deliverer) maxInFlight() int {
	if d.MaxInFlight > 0 {
		return d.MaxInFlight
	}
	return DefaultWebhooksInFlight
}
