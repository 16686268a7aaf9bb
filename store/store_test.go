package store_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store"
)

// Distinctive values typed by a user: none may appear in the file.
const (
	secretPassword = "S3cr3t-P@ss*#"
	secretOTP      = "otp-918273"
	secretAnswer   = "Mum's <maiden> & name"
	secretKey1     = "fld-zq81-password"
	secretKey2     = "fld-zq82-token"
	secretKey3     = "fld-zq83-answer"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

func openDB(t *testing.T, path string, s *seal.Sealer) *store.DB {
	t.Helper()
	db, err := store.Open(path, s)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

// viewRaw opens a closed database file read-only with bbolt.
func viewRaw(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open read-only: %v", err)
	}
	defer bdb.Close()
	if err := bdb.View(fn); err != nil {
		t.Fatal(err)
	}
}

func fullLink(accountID, phone, sessionID string) *link.Link {
	return &link.Link{
		AccountID:   accountID,
		Phone:       phone,
		Institution: "5f5b530a9a52f4a0e3d1c2b1",
		Bank:        "GTBank",
		AuthMethod:  mono.InternetBanking,
		Masked:      "******7890",
		Currency:    "NGN",
		SessionID:   sessionID,
		Linked:      t0.Add(90 * time.Second),
	}
}

// conversation is the state a test conversation keeps in a record's
// Data: the store never reads it.
type conversation struct {
	State       string     `json:"state"`
	Hops        int        `json:"hops"`
	Field       int        `json:"field,omitempty"`
	MonoSession string     `json:"mono_session,omitempty"`
	Invite      string     `json:"invite,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Expires     time.Time  `json:"expires"`
	Link        *link.Link `json:"link,omitempty"`
}

// encode is a conversation as its record's Data.
func (c conversation) encode() []byte {
	data, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return data
}

// record is a session as the conversation hands it to the store, with c as
// its data and no secrets.
func record(id, phone string, c conversation) *link.SessionRecord {
	return &link.SessionRecord{ID: id, Phone: phone, Updated: t0, Purge: t0.Add(20 * time.Minute), Data: c.encode()}
}

// secrets encodes what a user typed as a record's Secrets.
func secrets(typed map[string]string) []byte {
	data, err := json.Marshal(typed)
	if err != nil {
		panic(err)
	}
	return data
}

// typed decodes a record's Secrets; none gives none.
func typed(t *testing.T, r *link.SessionRecord) map[string]string {
	t.Helper()
	if len(r.Secrets) == 0 {
		return nil
	}
	var out map[string]string
	if err := json.Unmarshal(r.Secrets, &out); err != nil {
		t.Fatalf("secrets of %s: %v", r.ID, err)
	}
	return out
}

// stateOf decodes a record's Data.
func stateOf(t *testing.T, r *link.SessionRecord) conversation {
	t.Helper()
	var c conversation
	if err := json.Unmarshal(r.Data, &c); err != nil {
		t.Fatalf("data of %s: %v", r.ID, err)
	}
	return c
}

// fullAnswers are the secrets of fullRecord: what a user typed.
var fullAnswers = map[string]string{
	secretKey1: secretPassword,
	secretKey2: secretOTP,
	secretKey3: secretAnswer,
}

// fullRecord sets every field of a SessionRecord to a non-zero value.
func fullRecord(id string) *link.SessionRecord {
	return &link.SessionRecord{
		ID:      id,
		Phone:   "+2348030000001",
		Updated: t0.Add(30 * time.Second),
		Purge:   t0.Add(20 * time.Minute),
		Lapse:   t0.Add(140 * time.Second),
		Data: conversation{State: "form", Hops: 7, Field: 1, MonoSession: "mono-sess-55aa", Expires: t0.Add(210 * time.Second),
			Link: fullLink("acc-1", "+2348030000001", id)}.encode(),
		Secrets: secrets(fullAnswers),
	}
}

// TestFullRecordFixtureSetsEveryField keeps the round-trip test honest: a
// field added to SessionRecord must be added to the fixture too.
func TestFullRecordFixtureSetsEveryField(t *testing.T) {
	v := reflect.ValueOf(*fullRecord("x"))
	for i := 0; i < v.NumField(); i++ {
		switch v.Type().Field(i).Name {
		case "SecretsLost", "SecretsLapsed":
			continue // set by the store when it reads a record, never stored
		}
		if v.Field(i).IsZero() {
			t.Errorf("fullRecord leaves SessionRecord.%s zero: set it so the store round trip covers it", v.Type().Field(i).Name)
		}
	}
}

func TestOpenCreatesFileWithMode0600AndBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "ussdlink.db")
	db := openDB(t, path, newSealer(t, 0x11))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if got, want := info.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("database file mode = %v, want %v", got, want)
	}
	viewRaw(t, path, func(tx *bolt.Tx) error {
		for _, name := range []string{"session_keys", "session_rows", "expiry", "links", "phone_links"} {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing after Open", name)
			}
		}
		return nil
	})
}

func TestOpenRequiresSealer(t *testing.T) {
	if _, err := store.Open(filepath.Join(t.TempDir(), "x.db"), nil); err == nil {
		t.Error("Open with a nil sealer succeeded")
	}
}

func TestSessionOfUnknownIDIsErrNoSession(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "u.db"), newSealer(t, 0x11))
	defer db.Close()
	s, err := db.Session(context.Background(), "never-seen")
	if got, want := err, link.ErrNoSession; !errors.Is(got, want) {
		t.Errorf("Session(unknown) error = %v, want %v", got, want)
	}
	if s != nil {
		t.Errorf("Session(unknown) = %+v, want nil", s)
	}
}

func TestCommitThenSessionRoundTripsEveryField(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "rt.db"), newSealer(t, 0x11))
	defer db.Close()

	want := fullRecord("ATUid_rt")
	if err := db.Commit(ctx, link.Change{Session: want}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, err := db.Session(ctx, want.ID)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("Session after Commit differs:\n got %s\nwant %s", gj, wj)
	}
	if got, want := typed(t, got), fullAnswers; !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets = %q, want %q", got, want)
	}
	if got == want {
		t.Error("Session returned the committed pointer, not a stored copy")
	}
}

// encodings lists the forms a leaked value could take in the file.
func encodings(s string) map[string][]byte {
	js, _ := json.Marshal(s)
	out := map[string][]byte{
		"plain":         []byte(s),
		"json":          js[1 : len(js)-1],
		"json quoted":   js,
		"url query":     []byte(url.QueryEscape(s)),
		"hex":           []byte(hex.EncodeToString([]byte(s))),
		"utf-16le-ish":  utf16le(s),
		"json html-off": jsonNoHTML(s),
	}
	// Inside a larger base64 text (a []byte field holding JSON, say) the
	// value's encoding depends on where it falls in a 3-byte group: check
	// the characters it alone determines at each of the three alignments.
	for shift := 0; shift < 3; shift++ {
		for name, enc := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64 url": base64.URLEncoding} {
			data := append(make([]byte, shift), s...)
			text := enc.EncodeToString(data)
			from, to := (shift+2)/3*4, len(data)/3*4
			out[fmt.Sprintf("%s at offset %d", name, shift)] = []byte(text[from:to])
		}
	}
	return out
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

func jsonNoHTML(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSpace(buf.Bytes())
}

func TestDatabaseFileHoldsNoAnswerInAnyEncoding(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "leak.db")
	db := openDB(t, path, newSealer(t, 0x11))
	s := fullRecord("ATUid_leak")
	// Several hops, each with answers, as a login form fills up.
	for i := 0; i < 3; i++ {
		s.Data = conversation{State: "form", Hops: i + 1, MonoSession: "mono-sess-55aa"}.encode()
		s.Purge = t0.Add(time.Duration(i) * time.Minute)
		if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	got, err := db.Session(ctx, s.ID)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if got, want := typed(t, got), fullAnswers; !reflect.DeepEqual(got, want) {
		t.Fatalf("Secrets = %q, want %q", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{secretPassword, secretOTP, secretAnswer, secretKey1, secretKey2, secretKey3} {
		for enc, b := range encodings(secret) {
			if bytes.Contains(raw, b) {
				t.Errorf("database file contains %q (%s encoding %q)", secret, enc, b)
			}
		}
	}
	// The check above must be able to see what is in the file.
	if !bytes.Contains(raw, []byte("mono-sess-55aa")) {
		t.Fatalf("database file does not contain the non-secret %q: is the check reading the right file?", "mono-sess-55aa")
	}
}

// rawRecord returns the stored header of a session, from a closed file.
func rawRecord(t *testing.T, path, id string) map[string]json.RawMessage {
	t.Helper()
	var rec map[string]json.RawMessage
	viewRaw(t, path, func(tx *bolt.Tx) error {
		v := store.RawSession(tx, id)
		if v == nil {
			return fmt.Errorf("no record for session %s", id)
		}
		head, _, err := store.EnvelopeHeader(v)
		if err != nil {
			return err
		}
		return json.Unmarshal(head, &rec)
	})
	return rec
}

func TestCommitWithoutAnswersLeavesNoSealedBlob(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "erase.db")
	db := openDB(t, path, newSealer(t, 0x11))

	s := fullRecord("ATUid_erase")
	if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
		t.Fatal(err)
	}
	s.Secrets = nil // Mono used them, and the link is made
	if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
		t.Fatal(err)
	}
	other := fullRecord("ATUid_other")
	other.Secrets = []byte{}
	if err := db.Commit(ctx, link.Change{Session: other}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets) != 0 {
		t.Errorf("Secrets after erasing = %q, want none", got.Secrets)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{s.ID, other.ID} {
		rec := rawRecord(t, path, id)
		if sealed, ok := rec["sealed"]; ok {
			t.Errorf("record of %s still holds sealed answers: %s", id, sealed)
		}
		if _, ok := rec["id"]; !ok {
			t.Errorf("record of %s is not a session record: %v", id, rec)
		}
	}
}

func TestRecordSealedUnderOneKeyCannotBeReadWithAnother(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	db := openDB(t, path, newSealer(t, 0x11))
	if err := db.Commit(ctx, link.Change{Session: fullRecord("ATUid_k")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path, newSealer(t, 0x22))
	defer db.Close()
	got, err := db.Session(ctx, "ATUid_k")
	if err != nil {
		t.Fatalf("Session under another key: %v; want the session without what was sealed", err)
	}
	if len(got.Secrets) != 0 || !got.SecretsLost {
		t.Errorf("Session under another key: secrets %q, secrets lost %v; want none, true", got.Secrets, got.SecretsLost)
	}
}

func TestRecordSealedUnderAPreviousKeyIsStillRead(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rotate.db")
	old := newSealer(t, 0x11)
	db := openDB(t, path, old)
	want := fullRecord("ATUid_r")
	if err := db.Commit(ctx, link.Change{Session: want}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, err := seal.New(bytes.Repeat([]byte{0x22}, seal.KeySize), bytes.Repeat([]byte{0x11}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	db = openDB(t, path, rotated)
	defer db.Close()
	got, err := db.Session(ctx, "ATUid_r")
	if err != nil || got.SecretsLost || !bytes.Equal(got.Secrets, want.Secrets) {
		t.Fatalf("Session after rotation = %v, secrets lost %v: want the answers opened with the previous key", err, got != nil && got.SecretsLost)
	}
	if !bytes.Equal(rotated.DerivePrevious("transcript")[0], old.Derive("transcript")) {
		t.Errorf("the previous key's transcript key is not derived as before")
	}
}

func TestRecordCannotBeMovedToAnotherSessionID(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "move.db")
	db := openDB(t, path, newSealer(t, 0x11))
	if err := db.Commit(ctx, link.Change{Session: fullRecord("victim")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// An attacker with write access copies the victim's sealed answers into
	// a record of their own session.
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		head, data, err := store.EnvelopeHeader(store.RawSession(tx, "victim"))
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(head, &rec); err != nil {
			return err
		}
		rec["id"] = "attacker"
		if head, err = json.Marshal(rec); err != nil {
			return err
		}
		return store.PutRawSession(tx, "attacker", store.Envelope(head, data))
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path, newSealer(t, 0x11))
	defer db.Close()
	got, err := db.Session(ctx, "attacker")
	if err != nil || len(got.Secrets) != 0 || !got.SecretsLost {
		t.Errorf("Session with moved answers: %v; want it read without them", err)
	}
}

// expiryEntry is one key of the expiry index.
type expiryEntry struct {
	at time.Time
	id string
}

func readExpiry(t *testing.T, path string) []expiryEntry {
	t.Helper()
	var out []expiryEntry
	viewRaw(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("expiry")).ForEach(func(k, _ []byte) error {
			if len(k) < 8 {
				return fmt.Errorf("expiry key %x shorter than 8 bytes", k)
			}
			out = append(out, expiryEntry{
				at: time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC(),
				id: string(k[8:]),
			})
			return nil
		})
	})
	return out
}

func TestExpiryIndexHoldsOneEntryPerSessionInTimeOrder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "expiry.db")
	db := openDB(t, path, newSealer(t, 0x11))

	// Each session's purge time moves around over several hops; the last
	// one counts. Ids are chosen so that id order differs from time order.
	moves := map[string][]time.Duration{
		"a-session": {3 * time.Minute, 10 * time.Minute, 1 * time.Minute},
		"b-session": {1 * time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute},
		"c-session": {5 * time.Minute},
		"d":         {2 * time.Minute, 2 * time.Minute, 30 * time.Second},
		"e-session": {7 * time.Minute, 6 * time.Minute},
	}
	want := map[string]time.Time{}
	for id, ds := range moves {
		s := fullRecord(id)
		for i, d := range ds {
			s.Data = conversation{State: "form", Hops: i + 1}.encode()
			s.Purge = t0.Add(d)
			if i%2 == 1 {
				s.Purge = s.Purge.In(time.FixedZone("WAT", 3600)) // same instant, another zone
			}
			if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
				t.Fatalf("Commit %s: %v", id, err)
			}
		}
		want[id] = s.Purge
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	entries := readExpiry(t, path)
	if got, want := len(entries), len(moves); got != want {
		t.Errorf("expiry index has %d entries, want %d (one per session): %v", got, want, entries)
	}
	seen := map[string]int{}
	for _, e := range entries {
		seen[e.id]++
		if w, ok := want[e.id]; !ok {
			t.Errorf("expiry entry for unknown session %q", e.id)
		} else if !e.at.Equal(w) {
			t.Errorf("expiry entry of %s at %v, want %v", e.id, e.at, w)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("session %s has %d expiry entries, want 1", id, n)
		}
	}
	if !sort.SliceIsSorted(entries, func(i, j int) bool { return entries[i].at.Before(entries[j].at) }) {
		t.Errorf("expiry entries are not in time order: %v", entries)
	}
	var gotOrder []string
	for _, e := range entries {
		gotOrder = append(gotOrder, e.id)
	}
	if got, want := gotOrder, []string{"d", "a-session", "b-session", "c-session", "e-session"}; !reflect.DeepEqual(got, want) {
		t.Errorf("expiry order = %v, want %v", got, want)
	}
}

func TestCommitStoresLinkAndIndexesItByPhone(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "links.db"), newSealer(t, 0x11))
	defer db.Close()

	const phone = "+2348030000001"
	first := fullLink("acc-1", phone, "s1")
	second := fullLink("acc-2", phone, "s2")
	second.Bank = "Access Bank"
	elsewhere := fullLink("acc-3", "+23480300000011", "s3") // the first phone is a prefix of it
	for i, l := range []*link.Link{first, second, elsewhere} {
		s := record(l.SessionID, l.Phone, conversation{State: "linked", Link: l})
		s.Purge = t0.Add(time.Duration(i) * time.Minute)
		if err := db.Commit(ctx, link.Change{Session: s, Link: l}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}

	got, ok, err := db.Link(ctx, "acc-1")
	if err != nil || !ok {
		t.Fatalf("Link(acc-1) = %v, %v, %v", got, ok, err)
	}
	if want := first; !reflect.DeepEqual(got, want) {
		t.Errorf("Link(acc-1) = %+v, want %+v", got, want)
	}

	links, err := db.LinksByPhone(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := links, []link.Link{*first, *second}; !reflect.DeepEqual(got, want) {
		t.Errorf("LinksByPhone(%s) = %+v, want %+v", phone, got, want)
	}

	none, ok, err := db.Link(ctx, "acc-unknown")
	if err != nil || ok || none != nil {
		t.Errorf("Link(unknown) = %v, %v, %v; want nil, false, nil", none, ok, err)
	}
	if links, err := db.LinksByPhone(ctx, "+2340000000000"); err != nil || len(links) != 0 {
		t.Errorf("LinksByPhone(no links) = %v, %v; want none", links, err)
	}
}

func TestRelinkingAnAccountUpdatesRatherThanDuplicates(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "relink.db"), newSealer(t, 0x11))
	defer db.Close()
	commit := func(l *link.Link) {
		t.Helper()
		s := fullRecord(l.SessionID)
		s.Phone = l.Phone
		if err := db.Commit(ctx, link.Change{Session: s, Link: l}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	const phoneA, phoneB = "+2348030000001", "+2348030000002"

	commit(fullLink("acc-1", phoneA, "s1"))
	again := fullLink("acc-1", phoneA, "s2")
	again.Masked = "******1111"
	again.Linked = t0.Add(time.Hour)
	commit(again)

	got, _, err := db.Link(ctx, "acc-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := again; !reflect.DeepEqual(got, want) {
		t.Errorf("Link after relinking = %+v, want %+v", got, want)
	}
	links, err := db.LinksByPhone(ctx, phoneA)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := links, []link.Link{*again}; !reflect.DeepEqual(got, want) {
		t.Errorf("LinksByPhone after relinking from the same phone = %+v, want %+v", got, want)
	}

	// The same account linked again from another phone (an agent's, say)
	// belongs to that phone only.
	moved := fullLink("acc-1", phoneB, "s3")
	commit(moved)
	if links, err := db.LinksByPhone(ctx, phoneA); err != nil || len(links) != 0 {
		t.Errorf("LinksByPhone(old phone) after relinking from another phone = %+v, %v; want none", links, err)
	}
	links, err = db.LinksByPhone(ctx, phoneB)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := links, []link.Link{*moved}; !reflect.DeepEqual(got, want) {
		t.Errorf("LinksByPhone(new phone) = %+v, want %+v", got, want)
	}
}

func TestConcurrentCommitsAllPersist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "concurrent.db")
	db := openDB(t, path, newSealer(t, 0x11))

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("conc-%02d", i)
			s := fullRecord(id)
			s.Data = conversation{State: "form", Hops: i}.encode()
			s.Purge = t0.Add(time.Duration(i) * time.Second)
			s.Secrets = secrets(map[string]string{"pin": fmt.Sprintf("pin-%02d", i)})
			l := fullLink("acc-"+id, fmt.Sprintf("+23480300001%02d", i), id)
			if err := db.Commit(ctx, link.Change{Session: s, Link: l}); err != nil {
				errs <- fmt.Errorf("Commit %s: %w", id, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path, newSealer(t, 0x11))
	defer db.Close()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("conc-%02d", i)
		s, err := db.Session(ctx, id)
		if err != nil {
			t.Errorf("Session(%s): %v", id, err)
			continue
		}
		if got, want := stateOf(t, s).Hops, i; got != want {
			t.Errorf("Session(%s).Hops = %d, want %d", id, got, want)
		}
		if got, want := typed(t, s)["pin"], fmt.Sprintf("pin-%02d", i); got != want {
			t.Errorf("Session(%s) pin = %q, want %q", id, got, want)
		}
		if _, ok, err := db.Link(ctx, "acc-"+id); err != nil || !ok {
			t.Errorf("Link(acc-%s) = %v, %v", id, ok, err)
		}
	}
	db.Close()
	if got, want := len(readExpiry(t, path)), n; got != want {
		t.Errorf("expiry index has %d entries, want %d", got, want)
	}
}

func TestReopeningKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reopen.db")
	sealer := newSealer(t, 0x11)
	db := openDB(t, path, sealer)
	want := fullRecord("ATUid_reopen")
	l := fullLink("acc-reopen", want.Phone, want.ID)
	if err := db.Commit(ctx, link.Change{Session: want, Link: l}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A new Sealer from the same key, as after a restart.
	db = openDB(t, path, newSealer(t, 0x11))
	defer db.Close()
	got, err := db.Session(ctx, want.ID)
	if err != nil {
		t.Fatalf("Session after reopening: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Session after reopening = %+v, want %+v", got, want)
	}
	gotLink, ok, err := db.Link(ctx, l.AccountID)
	if err != nil || !ok {
		t.Fatalf("Link after reopening = %v, %v", ok, err)
	}
	if !reflect.DeepEqual(gotLink, l) {
		t.Errorf("Link after reopening = %+v, want %+v", gotLink, l)
	}
	links, err := db.LinksByPhone(ctx, want.Phone)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := links, []link.Link{*l}; !reflect.DeepEqual(got, want) {
		t.Errorf("LinksByPhone after reopening = %+v, want %+v", got, want)
	}
}
