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
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/store"
)

// Delivery defaults and limits.
const (
	deliveryDefaultTimeout    = 10 * time.Second
	deliveryDefaultRetryFor   = 48 * time.Hour
	deliveryDefaultBackoff    = 5 * time.Second
	deliveryDefaultMaxBackoff = time.Hour
	deliveryMaxInFlight       = 4                // webhooks sent at once
	deliveryPollEvery         = 30 * time.Second // look at the outbox at least this often
	deliveryUserAgent         = "ussdlink-webhooks/1"
	deliveryMaxDrain          = 64 << 10 // bytes of a partner's answer read (and dropped) to reuse the connection
)

// Outbox is the durable queue of webhooks the Deliverer works through. It is
// an interface so the worker can be tested against a failing store; the
// gateway uses *store.DB.
type Outbox interface {
	// Due returns up to max messages whose next attempt is not after now,
	// the longest waiting first.
	Due(ctx context.Context, now time.Time, max int) ([]store.Message, error)
	// NextDue returns when the earliest message is due, or false when the
	// outbox is empty.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// Delivered removes a message the partner acknowledged.
	Delivered(ctx context.Context, id string) error
	// Reschedule records a failed attempt and when to try again.
	Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error
	// GiveUp moves a message that could not be delivered in time to the
	// dead letters.
	GiveUp(ctx context.Context, id string, lastErr string) error
}

var _ Outbox = (*store.DB)(nil)

// Deliverer sends the outbox's webhooks to the partner, signed, retrying
// each with exponential backoff until the partner answers 2xx or RetryFor
// has passed since it was enqueued; then it is given up to the dead
// letters. Delivery is at least once: a webhook keeps its id and exact
// bytes across retries, so the partner can drop repeats by webhook-id.
//
// Set the fields, then call Run once; Notify may be called at any time. A
// Deliverer must not be copied once used.
type Deliverer struct {
	// URL is the partner's webhook endpoint.
	URL string
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
	// Now tells the time; nil means time.Now. It also stamps the
	// webhook-timestamp header, which partners check against their clock.
	Now func() time.Time
	// Log records each attempt: message id, type, attempt, status or
	// error. Bodies are never logged: they hold phone numbers.
	Log zerolog.Logger

	once    sync.Once
	wake    chan struct{}
	running atomic.Bool
}

// deliveryResult is what one delivery reports to Run.
type deliveryResult struct {
	id       string
	storeErr error // the outbox could not record the outcome
}

// Notify wakes Run at once to look for due messages, such as after new
// events were committed. It never blocks, and may be called from any
// goroutine, before or during Run; wake-ups while Run is busy are merged.
func (d *Deliverer) Notify() {
	select {
	case d.wakeChan() <- struct{}{}:
	default:
	}
}

// wakeChan returns the channel Notify signals, made on first use so the
// zero Deliverer works.
func (d *Deliverer) wakeChan() chan struct{} {
	d.once.Do(func() { d.wake = make(chan struct{}, 1) })
	return d.wake
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
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("webhook deliverer: already running")
	}
	defer d.running.Store(false)

	wake := d.wakeChan()
	client := d.client()
	// Buffered for every delivery in flight, so none blocks reporting
	// after Run stopped listening.
	results := make(chan deliveryResult, deliveryMaxInFlight)
	inFlight := make(map[string]bool, deliveryMaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Outcomes are recorded even while shutting down: a delivery that
	// finishes after ctx ended still counts its attempt.
	bg := context.WithoutCancel(ctx)

	var pause time.Time // after an outbox error: no new work before this
	storeErrs := 0
	outboxFailed := func(now time.Time, what string, err error) {
		pause = now.Add(d.backoff(storeErrs))
		storeErrs++
		d.Log.Error().Err(err).Time("retry_at", pause).Msg("webhook outbox: " + what)
	}
	settle := func(r deliveryResult) {
		delete(inFlight, r.id)
		if r.storeErr != nil {
			outboxFailed(d.now(), "recording delivery", r.storeErr)
		} else {
			storeErrs = 0
		}
	}

	for ctx.Err() == nil {
		now := d.now()
		if free := deliveryMaxInFlight - len(inFlight); free > 0 && !now.Before(pause) {
			msgs, err := d.Outbox.Due(ctx, now, len(inFlight)+free)
			if err != nil && ctx.Err() == nil {
				outboxFailed(now, "reading due messages", err)
			}
			for _, m := range msgs {
				if free == 0 {
					break
				}
				if inFlight[m.ID] {
					continue
				}
				inFlight[m.ID] = true
				free--
				wg.Add(1)
				go func() {
					defer wg.Done()
					results <- deliveryResult{id: m.ID, storeErr: d.deliver(bg, client, m)}
				}()
			}
		}

		timer := time.NewTimer(d.sleepFor(ctx, now, inFlight, pause, outboxFailed))
		select {
		case <-ctx.Done():
		case r := <-results:
			settle(r)
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
		for drained := false; !drained; {
			select {
			case r := <-results:
				settle(r)
			default:
				drained = true
			}
		}
	}
	return nil
}

// sleepFor returns how long Run may sleep: until the earliest message that
// is not in flight is due, or the outbox may be tried again after an error,
// and never longer than the poll interval. A finished delivery or Notify
// wakes Run sooner.
func (d *Deliverer) sleepFor(ctx context.Context, now time.Time, inFlight map[string]bool, pause time.Time, failed func(time.Time, string, error)) time.Duration {
	wait := deliveryPollEvery
	if now.Before(pause) {
		return min(pause.Sub(now), wait)
	}
	if len(inFlight) >= deliveryMaxInFlight {
		return wait // a finished delivery frees a slot and wakes Run
	}
	next, ok, err := d.nextDue(ctx, now, inFlight)
	if err != nil {
		if ctx.Err() == nil {
			failed(now, "reading next due time", err)
			return min(pause.Sub(now), wait)
		}
		return wait
	}
	if ok {
		wait = min(max(next.Sub(now), 0), wait)
	}
	return wait
}

// nextDue returns when the earliest message that is not being delivered is
// due. With nothing in flight that is the outbox's NextDue; otherwise the
// messages in flight (still in the outbox, due in the past) come first, so
// it looks one past them among those due before the next poll.
func (d *Deliverer) nextDue(ctx context.Context, now time.Time, inFlight map[string]bool) (time.Time, bool, error) {
	if len(inFlight) == 0 {
		return d.Outbox.NextDue(ctx)
	}
	msgs, err := d.Outbox.Due(ctx, now.Add(deliveryPollEvery), len(inFlight)+1)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, m := range msgs {
		if !inFlight[m.ID] {
			return m.Next, true, nil
		}
	}
	return time.Time{}, false, nil
}

// deliver makes one attempt at a message and records its outcome in the
// outbox: delivered, rescheduled or given up. It returns only an error of
// the outbox; the partner's failures are recorded, not returned.
func (d *Deliverer) deliver(ctx context.Context, client *http.Client, m store.Message) error {
	attempt := m.Attempts + 1
	start := d.now()
	status, failure := d.post(ctx, client, m, start)
	now := d.now()
	ev := func(e *zerolog.Event) *zerolog.Event {
		e = e.Str("webhook_id", m.ID).Str("type", m.Type).Int("attempt", attempt).Dur("took", now.Sub(start))
		if status != 0 {
			e = e.Int("status", status)
		}
		return e
	}

	if failure == "" {
		if err := d.Outbox.Delivered(ctx, m.ID); err != nil {
			ev(d.Log.Error()).Err(err).Msg("webhook delivered but not marked so: it will be sent again")
			return err
		}
		ev(d.Log.Info()).Msg("webhook delivered")
		return nil
	}

	if age := now.Sub(m.Created); age >= d.retryFor() {
		reason := fmt.Sprintf("gave up after %d attempts over %s: %s", attempt, age.Round(time.Second), failure)
		if err := d.Outbox.GiveUp(ctx, m.ID, reason); err != nil {
			ev(d.Log.Error()).Err(err).Str("error", failure).Msg("webhook could not be given up")
			return err
		}
		ev(d.Log.Error()).Str("error", failure).Msg("webhook given up: moved to dead letters")
		return nil
	}

	next := now.Add(d.backoff(m.Attempts))
	if err := d.Outbox.Reschedule(ctx, m.ID, attempt, next, failure); err != nil {
		ev(d.Log.Error()).Err(err).Str("error", failure).Msg("webhook failure could not be recorded")
		return err
	}
	ev(d.Log.Warn()).Str("error", failure).Time("retry_at", next).Msg("webhook failed: will retry")
	return nil
}

// post sends a message once. It returns the partner's status (0 when there
// was no answer) and, when the attempt failed, why, in words fit to log and
// store: never the body, and never the URL, which may carry a token.
func (d *Deliverer) post(ctx context.Context, client *http.Client, m store.Message, at time.Time) (status int, failure string) {
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
// equal jitter (half of it fixed, half random) so it always grows with the
// failures yet spreads retries of many messages apart.
func (d *Deliverer) backoff(failures int) time.Duration {
	base, ceiling := d.Backoff, d.MaxBackoff
	if base <= 0 {
		base = deliveryDefaultBackoff
	}
	if ceiling <= 0 {
		ceiling = deliveryDefaultMaxBackoff
	}
	base = min(base, ceiling)
	for i := 0; i < failures && base < ceiling; i++ {
		if base > ceiling/2 {
			base = ceiling
		} else {
			base *= 2
		}
	}
	half := base / 2
	return base - half + rand.N(half+1)
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
	return deliveryDefaultRetryFor
}

// now returns the current time from Now, or the clock.
func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}
