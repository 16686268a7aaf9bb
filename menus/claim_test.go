package menus

import (
	"context"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// ClaimInvite claims as the bbolt store does: by code, by id or the phone's
// newest usable invitation, unless another session still holds it.
func (m *memStore) ClaimInvite(_ context.Context, c link.InviteClaim) (*link.Invite, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cands []*link.Invite
	for _, inv := range m.invites {
		switch {
		case c.Code != "" && inv.Code != c.Code, c.ID != "" && inv.ID != c.ID:
			continue
		case c.Kind != "" && inv.Kind != c.Kind, !inv.Usable(c.Phone, c.Now):
			continue
		}
		cands = append(cands, inv)
	}
	inUse := false
	for _, inv := range cands {
		if inv.Session != "" && inv.Session != c.Session && inv.Session != c.From {
			var holder *link.SessionRecord
			if data, ok := m.sessions[inv.Session]; ok {
				holder = &link.SessionRecord{ID: inv.Session, Data: data}
			}
			if c.Holds(inv, holder) {
				inUse = true
				continue
			}
		}
		inv.Session, inv.Claimed = c.Session, c.Now
		cp := *inv
		return &cp, nil
	}
	if inUse {
		return nil, link.ErrInviteInUse
	}
	return nil, link.ErrNoInvite
}

func TestAClaimHoldsWhileItsSessionIsLive(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	inv := &link.Invite{ID: "lnk_1", Claimed: now}
	live := Session{Invite: "lnk_1", State: StateCredentials, Updated: now, Expires: now.Add(3 * time.Minute)}
	cases := []struct {
		name   string
		holder *Session
		at     time.Time
		want   bool
	}{
		{"a session not stored yet holds it for the grace", nil, now.Add(ClaimGrace / 2), true},
		{"a session never stored lets go after the grace", nil, now.Add(ClaimGrace), false},
		{"a session in the middle of a link holds it", &live, now.Add(time.Minute), true},
		{"a hop begun just before the expiry keeps it", &live, now.Add(3*time.Minute + ClaimGrace/2), true},
		{"an expired session lets go", &live, now.Add(3*time.Minute + ClaimGrace), false},
		{"a session that exited lets go", with(live, func(s *Session) { s.State, s.Reason = StateEnded, ReasonExit }), now, false},
		{"a session the aggregator closed lets go", with(live, func(s *Session) { s.Closed = "Release" }), now, false},
		{"a closed session whose bank is still answering holds it", with(live, func(s *Session) {
			s.Closed, s.State, s.Pending, s.Purge = "Release", StateWaiting, &Pending{Kind: workLogin}, now.Add(13*time.Minute)
		}), now.Add(10 * time.Minute), true},
		{"a session following another invitation lets go", with(live, func(s *Session) { s.Invite = "lnk_2" }), now, false},
		{"a session stored before it claimed holds it for the grace", with(live, func(s *Session) {
			s.Invite, s.Updated = "", now.Add(-time.Second)
		}), now.Add(ClaimGrace / 2), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.holder.HoldsInvite(inv, c.at); got != c.want {
				t.Errorf("HoldsInvite = %v, want %v", got, c.want)
			}
		})
	}
}

// with returns a copy of s changed by f.
func with(s Session, f func(*Session)) *Session {
	f(&s)
	return &s
}
