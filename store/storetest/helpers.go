package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// t0 is the base of every time the suite hands a backend: whole
// microseconds, in UTC.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

// far is a time after everything the suite queues.
var far = t0.Add(1000 * time.Hour)

// state is a conversation's state as a record's Data holds it: opaque to
// the store, which must give it back as the same JSON.
type state struct {
	State   string    `json:"state"`
	Hops    int       `json:"hops"`
	Invite  string    `json:"invite,omitempty"`
	Note    string    `json:"note,omitempty"`
	Expires time.Time `json:"expires"`
}

// encode is s as a record's Data.
func (s state) encode() []byte {
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return data
}

// stateOf decodes a record's Data.
func stateOf(t *testing.T, r *link.SessionRecord) state {
	t.Helper()
	var s state
	if err := json.Unmarshal(r.Data, &s); err != nil {
		t.Fatalf("data of session %s: %v (%q)", r.ID, err, r.Data)
	}
	return s
}

// record is a session of phone updated at t0, purged 20 minutes later,
// with st as its data and no secrets.
func record(id, phone string, st state) *link.SessionRecord {
	return &link.SessionRecord{ID: id, Phone: phone, Updated: t0, Purge: t0.Add(20 * time.Minute), Data: st.encode()}
}

// withSecrets gives r secrets that lapse at lapse.
func withSecrets(r *link.SessionRecord, secrets string, lapse time.Time) *link.SessionRecord {
	r.Secrets, r.Lapse = []byte(secrets), lapse
	return r
}

// newLink is a link of account made from phone by session, at t0+90s.
func newLink(account, phone, session string) *link.Link {
	return &link.Link{AccountID: account, Phone: phone, Institution: "inst-5f5b530a", Bank: "GTBank",
		AuthMethod: "internet_banking", Masked: "******7890", Currency: "NGN", SessionID: session,
		Linked: t0.Add(90 * time.Second)}
}

// newInvite is a pending invitation of phone created at t0 that can be
// used for ttl; an id starting "rea_" makes a reauthorisation of account
// "acc-" + id.
func newInvite(id, phone, ref string, ttl time.Duration) *link.Invite {
	inv := &link.Invite{ID: id, Kind: link.InviteLink, Phone: phone, Reference: ref,
		Status: link.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(ttl)}
	if strings.HasPrefix(id, "rea_") {
		inv.Kind, inv.AccountID = link.InviteReauth, "acc-"+id
	}
	return inv
}

// event is a partner event about a link: keyed by account when it names
// one, else by session.
func event(id, typ, account, session string, at time.Time) link.Event {
	data := map[string]any{"session": session, "phone": "+2348031000007"}
	if account != "" {
		data["account_id"] = account
	}
	return link.Event{ID: id, Type: typ, Timestamp: at, Data: data}
}

// text is a text message to phone, created at at.
func text(id, phone string, at time.Time) link.Text {
	return link.Text{ID: id, Kind: link.TextReply, To: phone, Data: map[string]string{"text": "hello " + id}, Created: at}
}

// same reports whether got and want hold the same values as a backend
// must give them back: times are the same instants (in whatever zone), nil
// and empty slices and maps are alike.
func same(got, want any) bool {
	return sameValue(reflect.ValueOf(got), reflect.ValueOf(want))
}

var timeType = reflect.TypeFor[time.Time]()

func sameValue(a, b reflect.Value) bool {
	if !a.IsValid() || !b.IsValid() {
		return a.IsValid() == b.IsValid()
	}
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == timeType {
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if bv := b.MapIndex(k); !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Func:
		return a.IsNil() && b.IsNil()
	}
	return a.Equal(b)
}

// show prints a value for a failure message, following pointers, with
// message bodies as text.
func show(v any) string {
	switch m := v.(type) {
	case link.Message:
		return fmt.Sprintf("{ID:%s Type:%s Key:%s Seq:%d Created:%v Next:%v Attempts:%d LastErr:%q Body:%s}",
			m.ID, m.Type, m.Key, m.Seq, m.Created, m.Next, m.Attempts, m.LastErr, m.Body)
	case []link.Message:
		out := make([]string, 0, len(m))
		for _, msg := range m {
			out = append(out, show(msg))
		}
		return "[" + strings.Join(out, " ") + "]"
	}
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", rv.Interface())
}

// sameJSON reports whether two encodings hold the same JSON value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// sameRecord reports how got differs from want, a record as committed,
// or "" when it does not: Data as the same JSON, Secrets byte for byte,
// times as instants.
func sameRecord(got, want *link.SessionRecord) string {
	var diffs []string
	check := func(field string, ok bool, g, w any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	check("ID", got.ID == want.ID, got.ID, want.ID)
	check("Phone", got.Phone == want.Phone, got.Phone, want.Phone)
	check("Updated", got.Updated.Equal(want.Updated), got.Updated, want.Updated)
	check("Purge", got.Purge.Equal(want.Purge), got.Purge, want.Purge)
	check("Lapse", got.Lapse.Equal(want.Lapse), got.Lapse, want.Lapse)
	check("Data", sameJSON(got.Data, want.Data), string(got.Data), string(want.Data))
	check("Secrets", string(got.Secrets) == string(want.Secrets), got.Secrets, want.Secrets)
	check("SecretsLost", got.SecretsLost == want.SecretsLost, got.SecretsLost, want.SecretsLost)
	check("SecretsLapsed", got.SecretsLapsed == want.SecretsLapsed, got.SecretsLapsed, want.SecretsLapsed)
	return strings.Join(diffs, "; ")
}

// mustSession reads a session that must be stored.
func mustSession(t *testing.T, s Store, id string) *link.SessionRecord {
	t.Helper()
	r, err := s.Session(t.Context(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return r
}

// mustCommit commits c.
func mustCommit(t *testing.T, s Store, c link.Change) {
	t.Helper()
	if err := s.Commit(t.Context(), c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// mustCreate creates an invitation with a code of digits at t0.
func mustCreate(t *testing.T, s Store, inv *link.Invite, digits int) {
	t.Helper()
	if err := s.CreateInvite(t.Context(), inv, digits, t0); err != nil {
		t.Fatalf("CreateInvite(%s): %v", inv.ID, err)
	}
}

// mustInvite reads an invitation that must be stored.
func mustInvite(t *testing.T, s Store, id string) *link.Invite {
	t.Helper()
	inv, err := s.Invite(t.Context(), id)
	if err != nil {
		t.Fatalf("Invite(%s): %v", id, err)
	}
	return inv
}

// failures counts a phone's login failures since a time.
func failures(t *testing.T, s Store, phone string, since time.Time) int {
	t.Helper()
	n, err := s.LoginFailures(t.Context(), phone, since)
	if err != nil {
		t.Fatalf("LoginFailures(%s): %v", phone, err)
	}
	return n
}

// due returns the messages q hands out at now.
func due(t *testing.T, q Outbox, now time.Time) []link.Message {
	t.Helper()
	msgs, err := q.Due(t.Context(), now, 100)
	if err != nil {
		t.Fatalf("Due: %v", err)
	}
	return msgs
}

// ids returns the ids of msgs, in order.
func ids(msgs []link.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// drain empties q as a worker would, one message at a time, and returns
// the messages in the order they left.
func drain(t *testing.T, q Outbox) []link.Message {
	t.Helper()
	var out []link.Message
	for range 1000 {
		msgs := due(t, q, far)
		if len(msgs) == 0 {
			return out
		}
		out = append(out, msgs[0])
		if err := q.Delivered(t.Context(), msgs[0].ID); err != nil {
			t.Fatalf("Delivered(%s): %v", msgs[0].ID, err)
		}
	}
	t.Fatal("the queue does not drain")
	return nil
}

// sortedIDs returns the ids of invitations, sorted.
func sortedIDs(invs []link.Invite) []string {
	out := make([]string, 0, len(invs))
	for _, inv := range invs {
		out = append(out, inv.ID)
	}
	slices.Sort(out)
	return out
}

// inviteIDs returns the ids of invitations, in order.
func inviteIDs(invs []link.Invite) []string {
	out := make([]string, 0, len(invs))
	for _, inv := range invs {
		out = append(out, inv.ID)
	}
	return out
}

// webhookBody is a partner webhook's body as it is sent.
type webhookBody struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// sweeps are the cut-offs the suite sweeps with, as the gateway's
// defaults.
const (
	lockout         = 30 * time.Minute
	seenRetention   = 72 * time.Hour
	idempotencyTTL  = 24 * time.Hour
	inviteRetention = 720 * time.Hour
	deadRetention   = 30 * 24 * time.Hour
	monoUpdateTTL   = time.Hour
)

// sweepAll sweeps everything at now as the gateway's sweeper does, each in
// batches until nothing more goes.
func sweepAll(t *testing.T, b Backend, now time.Time) {
	t.Helper()
	ctx, s := t.Context(), b.Store
	const batch = 50
	for _, job := range []struct {
		name  string
		most  int // the most one call may forget
		sweep func() (int, error)
	}{
		{"Sweep", batch, func() (int, error) { return s.Sweep(ctx, now, batch) }},
		{"SweepFailures", batch, func() (int, error) { return s.SweepFailures(ctx, now.Add(-lockout), batch) }},
		{"SweepMonoEvents", batch, func() (int, error) { return s.SweepMonoEvents(ctx, now.Add(-seenRetention), batch) }},
		{"SweepMonoUpdates", batch, func() (int, error) { return s.SweepMonoUpdates(ctx, now.Add(-monoUpdateTTL), batch) }},
		{"SweepInbound", batch, func() (int, error) { return s.SweepInbound(ctx, now.Add(-seenRetention), batch) }},
		{"SweepAnswers", batch, func() (int, error) { return s.SweepAnswers(ctx, now.Add(-idempotencyTTL), batch) }},
		{"SweepConversations", batch, func() (int, error) { return s.SweepConversations(ctx, now, batch) }},
		// max of each class: hand-overs and the partner's
		{"SweepInvites", 2 * batch, func() (int, error) { return s.SweepInvites(ctx, now, now.Add(-inviteRetention), batch) }},
		{"Webhooks.SweepDeadLetters", batch, func() (int, error) { return b.Webhooks.SweepDeadLetters(ctx, now.Add(-deadRetention), batch) }},
		{"Texts.SweepDeadLetters", batch, func() (int, error) { return b.Texts.SweepDeadLetters(ctx, now.Add(-deadRetention), batch) }},
	} {
		for i := 0; ; i++ {
			n, err := job.sweep()
			if err != nil {
				t.Fatalf("%s: %v", job.name, err)
			}
			if n > job.most {
				t.Fatalf("%s forgot %d at once, over its max of %d", job.name, n, job.most)
			}
			if n == 0 {
				break
			}
			if i == 1000 {
				t.Fatalf("%s never finishes", job.name)
			}
		}
	}
}
