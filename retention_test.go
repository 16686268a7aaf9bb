package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

// TestJunkFloodIsReclaimed floods a running gateway with what anyone can
// send it without linking an account (dials that go nowhere, texts that
// open a conversation and leave, hand-overs to USSD never dialled, partner
// invitations with idempotency keys), then moves its clock past every
// retention: its sweeper empties every bucket, keeping until then what
// has a longer retention.
func TestJunkFloodIsReclaimed(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	m, _ := startMain(t, func(m *Main) {
		m.Now = clock.Now
		m.Config.Partner.APIKeys = []string{testAPIKey}
		m.Config.SMS.Termii.SecretKey = termiiSecret
		m.Config.USSD.SweepInterval = Duration{20 * time.Millisecond}
	})
	phone := func(i int) string { return fmt.Sprintf("+234803%07d", i) }
	for i := range 240 { // dials: hang up at the bank list, after choosing a bank, or after junk
		h := newHandsetOn(t, m, wires[i%len(wires)], phone(i))
		h.dial()
		switch i % 3 {
		case 1:
			h.send("1")
		case 2:
			h.send("zz")
		}
	}
	for i := range 60 { // texts: LINK, some then choose a bank and are handed over to USSD
		if status := textTermii(t, m, phone(1000+i), fmt.Sprintf("junk-%d", i), "LINK", true); status != 200 {
			t.Fatalf("LINK = %d", status)
		}
		if i%2 == 0 {
			textTermii(t, m, phone(1000+i), fmt.Sprintf("junk-%d-1", i), "1", true)
		}
	}
	for i := range 30 { // partner invitations, half with a key, one key replayed
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("flood-%d", i)
		}
		body := map[string]any{"phone": phone(2000 + i), "reference": fmt.Sprintf("ref-%d", i)}
		if a := postLink(t, m, key, body); a.status != 201 {
			t.Fatalf("invite = %d %v", a.status, a.body)
		}
		if i == 0 {
			postLink(t, m, key, body)
		}
	}
	sizes := func() map[string]int {
		s, err := m.db.BucketSizes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// awaitSizes waits for the sweeper until every bucket is empty but
	// those in keep, and those in exact hold as many as it says (a sweep
	// pass may be halfway through them), and reports the buckets that are
	// not.
	awaitSizes := func(step string, exact map[string]int, keep ...string) map[string]int {
		t.Helper()
		var left []string
		var got map[string]int
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			got, left = sizes(), nil
			for name, n := range got {
				kept := name == "funnel" // the funnel's daily counters are kept on purpose: they name no one
				for _, k := range keep {
					kept = kept || k == name
				}
				if n > 0 && !kept {
					left = append(left, fmt.Sprintf("%s=%d", name, n))
				}
			}
			for name, n := range exact {
				if got[name] != n {
					left = append(left, fmt.Sprintf("%s=%d (want %d)", name, got[name], n))
				}
			}
			if len(left) == 0 {
				return got
			}
		}
		sort.Strings(left)
		t.Errorf("%s: buckets still hold %v", step, left)
		return got
	}
	flooded := sizes()
	for _, name := range []string{"session_keys", "session_rows", "expiry", "phones", "sms_sessions", "sms_seen", "invites", "invite_codes",
		"invite_phone", "invite_ref", "idempotency"} {
		if flooded[name] == 0 {
			t.Errorf("the flood left bucket %s empty: the test does not cover it", name)
		}
	}
	handovers := flooded["invites"] - 30
	if handovers < 20 {
		t.Errorf("the flood made %d hand-over invitations, want one per bank chosen by text", handovers)
	}
	invites := []string{"invites", "invite_codes", "invite_phone", "invite_ref", "invite_age"}
	awaitSizes("the texts are sent", nil, append(invites, "session_keys", "session_rows", "expiry", "phones", "sealed", "sms_sessions", "sms_session_expiry",
		"sms_seen", "sms_seen_age", "idempotency", "idempotency_age")...)

	clock.Advance(2 * time.Hour)
	got := awaitSizes("sessions, conversations and hand-overs go once expired", map[string]int{"invites": 30, "idempotency": 15},
		append(invites, "sms_seen", "sms_seen_age", "idempotency", "idempotency_age")...)
	if got["invites"] != 30 || got["idempotency"] != 15 {
		t.Errorf("after 2h: %d invitations and %d idempotency answers, want the 30 partner invitations and 15 answers kept",
			got["invites"], got["idempotency"])
	}
	clock.Advance(24 * time.Hour)
	if got := awaitSizes("idempotency answers go after idempotency-ttl", map[string]int{"invites": 30}, append(invites, "sms_seen", "sms_seen_age")...); got["invites"] != 30 {
		t.Errorf("after 26h: %d invitations, want the 30 partner invitations kept for invite-retention", got["invites"])
	}
	if a := postLink(t, m, "flood-0", map[string]any{"phone": phone(2000), "reference": "ref-0"}); a.status != 201 || a.replayed {
		t.Errorf("a key past idempotency-ttl = %d (replayed %v), want a new invitation", a.status, a.replayed)
	}
	clock.Advance(m.Config.Partner.InviteRetention.Duration + 25*time.Hour)
	awaitSizes("partner invitations go after invite-retention", nil)
}
