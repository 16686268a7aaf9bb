package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

const hookSecret = "whsec_sandbox_test"

var eventID = regexp.MustCompile(`^evt_[A-Za-z0-9]{8,}$`)

// delivery is one webhook request the receiver got.
type delivery struct {
	at          time.Time
	secret      string
	contentType string
	raw         []byte
	Event       string          `json:"event"`
	EventID     string          `json:"event_id"`
	Timestamp   string          `json:"timestamp"`
	Data        json.RawMessage `json:"data"`
}

// data decodes the delivery's data.
func (d delivery) data(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(d.Data, &m); err != nil {
		t.Fatalf("%s: data %s: %v", d.Event, d.Data, err)
	}
	return m
}

// Special answers a receiver can give instead of a status.
const (
	hangUp = -1 // close the connection without answering
	stall  = -2 // wait a second (or until the sender gives up) before 200
)

// receiver is a webhook endpoint recording what it is sent. answer, if set,
// picks the status for the nth (0-based) request.
type receiver struct {
	t      *testing.T
	url    string
	mu     sync.Mutex
	got    []delivery
	answer func(n int, d delivery) int
}

func newReceiver(t *testing.T, answer func(n int, d delivery) int) *receiver {
	t.Helper()
	rc := &receiver{t: t, answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/webhooks/mono"
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: reading body: %v", err)
		return
	}
	d := delivery{at: time.Now(), secret: r.Header.Get("mono-webhook-secret"), contentType: r.Header.Get("Content-Type"), raw: raw}
	if r.Method != http.MethodPost || r.URL.Path != "/webhooks/mono" {
		rc.t.Errorf("receiver: %s %s", r.Method, r.URL.Path)
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		rc.t.Errorf("receiver: body %s: %v", raw, err)
	}
	rc.mu.Lock()
	n := len(rc.got)
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	status := http.StatusOK
	if rc.answer != nil {
		status = rc.answer(n, d)
	}
	switch status {
	case hangUp:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			rc.t.Errorf("receiver: hijack: %v", err)
			return
		}
		_ = conn.Close()
	case stall:
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(status)
	}
}

// all returns a copy of what was delivered so far.
func (rc *receiver) all() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// since returns the deliveries after the first n.
func (rc *receiver) since(n int) []delivery {
	return rc.all()[n:]
}

// hooked starts a sandbox that sends its webhooks to a new receiver.
func hooked(t *testing.T, answer func(n int, d delivery) int) (*api, *receiver) {
	t.Helper()
	rc := newReceiver(t, answer)
	a := start(t, sandbox.Options{Webhook: sandbox.WebhookOptions{URL: rc.url, Secret: hookSecret}})
	t.Cleanup(a.sb.Close) // runs before the servers close
	return a, rc
}

// settle waits for every queued webhook.
func (a *api) settle() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := a.sb.WaitWebhooks(ctx); err != nil {
		a.t.Fatalf("WaitWebhooks: %v", err)
	}
}

// events lists the event names of ds.
func events(ds []delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Event
	}
	return out
}

// wantEvents fails unless ds are exactly the events named, each a
// well-formed envelope carrying the secret.
func wantEvents(t *testing.T, ds []delivery, names ...string) {
	t.Helper()
	got := events(ds)
	if len(got) != len(names) {
		t.Fatalf("events %v, want %v", got, names)
	}
	for i, d := range ds {
		if d.Event != names[i] {
			t.Fatalf("events %v, want %v", got, names)
		}
		if d.secret != hookSecret {
			t.Errorf("%s: mono-webhook-secret %q, want %q", d.Event, d.secret, hookSecret)
		}
		if d.contentType != "application/json" {
			t.Errorf("%s: Content-Type %q", d.Event, d.contentType)
		}
		if !eventID.MatchString(d.EventID) {
			t.Errorf("%s: event_id %q", d.Event, d.EventID)
		}
		if _, err := time.Parse(time.RFC3339, d.Timestamp); err != nil {
			t.Errorf("%s: timestamp %q: %v", d.Event, d.Timestamp, err)
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(d.raw, &env); err != nil || len(env) != 4 {
			t.Errorf("%s: envelope %s, want exactly event, event_id, timestamp, data", d.Event, d.raw)
		}
	}
}

// wantUpdated fails unless d is account_updated carrying exactly what
// GET /v2/accounts/{id} returns in data.
func (a *api) wantUpdated(d delivery, id string) {
	a.t.Helper()
	details := a.do("GET", "/v2/accounts/"+id, "", nil)
	a.want(details, 200, "account details")
	want := mustJSON(a.t, details.body["data"])
	if got := mustJSON(a.t, d.data(a.t)); got != want {
		a.t.Errorf("account_updated data %s, want details data %s", got, want)
	}
	meta, _ := d.data(a.t)["meta"].(map[string]any)
	if meta["data_status"] != "AVAILABLE" || meta["auth_method"] != mono.InternetBanking {
		a.t.Errorf("account_updated meta %v", meta)
	}
}

// wantAccountRef fails unless d's data is {"account": {"_id": id}}.
func wantAccountRef(t *testing.T, d delivery, id string) {
	t.Helper()
	var data struct {
		Account map[string]any `json:"account"`
	}
	if err := json.Unmarshal(d.Data, &data); err != nil || len(data.Account) != 1 || data.Account["_id"] != id {
		t.Errorf("%s: data %s, want account._id %s", d.Event, d.Data, id)
	}
}

func TestLinkingSendsConnectedThenUpdated(t *testing.T) {
	a, rc := hooked(t, nil)
	sess := a.session(gtbankID, mono.InternetBanking)
	c := code(t, a.login(sess, creds("user_good", sandbox.Password)))
	a.settle()
	if got := rc.all(); len(got) != 0 {
		t.Fatalf("events before the exchange: %v", events(got))
	}

	x := a.exchange(c)
	a.want(x, 200, "exchange")
	id := x.str("id")
	a.settle()
	got := rc.all()
	wantEvents(t, got, sandbox.EventAccountConnected, sandbox.EventAccountUpdated)
	if data := got[0].data(t); len(data) != 1 || data["id"] != id {
		t.Errorf("account_connected data %s, want {id: %s}", got[0].Data, id)
	}
	a.wantUpdated(got[1], id)
	if got[0].EventID == got[1].EventID {
		t.Error("two events share an event_id")
	}
	if n := a.sb.WebhooksSent(); n != 2 {
		t.Errorf("WebhooksSent = %d, want 2", n)
	}
}

func TestReauthWithoutInputSendsReauthorized(t *testing.T) {
	a, rc := hooked(t, nil)
	id := a.link(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	a.settle()
	before := len(rc.all())

	tok := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil)
	a.want(tok, 200, "reauthorise")
	a.settle()
	if got := rc.since(before); len(got) != 0 {
		t.Fatalf("a reauth token alone sent %v", events(got))
	}
	r := a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": tok.str("token")})
	a.want(r, 200, "reauth session")
	if rcode := r.obj("reauth")["response_code"]; rcode != 99.0 {
		t.Fatalf("reauth response_code %v, want 99", rcode)
	}
	a.settle()
	got := rc.since(before)
	wantEvents(t, got, sandbox.EventAccountReauthorized, sandbox.EventAccountUpdated)
	wantAccountRef(t, got[0], id)
	a.wantUpdated(got[1], id)
}

func TestReauthWithOTPSendsReauthorizedOnlyAfterCommit(t *testing.T) {
	a, rc := hooked(t, nil)
	id := a.link(gtbankID, mono.InternetBanking, creds("user_otp", sandbox.Password), 0)
	a.settle()
	before := len(rc.all())

	token := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil).str("token")
	r := a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token})
	a.want(r, 200, "reauth session")
	if rcode := r.obj("reauth")["response_code"]; rcode != 102.0 {
		t.Fatalf("reauth response_code %v, want 102", rcode)
	}
	sess := r.str("id")
	bad := a.commit(sess, map[string]any{"otp": "000000"})
	if bad.num("responseCode") != 400 {
		t.Fatalf("wrong OTP: %s", bad.raw)
	}
	a.settle()
	if got := rc.since(before); len(got) != 0 {
		t.Fatalf("sent %v before the OTP was committed", events(got))
	}

	code(t, a.commit(sess, map[string]any{"otp": sandbox.OTP}))
	a.settle()
	got := rc.since(before)
	wantEvents(t, got, sandbox.EventAccountReauthorized, sandbox.EventAccountUpdated)
	wantAccountRef(t, got[0], id)
	a.wantUpdated(got[1], id)
}

func TestRequireReauthSendsReauthorisationRequired(t *testing.T) {
	a, rc := hooked(t, nil)
	id := a.link(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	a.settle()
	before := len(rc.all())

	if err := a.sb.RequireReauth(id); err != nil {
		t.Fatalf("RequireReauth: %v", err)
	}
	a.settle()
	got := rc.since(before)
	wantEvents(t, got, sandbox.EventReauthorisationRequired)
	wantAccountRef(t, got[0], id)

	err := a.sb.RequireReauth("000000000000000000000000")
	if !errors.Is(err, sandbox.ErrUnknownAccount) {
		t.Errorf("RequireReauth of an unknown account: %v, want ErrUnknownAccount", err)
	}
	a.settle()
	if got := rc.since(before); len(got) != 1 {
		t.Errorf("an unknown account sent %v", events(got))
	}
}

func TestFailedDeliveryIsRetriedWithTheSameEventID(t *testing.T) {
	for name, first := range map[string]int{"500": http.StatusInternalServerError, "hang-up": hangUp} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, rc := hooked(t, func(n int, _ delivery) int {
				if n == 0 {
					return first
				}
				return http.StatusNoContent
			})
			id := a.link(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
			a.settle()
			got := rc.all()
			if len(got) != 3 {
				t.Fatalf("deliveries %v, want connected twice then updated", events(got))
			}
			wantEvents(t, got[1:], sandbox.EventAccountConnected, sandbox.EventAccountUpdated)
			if got[0].EventID != got[1].EventID || string(got[0].raw) != string(got[1].raw) {
				t.Errorf("retry changed the event: %s then %s", got[0].raw, got[1].raw)
			}
			if gap := got[1].at.Sub(got[0].at); gap < 90*time.Millisecond {
				t.Errorf("retried after %v, want a 100ms backoff", gap)
			}
			a.wantUpdated(got[2], id)
			if n := a.sb.WebhooksSent(); n != 2 {
				t.Errorf("WebhooksSent = %d, want 2 (the retried event counts once)", n)
			}
		})
	}
}

func TestUndeliverableEventIsGivenUpInOrder(t *testing.T) {
	t.Parallel()
	a, rc := hooked(t, func(_ int, d delivery) int {
		if d.Event == sandbox.EventAccountConnected {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	began := time.Now()
	a.link(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	a.settle()
	got := rc.all()
	if len(got) != 1+sandbox.WebhookRetries+1 {
		t.Fatalf("deliveries %v, want account_connected %d times then account_updated", events(got), 1+sandbox.WebhookRetries)
	}
	for _, d := range got[:1+sandbox.WebhookRetries] {
		if d.Event != sandbox.EventAccountConnected || d.EventID != got[0].EventID {
			t.Errorf("attempt %s %s, want account_connected %s", d.Event, d.EventID, got[0].EventID)
		}
	}
	if last := got[len(got)-1]; last.Event != sandbox.EventAccountUpdated {
		t.Errorf("last delivery %s, want account_updated after the given-up event", last.Event)
	}
	// Backoffs 100+200+400+800+1600ms.
	if took := time.Since(began); took < 3*time.Second {
		t.Errorf("gave up after %v, want the doubling backoff", took)
	}
	if n := a.sb.WebhooksSent(); n != 1 {
		t.Errorf("WebhooksSent = %d, want 1", n)
	}
}

// countingTransport counts the requests it is asked to send, answering 204
// if ok and failing otherwise.
type countingTransport struct {
	ok bool
	n  atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if !c.ok {
		return nil, errors.New("no requests expected")
	}
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
}

func TestNoURLSendsNothing(t *testing.T) {
	tr := &countingTransport{}
	a := start(t, sandbox.Options{Webhook: sandbox.WebhookOptions{Secret: hookSecret, Client: &http.Client{Transport: tr}}})
	t.Cleanup(a.sb.Close)
	id := a.link(gtbankID, mono.InternetBanking, creds("user_otp", sandbox.Password), 0)
	token := a.do("POST", "/accounts/"+id+"/reauthorise", "", nil).str("token")
	sess := a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token}).str("id")
	code(t, a.commit(sess, map[string]any{"otp": sandbox.OTP}))
	if err := a.sb.RequireReauth(id); err != nil {
		t.Fatalf("RequireReauth: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := a.sb.WaitWebhooks(ctx); err != nil {
		t.Errorf("WaitWebhooks: %v", err)
	}
	if n := tr.n.Load(); n != 0 {
		t.Errorf("%d webhook requests without a URL", n)
	}
	if n := a.sb.WebhooksSent(); n != 0 {
		t.Errorf("WebhooksSent = %d, want 0", n)
	}
}

func TestCustomClientIsUsed(t *testing.T) {
	tr := &countingTransport{ok: true}
	a := start(t, sandbox.Options{Webhook: sandbox.WebhookOptions{URL: "http://webhooks.invalid/mono", Client: &http.Client{Transport: tr}}})
	t.Cleanup(a.sb.Close)
	a.link(gtbankID, mono.InternetBanking, creds("user_good", sandbox.Password), 0)
	a.settle()
	if n := tr.n.Load(); n != 2 {
		t.Errorf("%d requests through the configured client, want 2", n)
	}
	if n := a.sb.WebhooksSent(); n != 2 {
		t.Errorf("WebhooksSent = %d, want 2", n)
	}
}

func TestSlowReceiverDelaysNoResponse(t *testing.T) {
	t.Parallel()
	a, rc := hooked(t, func(int, delivery) int { return stall })
	sess := a.session(gtbankID, mono.InternetBanking)
	c := code(t, a.login(sess, creds("user_good", sandbox.Password)))

	began := time.Now()
	x := a.exchange(c)
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("exchange took %v with a slow webhook receiver", took)
	}
	a.want(x, 200, "exchange")
	began = time.Now()
	for range 3 {
		if err := a.sb.RequireReauth(x.str("id")); err != nil {
			t.Fatal(err)
		}
	}
	token := a.do("POST", "/accounts/"+x.str("id")+"/reauthorise", "", nil).str("token")
	a.want(a.do("POST", "/v1/connect/session", "", map[string]any{"reauth_token": token}), 200, "reauth session")
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("queuing more events took %v", took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.sb.WaitWebhooks(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitWebhooks with a stalled receiver: %v, want deadline exceeded", err)
	}

	// Close abandons the stalled delivery and the queue at once.
	began = time.Now()
	a.sb.Close()
	a.sb.Close()
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("Close took %v", took)
	}
	if err := a.sb.WaitWebhooks(context.Background()); err != nil {
		t.Errorf("WaitWebhooks after Close: %v", err)
	}
	n := len(rc.all())
	if err := a.sb.RequireReauth(x.str("id")); err != nil {
		t.Errorf("RequireReauth after Close: %v", err)
	}
	a.want(a.do("GET", "/v2/accounts/"+x.str("id"), "", nil), 200, "details after Close")
	// Whatever was queued after Close has been delivered or dropped once
	// WaitWebhooks returns: only then is nothing having been sent telling.
	if err := a.sb.WaitWebhooks(context.Background()); err != nil {
		t.Errorf("WaitWebhooks after RequireReauth: %v", err)
	}
	if got := rc.since(n); len(got) != 0 {
		t.Errorf("sent %v after Close", events(got))
	}
	if n > 1 {
		t.Errorf("%d deliveries reached a receiver still answering the first", n)
	}
}
