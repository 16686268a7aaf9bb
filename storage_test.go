package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// apiAnswer is one partner API answer with the headers the tests read.
type apiAnswer struct {
	status   int
	body     map[string]any
	replayed bool
}

// code is the error code of an error answer.
func (a apiAnswer) code() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// postLink posts an invitation, with an Idempotency-Key when key is set.
func postLink(t *testing.T, m *Main, key string, body map[string]any) apiAnswer {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", m.URL()+"/v1/links", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := apiAnswer{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	json.Unmarshal(raw, &a.body)
	return a
}

// pendingOf lists the ids of a phone's invitations, through the API.
func pendingOf(t *testing.T, m *Main, phone string) []string {
	t.Helper()
	_, list := call(t, m, "GET", "/v1/links?phone="+strings.ReplaceAll(phone, "+", "%2B"), testAPIKey, nil, nil)
	var ids []string
	data, _ := list["data"].([]any)
	for _, d := range data {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
}

func TestIdempotencyKeysAreHonest(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, nil)
	const phone = "+2348071000101"
	body := func(ref string) map[string]any { return map[string]any{"phone": phone, "reference": ref} }

	t.Run("a refused request does not take its key: the corrected retry succeeds", func(t *testing.T) {
		if a := postLink(t, m, "fix-1", map[string]any{"phone": phone}); a.status != 400 {
			t.Fatalf("without a reference = %d %v, want 400", a.status, a.body)
		}
		if a := postLink(t, m, "fix-1", body("loan-fixed")); a.status != 201 || a.replayed || a.body["reference"] != "loan-fixed" {
			t.Fatalf("corrected retry = %d %v (replayed %v), want 201 with the new invitation", a.status, a.body, a.replayed)
		}
	})
	t.Run("a replay answers the first answer, creating nothing", func(t *testing.T) {
		first := postLink(t, m, "same-1", body("loan-same"))
		again := postLink(t, m, "same-1", body("loan-same"))
		if first.status != 201 || again.status != 201 || !again.replayed || again.body["id"] != first.body["id"] || again.body["dial"] != first.body["dial"] {
			t.Fatalf("replay = %d %v (replayed %v), want the first answer %v", again.status, again.body, again.replayed, first.body)
		}
	})
	t.Run("the same key with another body is refused", func(t *testing.T) {
		if a := postLink(t, m, "reused-1", body("loan-a")); a.status != 201 {
			t.Fatalf("first = %d %v", a.status, a.body)
		}
		if a := postLink(t, m, "reused-1", body("loan-b")); a.status != 422 || a.code() != "idempotency_key_reused" {
			t.Fatalf("another body under the key = %d %v, want 422 idempotency_key_reused", a.status, a.body)
		}
	})
	if got, want := len(pendingOf(t, m, phone)), 3; got != want {
		t.Errorf("invitations of the phone = %d, want %d (fixed, same, a)", got, want)
	}
}

func TestInvitationsNameAnInstitutionAndMethodMonoOffers(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, nil)
	const phone = "+2348071000102"
	cases := []struct {
		name        string
		institution string
		method      string
		status      int
		code        string
	}{
		{"an unknown institution is refused", "5f00000000000000000000ff", "", 422, "unknown_institution"},
		{"a method the institution does not offer is refused", "5f2d08be60b92e2888287702", "mobile_banking", 422, "auth_method_not_offered"},
		{"an offered institution and method are accepted", "5f2d08be60b92e2888287702", "internet_banking", 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"phone": phone, "reference": "inst-check", "institution": tc.institution}
			if tc.method != "" {
				body["auth_method"] = tc.method
			}
			a := postLink(t, m, "", body)
			if a.status != tc.status || a.code() != tc.code {
				t.Fatalf("create = %d %v, want %d %q", a.status, a.body, tc.status, tc.code)
			}
		})
	}
	if got := len(pendingOf(t, m, phone)); got != 1 {
		t.Errorf("invitations = %d, want only the valid one", got)
	}
}

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
	// those in keep, and reports the buckets that are not.
	awaitSizes := func(step string, keep ...string) map[string]int {
		t.Helper()
		var left []string
		var got map[string]int
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			got, left = sizes(), nil
			for name, n := range got {
				kept := false
				for _, k := range keep {
					kept = kept || k == name
				}
				if n > 0 && !kept {
					left = append(left, fmt.Sprintf("%s=%d", name, n))
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
	for _, name := range []string{"sessions", "expiry", "phones", "sms_sessions", "sms_seen", "invites", "invite_codes",
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
	awaitSizes("the texts are sent", append(invites, "sessions", "expiry", "phones", "sealed", "sms_sessions", "sms_session_expiry",
		"sms_seen", "sms_seen_age", "idempotency", "idempotency_age")...)

	clock.Advance(2 * time.Hour)
	got := awaitSizes("sessions, conversations and hand-overs go once expired",
		append(invites, "sms_seen", "sms_seen_age", "idempotency", "idempotency_age")...)
	if got["invites"] != 30 || got["idempotency"] != 15 {
		t.Errorf("after 2h: %d invitations and %d idempotency answers, want the 30 partner invitations and 15 answers kept",
			got["invites"], got["idempotency"])
	}
	clock.Advance(24 * time.Hour)
	if got := awaitSizes("idempotency answers go after idempotency-ttl", append(invites, "sms_seen", "sms_seen_age")...); got["invites"] != 30 {
		t.Errorf("after 26h: %d invitations, want the 30 partner invitations kept for invite-retention", got["invites"])
	}
	if a := postLink(t, m, "flood-0", map[string]any{"phone": phone(2000), "reference": "ref-0"}); a.status != 201 || a.replayed {
		t.Errorf("a key past idempotency-ttl = %d (replayed %v), want a new invitation", a.status, a.replayed)
	}
	clock.Advance(m.Config.Partner.InviteRetention.Duration + 25*time.Hour)
	awaitSizes("partner invitations go after invite-retention")
}

func TestInvitationTextsShowLocalTime(t *testing.T) {
	cases := []struct {
		name     string
		timezone string // empty: the default
		want     string
	}{
		{"the default is Lagos time", "", "before 3 Jan 15:04 WAT"},
		{"a configured zone is used", "Africa/Nairobi", "before 3 Jan 17:04 EAT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{now: time.Date(2026, 1, 2, 14, 4, 0, 0, time.UTC)}
			m, _ := startMain(t, func(m *Main) {
				m.Now = clock.Now
				m.Config.Partner.APIKeys = []string{testAPIKey}
				if tc.timezone != "" {
					m.Config.SMS.Timezone = tc.timezone
				}
			})
			const phone = "+2348081000141"
			if a := postLink(t, m, "", map[string]any{"phone": phone, "reference": "tz", "notify": "sms"}); a.status != 201 {
				t.Fatalf("create = %d %v", a.status, a.body)
			}
			inboxWith(t, m, phone, tc.want)
		})
	}
}

func TestSMSTimezoneIsCheckedAtLoad(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"an IANA zone is accepted", "[sms]\ntimezone = \"Africa/Accra\"\n", true},
		{"an unknown zone is refused", "[sms]\ntimezone = \"Africa/Atlantis\"\n", false},
		{"an empty zone is refused", "[sms]\ntimezone = \"\"\n", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("%s/c%d.toml", dir, i)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path, true)
			if got := err == nil; got != tc.ok {
				t.Errorf("LoadConfig(%q) error = %v, want accepted %v", tc.body, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "sms.timezone") {
				t.Errorf("error %q does not name sms.timezone", err)
			}
		})
	}
	if got := DefaultConfig().SMS.Timezone; got != "Africa/Lagos" {
		t.Errorf("default timezone = %q, want Africa/Lagos", got)
	}
}
