package partner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store"
)

const testPhone = "+2348031234567"

// openStore opens (or reopens) the bbolt file at path.
func openStore(t *testing.T, path string, key []byte) *store.DB {
	t.Helper()
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(path, sealer)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// newStore opens a fresh store closed at the end of the test.
func newStore(t *testing.T) *store.DB {
	t.Helper()
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	db := openStore(t, filepath.Join(t.TempDir(), "gateway.db"), key)
	t.Cleanup(func() { db.Close() })
	return db
}

// enqueue puts an ACCOUNT_LINKED event created at created in the outbox.
func enqueue(t *testing.T, db *store.DB, id string, created time.Time) {
	t.Helper()
	err := db.Enqueue(context.Background(), link.Event{
		ID: id, Type: "ACCOUNT_LINKED", Timestamp: created,
		Data: map[string]any{"account_id": "acc_" + id, "phone": testPhone},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pending returns the messages still in the outbox, due or not.
func pending(t *testing.T, db *store.DB) []link.Message {
	t.Helper()
	msgs, err := db.Webhooks().Due(context.Background(), time.Now().Add(1000*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// received is one request the test partner got.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

// testPartner is the partner's webhook endpoint, with its own secret. It
// records only requests that verify under that secret (answering others
// 401), so stray requests from other tests cannot confuse it. respond
// answers the n-th verified request (from 1); nil answers 200.
type testPartner struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	got    []received
	hits   chan received
}

func newPartner(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *testPartner {
	t.Helper()
	p := &testPartner{secret: GenerateSecret(), hits: make(chan received, 100)}
	verifier, err := standardwebhooks.NewWebhook(p.secret)
	if err != nil {
		t.Fatal(err)
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// Some tests shift the deliverer's clock; the timestamp check
		// itself is covered by the tests of Verify.
		if verifier.VerifyIgnoringTimestamp(body, r.Header) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rec := received{at: time.Now(), header: r.Header.Clone(), body: body}
		p.mu.Lock()
		p.got = append(p.got, rec)
		n := len(p.got)
		p.mu.Unlock()
		p.hits <- rec
		if respond != nil {
			respond(n, w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

// deliverer returns a Deliverer sending to p with p's secret.
func (p *testPartner) deliverer(t *testing.T, outbox Outbox) *Deliverer {
	d := newDeliverer(t, p.URL, outbox)
	d.Signer = mustSigner(t, p.secret)
	return d
}

// requests returns what the partner received so far.
func (p *testPartner) requests() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.got...)
}

// failFirst answers the first n requests with status, then 200.
func failFirst(n, status int) func(int, http.ResponseWriter, *http.Request) {
	return func(i int, w http.ResponseWriter, _ *http.Request) {
		if i <= n {
			w.WriteHeader(status)
		}
	}
}

// newDeliverer returns a Deliverer with fast retries for tests.
func newDeliverer(t *testing.T, url string, outbox Outbox) *Deliverer {
	return &Deliverer{
		URL:        url,
		Signer:     mustSigner(t, GenerateSecret()),
		Outbox:     outbox,
		Backoff:    20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		Log:        zerolog.New(zerolog.NewTestWriter(t)),
	}
}

// start runs d until the returned stop is called (or the test ends); stop
// fails the test unless Run returns nil promptly.
func start(t *testing.T, d *Deliverer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextHit waits for the partner's next request.
func nextHit(t *testing.T, p *testPartner, timeout time.Duration) received {
	t.Helper()
	select {
	case r := <-p.hits:
		return r
	case <-time.After(timeout):
		t.Fatalf("the partner got no request within %s", timeout)
		return received{}
	}
}

func TestDeliveredWebhookVerifiesWithStandardWebhooks(t *testing.T) {
	db := newStore(t)
	p := newPartner(t, nil)
	enqueue(t, db, "msg_1", time.Now())
	start(t, p.deliverer(t, db.Webhooks()))
	got := nextHit(t, p, 2*time.Second)
	waitFor(t, 2*time.Second, "the outbox is empty", func() bool { return len(pending(t, db)) == 0 })

	if ct, ua := got.header.Get("Content-Type"), got.header.Get("User-Agent"); ct != "application/json" || ua != "ussdlink-webhooks/1" {
		t.Errorf("Content-Type %q, User-Agent %q", ct, ua)
	}
	if id := got.header.Get("webhook-id"); id != "msg_1" {
		t.Errorf("webhook-id %q, want msg_1", id)
	}
	var body struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(got.body, &body); err != nil || body.Type != "ACCOUNT_LINKED" || body.Data["phone"] != testPhone {
		t.Errorf("body %s (err %v)", got.body, err)
	}

	tampered := bytes.Replace(got.body, []byte("ACCOUNT_LINKED"), []byte("ACCOUNT_UNLINKD"), 1)
	tests := []struct {
		name   string
		secret string
		body   []byte
		ok     bool
	}{
		{"partner's secret", p.secret, got.body, true},
		{"another secret", GenerateSecret(), got.body, false},
		{"tampered body", p.secret, tampered, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, err := standardwebhooks.NewWebhook(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(tt.body, got.header); (err == nil) != tt.ok {
				t.Errorf("Verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// recordingOutbox notes the delay of every Reschedule.
type recordingOutbox struct {
	Outbox
	mu     sync.Mutex
	delays []time.Duration
}

func (o *recordingOutbox) Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	o.mu.Lock()
	o.delays = append(o.delays, time.Until(next))
	o.mu.Unlock()
	return o.Outbox.Reschedule(ctx, id, attempts, next, lastErr)
}

func TestServerErrorsAreRetriedWithGrowingDelayUntilDelivered(t *testing.T) {
	db := newStore(t)
	rec := &recordingOutbox{Outbox: db.Webhooks()}
	p := newPartner(t, failFirst(2, http.StatusInternalServerError))
	enqueue(t, db, "msg_1", time.Now())
	d := p.deliverer(t, rec)
	stop := start(t, d)

	hits := []received{nextHit(t, p, 2*time.Second), nextHit(t, p, 2*time.Second), nextHit(t, p, 2*time.Second)}
	waitFor(t, 2*time.Second, "the outbox is empty", func() bool { return len(pending(t, db)) == 0 })
	stop() // Run returns once every attempt it started is done: a wrong fourth one is counted
	if n := len(p.requests()); n != 3 {
		t.Fatalf("partner got %d requests, want 3", n)
	}
	for i, h := range hits {
		if id := h.header.Get("webhook-id"); id != "msg_1" {
			t.Errorf("attempt %d: webhook-id %q", i+1, id)
		}
		if !bytes.Equal(h.body, hits[0].body) {
			t.Errorf("attempt %d body differs from the first:\n%s\n%s", i+1, h.body, hits[0].body)
		}
	}
	// The waits recorded: 10–20ms after the first failure, 20–40ms after
	// the second (20ms doubled, with equal jitter).
	rec.mu.Lock()
	delays := append([]time.Duration(nil), rec.delays...)
	rec.mu.Unlock()
	if len(delays) != 2 {
		t.Fatalf("%d reschedules, want 2", len(delays))
	}
	slack := 5 * time.Millisecond
	if delays[0] < 10*time.Millisecond-slack || delays[0] > 20*time.Millisecond ||
		delays[1] < 20*time.Millisecond-slack || delays[1] > 40*time.Millisecond {
		t.Errorf("retry delays %v, want 10–20ms then 20–40ms", delays)
	}
	if gap1, gap2 := hits[1].at.Sub(hits[0].at), hits[2].at.Sub(hits[1].at); gap1 < 10*time.Millisecond || gap2 < 20*time.Millisecond {
		t.Errorf("attempts came %v and %v apart: retried before the backoff", gap1, gap2)
	}
}

func TestAttemptsAndLastErrorAreRecorded(t *testing.T) {
	db := newStore(t)
	p := newPartner(t, failFirst(100, http.StatusServiceUnavailable))
	enqueue(t, db, "msg_1", time.Now())
	d := p.deliverer(t, db.Webhooks())
	d.Backoff, d.MaxBackoff = time.Hour, time.Hour // one attempt, then a long wait
	start(t, d)
	nextHit(t, p, 2*time.Second)
	var m link.Message
	waitFor(t, 2*time.Second, "the failure is recorded", func() bool {
		msgs := pending(t, db)
		if len(msgs) == 1 {
			m = msgs[0]
		}
		return m.Attempts == 1
	})
	if !strings.Contains(m.LastErr, "503") {
		t.Errorf("LastErr %q does not give the status", m.LastErr)
	}
	if wait := time.Until(m.Next); wait < 29*time.Minute || wait > time.Hour {
		t.Errorf("next attempt in %v, want 30m–1h", wait)
	}
}

func TestNetworkFailuresAndTimeoutsAreRetried(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name      string
		respond   func(int, http.ResponseWriter, *http.Request) // first request fails, second succeeds
		url       string                                        // set: a partner that never answers
		timeout   time.Duration
		wantInErr string
	}{
		{
			name: "connection dropped",
			respond: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
				}
			},
			wantInErr: "EOF",
		},
		{
			name: "slow past the client timeout",
			respond: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					select {
					case <-r.Context().Done():
					case <-time.After(2 * time.Second):
					}
				}
			},
			timeout:   100 * time.Millisecond,
			wantInErr: "Timeout",
		},
		{
			name: "redirect",
			respond: func(n int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			wantInErr: "302",
		},
		{name: "server closed", url: closedURL, wantInErr: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := newStore(t)
			rec := &recordingOutbox{Outbox: db.Webhooks()}
			url := tt.url
			var p *testPartner
			if url == "" {
				p = newPartner(t, tt.respond)
				url = p.URL
			}
			enqueue(t, db, "msg_1", time.Now())
			d := newDeliverer(t, url, rec)
			if p != nil {
				d.Signer = mustSigner(t, p.secret)
			}
			if tt.timeout > 0 {
				d.Client = &http.Client{Timeout: tt.timeout}
			}
			errs := make(chan string, 10)
			d.Outbox = errRecorder{rec, errs}
			stop := start(t, d)

			var lastErr string
			select {
			case lastErr = <-errs:
			case <-time.After(3 * time.Second):
				t.Fatal("the failure was not recorded")
			}
			if !strings.Contains(lastErr, tt.wantInErr) {
				t.Errorf("recorded error %q, want it to mention %q", lastErr, tt.wantInErr)
			}
			if strings.Contains(lastErr, url) {
				t.Errorf("recorded error %q gives the partner URL", lastErr)
			}
			if p != nil && tt.name != "redirect" {
				waitFor(t, 3*time.Second, "the retry is delivered", func() bool { return len(pending(t, db)) == 0 })
				for i, r := range p.requests() {
					if id := r.header.Get("webhook-id"); id != "msg_1" {
						t.Errorf("request %d: webhook-id %q", i+1, id)
					}
				}
				return
			}
			waitFor(t, 3*time.Second, "it is retried", func() bool {
				msgs := pending(t, db)
				return len(msgs) == 1 && msgs[0].Attempts >= 2
			})
			stop()
			if dead, _ := db.Webhooks().DeadLetters(context.Background()); len(dead) != 0 {
				t.Errorf("a young message was given up: %+v", dead)
			}
		})
	}
}

// errRecorder passes the errors of Reschedule calls on to errs.
type errRecorder struct {
	Outbox
	errs chan string
}

func (o errRecorder) Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	select {
	case o.errs <- lastErr:
	default:
	}
	return o.Outbox.Reschedule(ctx, id, attempts, next, lastErr)
}

// watchedOutbox is an outbox that tells the test what Run does, so that a
// test waits for Run rather than for time to pass: idle gets a signal each
// time Run finds nothing due (a Due that finds no message up to the next
// poll, or a NextDue that finds none) and goes to sleep until the next
// poll, Notify or the end of its context; delivered is closed once a
// delivery has been recorded.
type watchedOutbox struct {
	Outbox
	idle      chan struct{}
	delivered chan struct{}
	once      sync.Once
}

// watch wraps o in a watchedOutbox.
func watch(o Outbox) *watchedOutbox {
	return &watchedOutbox{Outbox: o, idle: make(chan struct{}, 100), delivered: make(chan struct{})}
}

func (o *watchedOutbox) NextDue(ctx context.Context) (time.Time, bool, error) {
	next, ok, err := o.Outbox.NextDue(ctx)
	if !ok && err == nil {
		o.signalIdle()
	}
	return next, ok, err
}

func (o *watchedOutbox) Due(ctx context.Context, now time.Time, max int) ([]link.Message, error) {
	msgs, err := o.Outbox.Due(ctx, now, max)
	if len(msgs) == 0 && err == nil {
		o.signalIdle()
	}
	return msgs, err
}

// signalIdle tells the test Run found nothing due.
func (o *watchedOutbox) signalIdle() {
	select {
	case o.idle <- struct{}{}:
	default:
	}
}

func (o *watchedOutbox) Delivered(ctx context.Context, id string) error {
	err := o.Outbox.Delivered(ctx, id)
	if err == nil {
		o.once.Do(func() { close(o.delivered) })
	}
	return err
}

// awaitIdle waits until Run has found nothing due n times, failing the test
// after timeout.
func (o *watchedOutbox) awaitIdle(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for i := range n {
		select {
		case <-o.idle:
		case <-deadline:
			t.Fatalf("Run found nothing due %d times within %v, want %d", i, timeout, n)
		}
	}
}

func TestMessagesOlderThanRetryForAreGivenUpNotRetried(t *testing.T) {
	tests := []struct {
		name     string
		age      time.Duration
		retryFor time.Duration
		wantDead bool
	}{
		{"default 48h, a day old: retried", 24 * time.Hour, 0, false},
		{"default 48h, 49h old: given up", 49 * time.Hour, 0, true},
		{"1h, exactly 1h old: given up", time.Hour, time.Hour, true},
		{"1h, 59m old: retried", 59 * time.Minute, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := newStore(t)
			p := newPartner(t, failFirst(100, http.StatusBadGateway))
			now := time.Now()
			enqueue(t, db, "msg_old", now.Add(-tt.age))
			d := p.deliverer(t, db.Webhooks())
			d.RetryFor = tt.retryFor
			d.Backoff, d.MaxBackoff = time.Hour, time.Hour
			d.Now = func() time.Time { return now }
			stop := start(t, d)
			nextHit(t, p, 2*time.Second)
			waitFor(t, 2*time.Second, "the failure is recorded", func() bool {
				msgs := pending(t, db)
				return len(msgs) == 0 || msgs[0].Attempts > 0
			})
			stop()

			dead, err := db.Webhooks().DeadLetters(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			left := pending(t, db)
			if tt.wantDead {
				if len(dead) != 1 || dead[0].ID != "msg_old" || !strings.Contains(dead[0].LastErr, "502") || len(left) != 0 {
					t.Errorf("dead letters %+v, outbox %+v: want msg_old dead with its reason", dead, left)
				}
			} else if len(dead) != 0 || len(left) != 1 || left[0].Attempts != 1 {
				t.Errorf("dead letters %+v, outbox %+v: want msg_old rescheduled", dead, left)
			}
			if n := len(p.requests()); n != 1 {
				t.Errorf("partner got %d requests, want 1", n)
			}
		})
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	path := filepath.Join(t.TempDir(), "gateway.db")
	p := newPartner(t, failFirst(1, http.StatusInternalServerError))

	db := openStore(t, path, key)
	enqueue(t, db, "msg_1", time.Now())
	d := p.deliverer(t, db.Webhooks())
	d.Backoff, d.MaxBackoff = time.Hour, time.Hour // no retry before the restart
	stop := start(t, d)
	first := nextHit(t, p, 2*time.Second)
	stop() // Run returns only once the failure is recorded
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openStore(t, path, key)
	t.Cleanup(func() { db.Close() })
	msgs := pending(t, db)
	if len(msgs) != 1 || msgs[0].ID != "msg_1" || msgs[0].Attempts != 1 || msgs[0].LastErr == "" {
		t.Fatalf("after reopening, the outbox holds %+v; want msg_1 with one failed attempt", msgs)
	}
	d = p.deliverer(t, db.Webhooks())
	d.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } // the retry is due
	stop = start(t, d)
	second := nextHit(t, p, 2*time.Second)
	waitFor(t, 2*time.Second, "the outbox is empty", func() bool { return len(pending(t, db)) == 0 })
	stop() // Run returns once every attempt it started is done: a wrong third one is counted

	if n := len(p.requests()); n != 2 {
		t.Errorf("partner got %d requests, want 2: one failure, one delivery", n)
	}
	if a, b := first.header.Get("webhook-id"), second.header.Get("webhook-id"); a != "msg_1" || b != "msg_1" {
		t.Errorf("webhook-ids %q then %q, want msg_1 both times", a, b)
	}
	if !bytes.Equal(first.body, second.body) {
		t.Errorf("the body changed across the restart:\n%s\n%s", first.body, second.body)
	}
}

func TestNotifyWakesRunPromptly(t *testing.T) {
	db := newStore(t)
	p := newPartner(t, nil)
	watched := watch(db.Webhooks())
	d := p.deliverer(t, watched)
	for range 3 {
		d.Notify() // before Run: must not block
	}
	start(t, d)
	// Run finds nothing when it starts, and again after the wake-up the
	// Notify calls before it left it (or, were that dropped, after the 30s
	// poll); then it sleeps for the 30s poll with no wake-up pending.
	watched.awaitIdle(t, 2, 35*time.Second)

	enqueue(t, db, "msg_1", time.Now())
	sent := time.Now()
	d.Notify()
	nextHit(t, p, time.Second)
	if took := time.Since(sent); took > 500*time.Millisecond {
		t.Errorf("delivered %v after Notify", took)
	}

	// Notify from many goroutines at once, during Run.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(d.Notify)
	}
	wg.Wait()
}

func TestRunReturnsWhenContextCancelled(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		watched := watch(newStore(t).Webhooks())
		d := newDeliverer(t, "http://127.0.0.1:1/", watched)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		watched.awaitIdle(t, 1, 2*time.Second)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Run did not return")
		}
	})
	t.Run("waits for the delivery in flight and records it", func(t *testing.T) {
		db := newStore(t)
		release := make(chan struct{})
		p := newPartner(t, func(int, http.ResponseWriter, *http.Request) { <-release })
		enqueue(t, db, "msg_1", time.Now())
		watched := watch(db.Webhooks())
		d := p.deliverer(t, watched)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		nextHit(t, p, 2*time.Second)
		cancel()
		close(release)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return")
		}
		select {
		case <-watched.delivered: // recorded before Run returned
		default:
			t.Fatal("Run returned with a delivery in flight")
		}
		if left := pending(t, db); len(left) != 0 {
			t.Errorf("the delivery finished during shutdown was not recorded: %+v", left)
		}
	})
}

func TestRunRefusesIncompleteConfigAndASecondRun(t *testing.T) {
	db := newStore(t)
	signer := mustSigner(t, testSecret)
	tests := []struct {
		name string
		d    *Deliverer
	}{
		{"no URL", &Deliverer{Signer: signer, Outbox: db.Webhooks()}},
		{"bad URL", &Deliverer{URL: "not a url", Signer: signer, Outbox: db.Webhooks()}},
		{"no signer", &Deliverer{URL: "http://partner.test/", Outbox: db.Webhooks()}},
		{"no outbox", &Deliverer{URL: "http://partner.test/", Signer: signer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.d.Run(context.Background()); err == nil {
				t.Error("Run = nil, want an error")
			}
		})
	}

	watched := watch(db.Webhooks())
	d := &Deliverer{URL: "http://partner.test/", Signer: signer, Outbox: watched}
	start(t, d)
	watched.awaitIdle(t, 1, 2*time.Second) // the first Run is running
	// A second Run that starts all the same stops, failing the test rather
	// than hanging it.
	second, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Run(second); err == nil {
		t.Error("a second Run started")
	}
}

func TestDeliveriesInFlightAreBoundedByMaxInFlight(t *testing.T) {
	tests := []struct {
		name        string
		maxInFlight int
		messages    int
		least, most int32 // deliveries seen at once
	}{
		{"four, as configured", 4, 12, 2, 4},
		{"the default, 16", 0, 40, 5, DefaultWebhooksInFlight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newStore(t)
			var cur, peak atomic.Int32
			p := newPartner(t, func(int, http.ResponseWriter, *http.Request) {
				n := cur.Add(1)
				for {
					m := peak.Load()
					if n <= m || peak.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(30 * time.Millisecond)
				cur.Add(-1)
			})
			for i := range tt.messages {
				enqueue(t, db, fmt.Sprintf("msg_%02d", i), time.Now())
			}
			d := p.deliverer(t, db.Webhooks())
			d.MaxInFlight = tt.maxInFlight
			start(t, d)
			waitFor(t, 5*time.Second, "all are delivered", func() bool { return len(pending(t, db)) == 0 })
			if n := len(p.requests()); n != tt.messages {
				t.Errorf("partner got %d requests, want %d", n, tt.messages)
			}
			if pk := peak.Load(); pk > tt.most || pk < tt.least {
				t.Errorf("%d deliveries at once, want %d–%d", pk, tt.least, tt.most)
			}
		})
	}
}

// More than busyLoopCalls-1 outbox calls within busyLoopWindow of Run's
// start make a busy loop.
const (
	busyLoopCalls  = 21
	busyLoopWindow = 300 * time.Millisecond
)

// failingOutbox fails every call. It counts the calls made within
// busyLoopWindow of since: the first call after the window, or the
// busyLoopCalls-th within it, sets inWindow and closes counted.
type failingOutbox struct {
	since    time.Time
	calls    atomic.Int32
	once     sync.Once
	counted  chan struct{}
	inWindow int32
}

// called counts a read of the outbox.
func (o *failingOutbox) called() {
	n := o.calls.Add(1)
	late := time.Since(o.since) >= busyLoopWindow
	if late || n == busyLoopCalls {
		o.once.Do(func() {
			o.inWindow = n
			if late {
				o.inWindow--
			}
			close(o.counted)
		})
	}
}

func (o *failingOutbox) Due(context.Context, time.Time, int) ([]link.Message, error) {
	o.called()
	return nil, errors.New("disk on fire")
}
func (o *failingOutbox) NextDue(context.Context) (time.Time, bool, error) {
	o.called()
	return time.Time{}, false, errors.New("disk on fire")
}
func (o *failingOutbox) Delivered(context.Context, string) error { return errors.New("disk on fire") }
func (o *failingOutbox) Reschedule(context.Context, string, int, time.Time, string) error {
	return errors.New("disk on fire")
}
func (o *failingOutbox) GiveUp(context.Context, string, string) error {
	return errors.New("disk on fire")
}

func TestOutboxErrorsDoNotBusyLoop(t *testing.T) {
	o := &failingOutbox{since: time.Now(), counted: make(chan struct{})}
	d := newDeliverer(t, "http://partner.test/", o)
	d.Log = zerolog.Nop()
	stop := start(t, d)
	select {
	case <-o.counted: // a call came after the 300ms, or a busy loop's many calls before
	case <-time.After(10 * time.Second):
		// No call after the 300ms: fewer than busyLoopCalls in all.
	}
	stop()
	// Backoff 20ms doubling to 200ms: a handful of tries in 300ms.
	if n := o.inWindow; n > busyLoopCalls-1 {
		t.Errorf("%d outbox calls in 300ms: a busy loop", n)
	}
}

func TestLogsNeverHoldBodies(t *testing.T) {
	var buf syncBuffer
	db := newStore(t)
	p := newPartner(t, failFirst(1, http.StatusInternalServerError))
	enqueue(t, db, "msg_1", time.Now())
	d := p.deliverer(t, db.Webhooks())
	d.Log = zerolog.New(&buf)
	start(t, d)
	waitFor(t, 2*time.Second, "delivered", func() bool { return len(pending(t, db)) == 0 })
	logs := buf.String()
	if !strings.Contains(logs, "msg_1") || !strings.Contains(logs, "ACCOUNT_LINKED") {
		t.Errorf("logs lack the id and type:\n%s", logs)
	}
	if strings.Contains(logs, testPhone) || strings.Contains(logs, "acc_msg_1") {
		t.Errorf("logs hold the body:\n%s", logs)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBackoffDoublesWithEqualJitterUpToTheCap(t *testing.T) {
	tests := []struct {
		name                string
		backoff, maxBackoff time.Duration
		failures            int
		wantBase            time.Duration
	}{
		{"first failure", 20 * time.Millisecond, 200 * time.Millisecond, 0, 20 * time.Millisecond},
		{"second failure doubles", 20 * time.Millisecond, 200 * time.Millisecond, 1, 40 * time.Millisecond},
		{"third", 20 * time.Millisecond, 200 * time.Millisecond, 2, 80 * time.Millisecond},
		{"capped", 20 * time.Millisecond, 200 * time.Millisecond, 4, 200 * time.Millisecond},
		{"many failures do not overflow", 20 * time.Millisecond, 200 * time.Millisecond, 10_000, 200 * time.Millisecond},
		{"huge cap does not overflow", time.Second, time.Duration(1<<63 - 1), 200, time.Duration(1<<63 - 1)},
		{"defaults: 5s", 0, 0, 0, 5 * time.Second},
		{"defaults: capped at 1h", 0, 0, 20, time.Hour},
		{"backoff above the cap", time.Hour, time.Minute, 0, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Deliverer{Backoff: tt.backoff, MaxBackoff: tt.maxBackoff}
			for range 200 {
				got := d.backoff(tt.failures)
				if got < tt.wantBase-tt.wantBase/2 || got > tt.wantBase {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.failures, got, tt.wantBase-tt.wantBase/2, tt.wantBase)
				}
			}
		})
	}
}
