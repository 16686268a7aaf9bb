package partner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store"
)

const apiKey = "pk_test_api"

// gtbank is an institution offering internet banking only.
const gtbank = "5f2d08be60b92e2888287702"

// catalogue is a fixed institution list, or a list that cannot be read.
type catalogue struct {
	down bool
}

func (c catalogue) Institution(_ context.Context, id string) (mono.Institution, bool, error) {
	if c.down {
		return mono.Institution{}, false, errors.New("mono: 503 Service Unavailable")
	}
	if id != gtbank {
		return mono.Institution{}, false, nil
	}
	return mono.Institution{ID: gtbank, Name: "GTBank", AuthMethods: []mono.AuthMethod{{Type: mono.InternetBanking}}}, true, nil
}

// apiClock is a settable clock.
type apiClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *apiClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *apiClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testAPI is the partner API over a real store, with a settable clock.
type testAPI struct {
	t     *testing.T
	app   *fiber.App
	db    *store.DB
	clock *apiClock
}

func newTestAPI(t *testing.T, configure func(*API)) *testAPI {
	t.Helper()
	db := openStore(t, filepath.Join(t.TempDir(), "api.db"), bytes.Repeat([]byte{7}, seal.KeySize))
	t.Cleanup(func() { db.Close() })
	clock := &apiClock{now: time.Date(2026, 1, 2, 14, 4, 0, 0, time.UTC)}
	api := &API{Store: db, Keys: []string{apiKey}, ServiceCode: "*384*123#", Now: clock.Now, Log: zerolog.Nop(),
		Institutions: catalogue{}, Texts: func(string) bool { return true }}
	if configure != nil {
		configure(api)
	}
	app := fiber.New()
	api.Mount(app.Group("/v1"))
	return &testAPI{t: t, app: app, db: db, clock: clock}
}

// answer is one API response.
type answer struct {
	status   int
	body     []byte
	replayed bool
	retry    string
}

// code is the error code of an error answer.
func (a answer) code() string {
	var e apiError
	json.Unmarshal(a.body, &e)
	return e.Error.Code
}

// field reads a top-level string field of the answer.
func (a answer) field(name string) string {
	var m map[string]any
	json.Unmarshal(a.body, &m)
	s, _ := m[name].(string)
	return s
}

// post sends a JSON body, with an Idempotency-Key when key is set.
func (ta *testAPI) post(path, key string, body any) answer {
	ta.t.Helper()
	b, _ := json.Marshal(body)
	req := httptest.NewRequest("POST", path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := ta.app.Test(req, -1)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: out, replayed: resp.Header.Get("Idempotent-Replayed") == "true",
		retry: resp.Header.Get("Retry-After")}
}

// invites counts the invitations of a phone.
func (ta *testAPI) invites(phone string) int {
	ta.t.Helper()
	all, err := ta.db.InvitesByPhone(context.Background(), phone)
	if err != nil {
		ta.t.Fatal(err)
	}
	return len(all)
}

func TestIdempotencyKeyIsHonest(t *testing.T) {
	link := func(ref string) map[string]any { return map[string]any{"phone": testPhone, "reference": ref} }
	cases := []struct {
		name        string
		first, then any
		advance     time.Duration
		wantFirst   int
		wantThen    int
		wantCode    string // of the second answer, when an error
		wantReplay  bool
		wantInvites int
	}{
		{"a replay of the same request answers the first answer again", link("loan-1"), link("loan-1"), 0,
			201, 201, "", true, 1},
		{"the same key with another body is refused", link("loan-1"), link("loan-2"), 0,
			201, 422, "idempotency_key_reused", false, 1},
		{"a request refused by validation does not take its key", map[string]any{"phone": testPhone}, link("loan-1"), 0,
			400, 201, "", false, 1},
		{"a request naming an unknown institution does not take its key",
			map[string]any{"phone": testPhone, "reference": "r", "institution": "5f00000000000000000000ff"}, link("loan-1"), 0,
			422, 201, "", false, 1},
		{"an answer past the idempotency ttl is not replayed", link("loan-1"), link("loan-1"), 25 * time.Hour,
			201, 201, "", false, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t, nil)
			first := ta.post("/v1/links", "key-1", tc.first)
			if first.status != tc.wantFirst {
				t.Fatalf("first = %d %s, want %d", first.status, first.body, tc.wantFirst)
			}
			ta.clock.Advance(tc.advance)
			then := ta.post("/v1/links", "key-1", tc.then)
			if then.status != tc.wantThen || then.code() != tc.wantCode {
				t.Fatalf("second = %d %s, want %d %q", then.status, then.body, tc.wantThen, tc.wantCode)
			}
			if got, want := then.replayed, tc.wantReplay; got != want {
				t.Errorf("Idempotent-Replayed = %v, want %v", got, want)
			}
			if tc.wantReplay && !bytes.Equal(then.body, first.body) {
				t.Errorf("replay = %s, want the first answer %s", then.body, first.body)
			}
			if got, want := ta.invites(testPhone), tc.wantInvites; got != want {
				t.Errorf("invitations = %d, want %d", got, want)
			}
		})
	}
}

func TestKeysAreScopedToTheirRoute(t *testing.T) {
	ta := newTestAPI(t, nil)
	if a := ta.post("/v1/links", "shared", map[string]any{"phone": testPhone, "reference": "r"}); a.status != 201 {
		t.Fatalf("link = %d %s", a.status, a.body)
	}
	if a := ta.post("/v1/reauth", "shared", map[string]any{"phone": testPhone, "account_id": "acc-1"}); a.status != 201 || a.replayed {
		t.Fatalf("reauth under a key used on another route = %d %s (replayed %v), want a new invitation", a.status, a.body, a.replayed)
	}
}

func TestStoredAnswerIsTheInvitationCommittedWithIt(t *testing.T) {
	ta := newTestAPI(t, nil)
	a := ta.post("/v1/links", "k", map[string]any{"phone": testPhone, "reference": "r"})
	if a.status != 201 {
		t.Fatalf("create = %d %s", a.status, a.body)
	}
	inv, err := ta.db.Invite(context.Background(), a.field("id"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.field("dial"), Dial("*384*123#", inv.Code); got != want {
		t.Errorf("answered dial = %q, want the stored invitation's %q", got, want)
	}
}

func TestInvitationsNameAnInstitutionAndMethodMonoOffers(t *testing.T) {
	cases := []struct {
		name        string
		down        bool
		institution string
		method      string
		status      int
		code        string
	}{
		{"an offered institution and method are accepted", false, gtbank, mono.InternetBanking, 201, ""},
		{"an offered institution alone is accepted", false, gtbank, "", 201, ""},
		{"no institution needs no list", true, "", "", 201, ""},
		{"an unknown institution is refused", false, "5f00000000000000000000ff", "", 422, "unknown_institution"},
		{"an unknown institution with a method is refused", false, "5f00000000000000000000ff", mono.InternetBanking, 422, "unknown_institution"},
		{"a method the institution does not offer is refused", false, gtbank, mono.MobileBanking, 422, "auth_method_not_offered"},
		{"an unreadable list refuses rather than accepts", true, gtbank, "", 503, "institutions_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAPI(t, func(a *API) { a.Institutions = catalogue{down: tc.down} })
			body := map[string]any{"phone": testPhone, "reference": "r"}
			if tc.institution != "" {
				body["institution"] = tc.institution
			}
			if tc.method != "" {
				body["auth_method"] = tc.method
			}
			a := ta.post("/v1/links", "", body)
			if a.status != tc.status || a.code() != tc.code {
				t.Fatalf("create = %d %s, want %d %q", a.status, a.body, tc.status, tc.code)
			}
			wantInvites := 0
			if tc.status == 201 {
				wantInvites = 1
			}
			if got := ta.invites(testPhone); got != wantInvites {
				t.Errorf("invitations = %d, want %d", got, wantInvites)
			}
			if tc.status == 503 && a.retry == "" {
				t.Errorf("503 without Retry-After")
			}
		})
	}
}

func TestInvitationTextShowsTheExpiryInLocalTime(t *testing.T) {
	lagos, err := time.LoadLocation("Africa/Lagos")
	if err != nil {
		t.Fatal(err)
	}
	nairobi, err := time.LoadLocation("Africa/Nairobi")
	if err != nil {
		t.Fatal(err)
	}
	inv := &link.Invite{Kind: link.InviteLink, Code: "4821", Phone: testPhone,
		Expires: time.Date(2026, 1, 2, 14, 4, 0, 0, time.UTC)}
	cases := []struct {
		name string
		loc  *time.Location
		want string
	}{
		{"Lagos is an hour ahead of UTC", lagos, "2 Jan 15:04 WAT"},
		{"Nairobi is three hours ahead", nairobi, "2 Jan 17:04 EAT"},
		{"no zone is UTC", nil, "2 Jan 14:04 UTC"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := InvitationText(inv, "*384*123#", "", inv.Expires, tc.loc).Data["expires"]; got != tc.want {
				t.Errorf("expires = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("the API's texts use its zone", func(t *testing.T) {
		ta := newTestAPI(t, func(a *API) { a.Location = lagos })
		if a := ta.post("/v1/links", "", map[string]any{"phone": testPhone, "reference": "r", "notify": "sms"}); a.status != 201 {
			t.Fatalf("create = %d %s", a.status, a.body)
		}
		due, err := ta.db.Texts().Due(context.Background(), ta.clock.Now(), 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("queued texts = %v, %v", due, err)
		}
		// Created at 14:04 UTC, valid 24h: 15:04 the next day in Lagos.
		if !strings.Contains(string(due[0].Body), "3 Jan 15:04 WAT") {
			t.Errorf("invitation text = %s, want its expiry in Lagos time", due[0].Body)
		}
	})
}
