package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Event names the sandbox sends, as Mono names them in the envelope's event
// field. With WebhookOptions.App or Business set, every event's data also
// carries app and business.
const (
	EventAccountConnected        = "mono.events.account_connected"        // data: {id}
	EventAccountUpdated          = "mono.events.account_updated"          // data: {account, customer?, meta}
	EventAccountReauthorized     = "mono.events.account_reauthorized"     // data: {account: {_id}}
	EventReauthorisationRequired = "mono.events.reauthorisation_required" // data: {account: {_id}}
	EventAccountUnlinked         = "mono.events.account_unlinked"         // data: {account: {id}}; see Sandbox.Unlink
	EventSyncFailed              = "mono.events.sync_failed"              // data: {account: {_id}}; see Sandbox.FailSync
)

// Webhook delivery settings.
const (
	// WebhookSecretHeader carries WebhookOptions.Secret on every delivery.
	WebhookSecretHeader = "mono-webhook-secret"
	// DefaultWebhookTimeout is the timeout of the client used when
	// WebhookOptions.Client is nil.
	DefaultWebhookTimeout = 5 * time.Second
	// WebhookRetries is how many times a delivery is retried after its
	// first attempt fails (a network error or a status other than 2xx).
	WebhookRetries = 5
	// WebhookBackoff is the wait before the first retry; it doubles before
	// each further one.
	WebhookBackoff = 100 * time.Millisecond
)

// Details of a delivery.
const (
	maxWebhookReply        = 64 << 10 // how much of a receiver's answer is read
	webhookTimestampLayout = "2006-01-02T15:04:05.000Z07:00"
	webhookEventIDLength   = 24
)

// ErrUnknownAccount is returned by RequireReauth, FailSync and Unlink for an
// account id the sandbox never issued, or has unlinked since.
var ErrUnknownAccount = errors.New("sandbox: unknown account")

// WebhookOptions configures the webhooks a Sandbox sends, as Mono would to
// the URL set on an app's dashboard. The zero value sends nothing.
type WebhookOptions struct {
	// URL receives every event as a JSON POST. Empty means no webhooks are
	// sent.
	URL string
	// Secret is sent in the mono-webhook-secret header of every delivery;
	// the header is left out when Secret is empty.
	Secret string
	// Client sends the deliveries; a client with a DefaultWebhookTimeout
	// timeout if nil.
	Client *http.Client
	// App and Business, when set, are added to every event's data as "app"
	// and "business", as Mono's 2026 events carry the ids of the app and
	// business the account belongs to. Empty leaves each key out, as older
	// events do.
	App      string
	Business string
}

// envelope is a webhook body as Mono sends it.
type envelope struct {
	Event     string `json:"event"`
	EventID   string `json:"event_id"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// hookEvent is one queued delivery: its body is fixed when queued, so every
// retry carries the same event_id.
type hookEvent struct {
	body []byte
}

// hooks is a Sandbox's webhook sender: a FIFO queue drained by one goroutine,
// started when something is queued and gone when the queue is empty.
type hooks struct {
	url    string
	secret string
	client *http.Client
	extra  []byte          // `"app":…,"business":…` to add to every event's data, or empty
	ctx    context.Context // ended by Close: aborts a delivery in flight
	cancel context.CancelFunc

	mu       sync.Mutex
	queue    []*hookEvent
	running  bool          // a goroutine is draining queue
	closed   bool          // Close has been called
	queued   int           // events ever queued
	finished int           // events delivered, given up or dropped
	sent     int           // events acknowledged with a 2xx
	progress chan struct{} // closed and replaced whenever finished grows
	wg       sync.WaitGroup
}

// newHooks returns the sender for opts.
func newHooks(opts WebhookOptions) *hooks {
	h := &hooks{
		url:      opts.URL,
		secret:   opts.Secret,
		client:   opts.Client,
		progress: make(chan struct{}),
	}
	if h.client == nil {
		h.client = &http.Client{Timeout: DefaultWebhookTimeout}
	}
	for _, kv := range [...][2]string{{"app", opts.App}, {"business", opts.Business}} {
		if kv[1] == "" {
			continue
		}
		if len(h.extra) > 0 {
			h.extra = append(h.extra, ',')
		}
		k, _ := json.Marshal(kv[0])
		v, _ := json.Marshal(kv[1])
		h.extra = append(append(append(h.extra, k...), ':'), v...)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// event queues event with data, stamped at now. It never blocks on the
// network. The caller may hold Sandbox.mu: hooks.mu is only ever taken after
// it, never before.
func (s *Sandbox) event(name string, data any) {
	h := s.hooks
	if h.url == "" {
		return
	}
	body := encode(envelope{
		Event:     name,
		EventID:   "evt_" + randomString(webhookEventIDLength),
		Timestamp: s.stamp(),
		Data:      h.withIDs(data),
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.queue = append(h.queue, &hookEvent{body: body})
	h.queued++
	if !h.running {
		h.running = true
		h.wg.Add(1)
		go h.drain()
	}
}

// withIDs is data with h.extra (the app and business ids) added to it, when
// there is any and data is a JSON object.
func (h *hooks) withIDs(data any) any {
	if len(h.extra) == 0 {
		return data
	}
	raw := bytes.TrimSpace(encode(data))
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return data
	}
	out := make([]byte, 0, len(raw)+len(h.extra)+1)
	out = append(out, raw[:len(raw)-1]...)
	if len(bytes.TrimSpace(raw[1:len(raw)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(append(out, h.extra...), '}')
	return json.RawMessage(out)
}

// accountData is data.account of account_reauthorized,
// reauthorisation_required and sync_failed.
type accountData struct {
	Account struct {
		ID string `json:"_id"`
	} `json:"account"`
}

// accountRef is the data of an event that names an account by _id.
func accountRef(id string) accountData {
	var d accountData
	d.Account.ID = id
	return d
}

// linkedEvents queues account_connected then account_updated for a, just
// exchanged. The caller holds s.mu.
func (s *Sandbox) linkedEvents(a *linked) {
	if s.hooks.url == "" {
		return
	}
	s.event(EventAccountConnected, struct {
		ID string `json:"id"`
	}{a.id})
	s.event(EventAccountUpdated, s.detailsData(a))
}

// reauthorisedEvents queues account_reauthorized then account_updated for
// the account id names. The caller holds s.mu.
func (s *Sandbox) reauthorisedEvents(id string) {
	a, ok := s.accounts[id]
	if !ok || s.hooks.url == "" {
		return
	}
	s.event(EventAccountReauthorized, accountRef(id))
	s.event(EventAccountUpdated, s.detailsData(a))
}

// RequireReauth sends mono.events.reauthorisation_required for accountID,
// as Mono does when a linked account needs its owner to log in again. It
// returns an error wrapping ErrUnknownAccount for an id the exchange never
// issued, and nil otherwise, even when no webhook URL is configured.
func (s *Sandbox) RequireReauth(accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[accountID]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAccount, accountID)
	}
	s.event(EventReauthorisationRequired, accountRef(accountID))
	return nil
}

// FailSync sends mono.events.sync_failed for accountID, as Mono does when a
// data sync of a linked account fails on its side, so tests can drive the
// gateway's handling of it. It returns an error wrapping ErrUnknownAccount
// for an id the sandbox does not know, and nil otherwise, even when no
// webhook URL is configured. The account stays linked.
func (s *Sandbox) FailSync(accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[accountID]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAccount, accountID)
	}
	s.event(EventSyncFailed, accountRef(accountID))
	return nil
}

// Unlink forgets a linked account, as POST /v2/accounts/{id}/unlink does
// (and as Mono does when a customer unlinks from their side): later
// details of it answer 404, its pending reauthorisation tokens and
// sessions are dropped, and mono.events.account_unlinked is sent. Linking
// the same bank account again gives it the same id back. It returns an
// error wrapping ErrUnknownAccount for an id the sandbox does not know, and
// nil otherwise, even when no webhook URL is configured.
func (s *Sandbox) Unlink(accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unlink(accountID)
}

// unlink is Unlink. The caller holds s.mu.
func (s *Sandbox) unlink(id string) error {
	if _, ok := s.accounts[id]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAccount, id)
	}
	delete(s.accounts, id)
	for t, tok := range s.tokens {
		if tok.account == id {
			delete(s.tokens, t)
		}
	}
	for sid, sess := range s.sessions {
		if sess.reauth == id {
			delete(s.sessions, sid)
		}
	}
	var data struct {
		Account idRef `json:"account"`
	}
	data.Account.ID = id
	s.event(EventAccountUnlinked, data)
	return nil
}

// WaitWebhooks blocks until every event queued before the call has been
// delivered or given up on, or Close has dropped it. It returns ctx's error
// if ctx ends first.
func (s *Sandbox) WaitWebhooks(ctx context.Context) error {
	h := s.hooks
	h.mu.Lock()
	target := h.queued
	h.mu.Unlock()
	for {
		h.mu.Lock()
		done, progress := h.finished >= target, h.progress
		h.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-progress:
		}
	}
}

// WebhooksSent reports how many events a receiver has acknowledged with a
// 2xx status. An event retried until acknowledged counts once.
func (s *Sandbox) WebhooksSent() int {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent
}

// Close stops the webhook sender: a delivery in flight is abandoned, queued
// events are dropped and later ones are not queued. The API keeps answering.
// Close waits for the sender to stop and may be called more than once.
func (s *Sandbox) Close() {
	h := s.hooks
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		h.cancel()
		h.queue = nil
		h.finished = h.queued
		h.advance()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// advance wakes WaitWebhooks callers. The caller holds h.mu.
func (h *hooks) advance() {
	close(h.progress)
	h.progress = make(chan struct{})
}

// drain delivers queued events in order until the queue is empty or the
// sender is closed.
func (h *hooks) drain() {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		if h.closed || len(h.queue) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		ev := h.queue[0]
		h.mu.Unlock()

		ok := h.deliver(ev)

		h.mu.Lock()
		if ok {
			h.sent++
		}
		if !h.closed {
			h.queue[0] = nil
			h.queue = h.queue[1:]
			h.finished++
			h.advance()
		}
		h.mu.Unlock()
	}
}

// deliver posts ev until a receiver acknowledges it, retrying WebhookRetries
// times with a doubling backoff from WebhookBackoff. It reports whether ev
// was acknowledged.
func (h *hooks) deliver(ev *hookEvent) bool {
	delay := WebhookBackoff
	for retry := 0; ; retry++ {
		if h.post(ev) {
			return true
		}
		if retry == WebhookRetries || wait(h.ctx, delay) != nil {
			return false
		}
		delay *= 2
	}
}

// post makes one delivery attempt and reports whether it got a 2xx.
func (h *hooks) post(ev *hookEvent) bool {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, h.url, bytes.NewReader(ev.body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mono-sandbox-webhooks")
	if h.secret != "" {
		req.Header.Set(WebhookSecretHeader, h.secret)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookReply))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
