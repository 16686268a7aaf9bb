package menus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// memStore is a Store kept in memory, round-tripping sessions through JSON
// as a real store would, so state that does not survive serialisation shows.
type memStore struct {
	invites  map[string]*link.Invite
	events   []link.Event
	slow     map[string]time.Duration // loads of these sessions take this long
	mu       sync.Mutex
	failures map[string][]time.Time
	latest   map[string]string
	sessions map[string][]byte
	answers  map[string]map[string]string
	logins   map[string]map[string]string
	links    []link.Link
	commits  int
	langs    map[string]string // phone → its chosen language
	plain    map[string][]byte // session → the secrets it last handed to seal, as encoded
}

func (m *memStore) PhoneLanguage(_ context.Context, phone string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.langs[link.PhoneKey(phone)], nil
}

func newMemStore() *memStore {
	return &memStore{invites: map[string]*link.Invite{}, failures: map[string][]time.Time{}, latest: map[string]string{}, sessions: map[string][]byte{}, answers: map[string]map[string]string{}, logins: map[string]map[string]string{}}
}

func (m *memStore) Session(_ context.Context, id string) (*link.SessionRecord, error) {
	time.Sleep(m.slow[id])
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.sessions[id]
	if !ok {
		return nil, link.ErrNoSession
	}
	r := &link.SessionRecord{ID: id, Data: bytes.Clone(data)}
	if len(m.answers[id]) > 0 || len(m.logins[id]) > 0 {
		secrets, err := sealValues(&Session{Answers: m.answers[id], Login: m.logins[id]}, false)
		if err != nil {
			return nil, err
		}
		r.Secrets = secrets
	}
	return r, nil
}

// snapshot copies the store as it is, as a killed process leaves its file.
func (m *memStore) snapshot() *memStore {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := newMemStore()
	for k, v := range m.sessions {
		c.sessions[k] = append([]byte(nil), v...)
	}
	for k, v := range m.latest {
		c.latest[k] = v
	}
	for k, v := range m.failures {
		c.failures[k] = append([]time.Time(nil), v...)
	}
	for k, v := range m.answers {
		c.answers[k] = maps.Clone(v)
	}
	for k, v := range m.logins {
		c.logins[k] = maps.Clone(v)
	}
	c.links = append(c.links, m.links...)
	c.langs = maps.Clone(m.langs)
	for k, v := range m.invites {
		inv := *v
		c.invites[k] = &inv
	}
	return c
}

// stored returns the session as committed, without the engine's help.
func (m *memStore) stored(t *testing.T, id string) *Session {
	t.Helper()
	r, err := m.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("stored session %s: %v", id, err)
	}
	s, err := decode(r)
	if err != nil {
		t.Fatalf("stored session %s: %v", id, err)
	}
	return s
}

// put writes a session as the engine would commit it alone.
func (m *memStore) put(t *testing.T, s *Session) {
	t.Helper()
	r, err := record(s, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(context.Background(), link.Change{Session: r}); err != nil {
		t.Fatal(err)
	}
}

func (m *memStore) LoginFailures(_ context.Context, phone string, since time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, at := range m.failures[phone] {
		if !at.Before(since) {
			n++
		}
	}
	return n, nil
}

// ReserveAttempt records a failure at at unless the phone has max since a
// time; its key names the phone and the time.
func (m *memStore) ReserveAttempt(_ context.Context, phone string, since, at time.Time, max int) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, t := range m.failures[phone] {
		if !t.Before(since) {
			n++
		}
	}
	if n >= max {
		return "", false, nil
	}
	m.failures[phone] = append(m.failures[phone], at)
	return phone + "@" + at.Format(time.RFC3339Nano), true, nil
}

func (m *memStore) Latest(ctx context.Context, phone string) (*link.SessionRecord, error) {
	m.mu.Lock()
	id, ok := m.latest[phone]
	m.mu.Unlock()
	if !ok {
		return nil, link.ErrNoSession
	}
	return m.Session(ctx, id)
}

func (m *memStore) Commit(_ context.Context, c link.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.Language != "" && c.Session != nil {
		if m.langs == nil {
			m.langs = map[string]string{}
		}
		m.langs[link.PhoneKey(c.Session.Phone)] = c.Language
	}
	for _, r := range []*link.SessionRecord{c.Retired, c.Session} {
		if r == nil {
			continue
		}
		m.sessions[r.ID] = bytes.Clone(r.Data)
		m.latest[r.Phone] = r.ID
		m.answers[r.ID], m.logins[r.ID] = nil, nil
		if m.plain == nil {
			m.plain = map[string][]byte{}
		}
		m.plain[r.ID] = bytes.Clone(r.Secrets)
		if len(r.Secrets) > 0 {
			var v Session
			if err := openValues(r.Secrets, &v); err != nil {
				return err
			}
			m.answers[r.ID], m.logins[r.ID] = v.Answers, v.Login
		}
	}
	if c.Link != nil {
		m.links = append(m.links, *c.Link)
	}
	if c.LoginFailure {
		m.failures[c.Session.Phone] = append(m.failures[c.Session.Phone], c.Session.Updated)
	}
	for _, key := range c.Release {
		phone, at, _ := strings.Cut(key, "@")
		for i, t := range m.failures[phone] {
			if t.Format(time.RFC3339Nano) == at {
				m.failures[phone] = append(m.failures[phone][:i], m.failures[phone][i+1:]...)
				break
			}
		}
	}
	if c.Invite != nil {
		inv := *c.Invite
		m.invites[inv.ID] = &inv
	}
	m.events = append(m.events, c.Events...)
	m.commits++
	return nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type rig struct {
	engine *Engine
	store  *memStore
	sb     *sandbox.Sandbox
	clock  *fakeClock
	client *mono.Client
	cfg    Config
}

// rigOption adjusts a rig before its engine is built.
type rigOption func(*Config, *sandbox.Options)

// slowBank makes the sandbox's slow user take delay while a hop may wait
// only budget.
func slowBank(delay, budget time.Duration) rigOption {
	return func(c *Config, o *sandbox.Options) {
		o.SlowDelay = delay
		c.HopBudget = budget
	}
}

func newRig(t testing.TB, opts ...rigOption) *rig {
	t.Helper()
	cfg := Config{TranscriptKey: []byte("k")}
	clock := &fakeClock{now: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	sbOpts := sandbox.Options{SecretKey: "test_sk_rig", Now: clock.Now} // Mono's clock is the test's
	for _, o := range opts {
		o(&cfg, &sbOpts)
	}
	sb := sandbox.New(sbOpts)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	client := mono.NewClient("test_sk_rig", mono.WithBaseURL(srv.URL), mono.WithAppID("app"), mono.WithRetry(1, 0))
	st := newMemStore()
	r := &rig{store: st, sb: sb, clock: clock, client: client, cfg: cfg}
	r.engine = r.restart(st)
	return r
}

// restart builds a new engine on a store, as a restarted process would.
func (r *rig) restart(st Store) *Engine {
	e := NewEngine(r.cfg, st, r.client, r.clock.Now, zerolog.Nop())
	return e
}

// drain waits for the engine's background work to settle.
func (r *rig) drain(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.engine.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// at sends one Africa's Talking style hop with the whole transcript.
func (r *rig) at(t *testing.T, session, phone, transcript string) (link.Reply, error) {
	t.Helper()
	return r.engine.Handle(context.Background(), link.Hop{
		SessionID: session, Phone: phone, ServiceCode: "*384*123#",
		Transcript: transcript, Cumulative: true,
	})
}

func (r *rig) must(t *testing.T, session, phone, transcript string) link.Reply {
	t.Helper()
	rep, err := r.at(t, session, phone, transcript)
	if err != nil {
		t.Fatalf("hop %q: %v", transcript, err)
	}
	return rep
}

func TestCallbackKeysNameRealEventsAndStates(t *testing.T) {
	known := map[string]bool{"state": true, "event": true}
	for _, e := range transitions {
		known[e.Name] = true
		known[e.Dst] = true
		for _, s := range e.Src {
			known[s] = true
		}
	}
	for key := range callbacks {
		target := key
		for _, p := range []string{"before_", "after_", "enter_", "leave_"} {
			target = strings.TrimPrefix(target, p)
		}
		if !known[target] {
			t.Errorf("callback %q names no event or state: looplab would ignore it", key)
		}
	}
}

func TestEveryNonFinalStateCanEnd(t *testing.T) {
	for _, state := range []string{StateBanks, StateMethods, StateCredentials, StateAccounts, StateChallenge} {
		if !newMachine(state).Can(EventEnd) {
			t.Errorf("state %s cannot end", state)
		}
	}
	for _, state := range []string{StateLinked, StateEnded} {
		if newMachine(state).Can(EventEnd) {
			t.Errorf("final state %s accepts another end", state)
		}
	}
}

func TestRepeatedHopReplaysReplyWithoutCallingMono(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_good")
	first := r.must(t, "s1", "+234801", "1*user_good*pass_good")
	logins, commits := r.sb.Calls("login"), r.store.commits
	again := r.must(t, "s1", "+234801", "1*user_good*pass_good")
	if got, want := shown(again), shown(first); got != want {
		t.Errorf("repeat reply = %+v, want %+v", got, want)
	}
	if got := r.sb.Calls("login"); got != logins {
		t.Errorf("repeat made %d more logins", got-logins)
	}
	if r.store.commits != commits {
		t.Errorf("repeat committed state")
	}
	if !first.End || !strings.Contains(first.Text, "is linked") {
		t.Errorf("flow did not link: %+v", first)
	}
}

func TestHostileHopsAreRefusedAndChangeNothing(t *testing.T) {
	cases := []struct {
		name       string
		phone      string
		transcript string
	}{
		{name: "a transcript that does not extend the previous one", phone: "+234801", transcript: "2*x"},
		{name: "a shorter transcript", phone: "+234801", transcript: ""},
		{name: "a phone number that changes within the session", phone: "+234999", transcript: "1*user_good"},
		{name: "invalid UTF-8", phone: "+234801", transcript: "1*\xff\xfe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.must(t, "s1", "+234801", "")
			want := r.must(t, "s1", "+234801", "1")
			before := string(r.store.sessions["s1"])
			_, err := r.at(t, "s1", tc.phone, tc.transcript)
			var he *link.HopError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want a HopError", err)
			}
			if string(r.store.sessions["s1"]) != before {
				t.Errorf("stored session changed")
			}
			if got := r.must(t, "s1", "+234801", "1"); shown(got) != shown(want) {
				t.Errorf("session no longer replays its last reply: %+v", got)
			}
		})
	}
}

func TestMissingIdsAreRefused(t *testing.T) {
	r := newRig(t)
	for _, hop := range []link.Hop{
		{Phone: "+234801", Cumulative: true},
		{SessionID: "s", Cumulative: true},
		{SessionID: strings.Repeat("s", 200), Phone: "+234801", Cumulative: true},
	} {
		if _, err := r.engine.Handle(context.Background(), hop); !errors.As(err, new(*link.HopError)) {
			t.Errorf("hop %+v: err = %v, want HopError", hop, err)
		}
	}
}

func TestASessionEndNamingNoPossibleSessionIsRefusedAndChangesNothing(t *testing.T) {
	for _, id := range []string{"", strings.Repeat("s", 200), "s1\xff", "s1\x00", "s1\n"} {
		r := newRig(t)
		r.must(t, "s1", "+234801", "")
		commits := r.store.commits
		err := r.engine.Close(context.Background(), link.Hop{SessionID: id, Phone: "+234801", Closing: "closed"}, "")
		if !errors.As(err, new(*link.HopError)) {
			t.Errorf("session end of %q: err = %v, want HopError", id, err)
		}
		if r.store.commits != commits {
			t.Errorf("session end of %q committed state", id)
		}
	}
}

func TestIdleSessionExpires(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.clock.Advance(181 * time.Second)
	got := r.must(t, "s1", "+234801", "1*user_good")
	if !got.End || got.Text != en(textExpired) {
		t.Errorf("reply after the TTL = %+v, want the expiry END", got)
	}
	if r.sb.Calls("login") != 0 {
		t.Errorf("an expired session reached Mono")
	}
}

func TestEndedSessionSaysSoWithoutChange(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "0")
	commits := r.store.commits
	got := r.must(t, "s1", "+234801", "0*1")
	if !got.End || got.Text != en(textSessionOver) {
		t.Errorf("reply = %+v", got)
	}
	if r.store.commits != commits {
		t.Errorf("a hop after the end committed state")
	}
}

func TestAnswersAreErasedOnceMonoHasUsedThem(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_otp")
	if a := r.store.answers["s1"]; a["username"] != "user_otp" {
		t.Fatalf("answers between screens = %v, want the user name held", a)
	}
	r.must(t, "s1", "+234801", "1*user_otp*pass_good")
	if a := r.store.answers["s1"]; len(a) != 0 {
		t.Errorf("answers after login = %v, want none", a)
	}
	r.must(t, "s1", "+234801", "1*user_otp*pass_good*123456")
	if a := r.store.answers["s1"]; len(a) != 0 {
		t.Errorf("answers after commit = %v, want none", a)
	}
}

func TestRefusedLoginOpensANewMonoSession(t *testing.T) {
	r := newRig(t)
	r.must(t, "s1", "+234801", "")
	r.must(t, "s1", "+234801", "1")
	r.must(t, "s1", "+234801", "1*user_good")
	r.must(t, "s1", "+234801", "1*user_good*bad")
	// The refused login dropped Mono's session; the next login opens another.
	r.must(t, "s1", "+234801", "1*user_good*bad*user_good")
	got := r.must(t, "s1", "+234801", "1*user_good*bad*user_good*pass_good")
	if !strings.Contains(got.Text, "is linked") {
		t.Fatalf("reply = %+v", got)
	}
	if n := r.sb.Calls("session"); n != 2 {
		t.Errorf("mono sessions created = %d, want 2", n)
	}
}

func (m *memStore) Invite(_ context.Context, id string) (*link.Invite, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if inv, ok := m.invites[id]; ok {
		c := *inv
		return &c, nil
	}
	return nil, link.ErrNoInvite
}

func (m *memStore) InviteByCode(_ context.Context, code string) (*link.Invite, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, inv := range m.invites {
		if inv.Code == code && inv.Status == link.StatusPending {
			c := *inv
			return &c, nil
		}
	}
	return nil, link.ErrNoInvite
}

func (m *memStore) PendingInvite(_ context.Context, phone string, now time.Time) (*link.Invite, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, inv := range m.invites {
		if inv.Usable(phone, now) {
			c := *inv
			return &c, nil
		}
	}
	return nil, link.ErrNoInvite
}

func (m *memStore) Link(_ context.Context, accountID string) (*link.Link, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.links) - 1; i >= 0; i-- {
		if m.links[i].AccountID == accountID {
			l := m.links[i]
			return &l, true, nil
		}
	}
	return nil, false, nil
}

func (m *memStore) CreateInvite(_ context.Context, inv *link.Invite, digits int, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv.Code = fmt.Sprintf("%0*d", digits, len(m.invites)+1000)
	c := *inv
	m.invites[inv.ID] = &c
	return nil
}

// englishWords is the embedded catalogue, for tests comparing screens.
var englishWords = defaultWords()

// en is a message as an English-speaking session shows it.
func en(key string) string { return englishWords.Text("en", key) }

// shown is what the phone sees of r: its text and whether it ends the
// session, without what the gateway notes about it.
func shown(r link.Reply) link.Reply { return link.Reply{Text: r.Text, End: r.End} }
