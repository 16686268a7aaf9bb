package partner

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store"
)

// event returns an event of type typ about account, queued at at.
func event(id, typ, account string, at time.Time) link.Event {
	return link.Event{ID: id, Type: typ, Timestamp: at,
		Data: map[string]any{"account_id": account, "phone": testPhone, "session": "ses_1"}}
}

// enqueueEvents commits events in one transaction, as a hop does.
func enqueueEvents(t *testing.T, db *store.DB, events ...link.Event) {
	t.Helper()
	if err := db.Enqueue(context.Background(), events...); err != nil {
		t.Fatal(err)
	}
}

// webhookIDs returns the webhook-id of each request, in the order received.
func webhookIDs(got []received) []string {
	out := make([]string, 0, len(got))
	for _, r := range got {
		out = append(out, r.header.Get("webhook-id"))
	}
	return out
}

func TestEventsAboutOneAccountArriveInOrderEvenWhenTheFirstFails(t *testing.T) {
	db := newStore(t)
	// The ids sort against the order of the events, so nothing but the
	// order they were queued in can put ACCOUNT_LINKED first.
	const linked, status = "msg_b_linked", "msg_a_status"
	var failed atomic.Bool
	p := newPartner(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-id") == linked && failed.CompareAndSwap(false, true) {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	now := time.Now()
	enqueueEvents(t, db, event(linked, "ACCOUNT_LINKED", "acc_1", now), event(status, "DATA_STATUS", "acc_1", now))
	stop := start(t, p.deliverer(t, db.Webhooks()))
	for range 3 {
		nextHit(t, p, 2*time.Second)
	}
	waitFor(t, 2*time.Second, "the outbox is empty", func() bool { return len(pending(t, db)) == 0 })
	stop()

	got, want := webhookIDs(p.requests()), []string{linked, linked, status}
	if !slices.Equal(got, want) {
		t.Errorf("the partner got %v, want %v: DATA_STATUS only after ACCOUNT_LINKED was delivered", got, want)
	}
}

func TestAnEventWaitsBehindItsAccountsRetryWhileOtherAccountsGoOn(t *testing.T) {
	db := newStore(t)
	p := newPartner(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("webhook-id") == "msg_a1" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	now := time.Now()
	enqueueEvents(t, db,
		event("msg_a1", "ACCOUNT_LINKED", "acc_a", now),
		event("msg_a2", "DATA_STATUS", "acc_a", now),
		event("msg_b1", "ACCOUNT_LINKED", "acc_b", now))
	d := p.deliverer(t, db.Webhooks())
	d.Backoff, d.MaxBackoff = time.Hour, time.Hour // msg_a1 is retried only in an hour
	stop := start(t, d)
	nextHit(t, p, 2*time.Second)
	nextHit(t, p, 2*time.Second)
	waitFor(t, 2*time.Second, "msg_b1 is delivered and msg_a1's failure recorded", func() bool {
		left := pending(t, db)
		return len(left) == 1 && left[0].ID == "msg_a1" && left[0].Attempts == 1
	})
	stop()

	got := webhookIDs(p.requests())
	slices.Sort(got)
	if want := []string{"msg_a1", "msg_b1"}; !slices.Equal(got, want) {
		t.Errorf("the partner got %v, want %v: msg_a2 waits for msg_a1's retry, msg_b1 does not", got, want)
	}
}

func TestEventsAboutDifferentAccountsAreDeliveredAtOnce(t *testing.T) {
	db := newStore(t)
	var arrived atomic.Int32
	both := make(chan struct{})
	var alone atomic.Bool // a request gave up waiting for the other
	p := newPartner(t, func(int, http.ResponseWriter, *http.Request) {
		if arrived.Add(1) == 2 {
			close(both)
		}
		select {
		case <-both:
		case <-time.After(3 * time.Second):
			alone.Store(true)
		}
	})
	now := time.Now()
	enqueueEvents(t, db, event("msg_a", "ACCOUNT_LINKED", "acc_a", now), event("msg_b", "ACCOUNT_LINKED", "acc_b", now))
	stop := start(t, p.deliverer(t, db.Webhooks()))
	waitFor(t, 5*time.Second, "both are delivered", func() bool { return len(pending(t, db)) == 0 })
	stop()
	if alone.Load() {
		t.Error("one account's event waited for another's delivery")
	}
}
