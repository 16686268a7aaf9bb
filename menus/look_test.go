package menus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// lookingStore is the rig's memStore that also reads a first look, as the
// stores do, remembering the latest session each look handed over.
type lookingStore struct {
	*memStore
	fail   error                 // the look's error, if any
	looked []*link.SessionRecord // the latest session of each look
}

func (s *lookingStore) FirstLook(ctx context.Context, phone string, since, now time.Time) (link.FirstLook, error) {
	if s.fail != nil {
		return link.FirstLook{}, s.fail
	}
	l, err := kit.FirstLook(ctx, s.memStore, phone, since, now)
	s.looked = append(s.looked, l.Latest)
	return l, err
}

func TestTheFirstScreenReadsItsPhoneOnceAndForgetsWhatItDidNotUse(t *testing.T) {
	tests := []struct {
		name   string
		fail   error
		failed int    // refused logins of the phone before the dial
		want   string // in the first screen
	}{
		{"a locked-out phone is told so, the latest session's secrets erased", nil, 5, "paused"},
		{"a phone that may log in sees the banks", nil, 0, "GTBank"},
		{"a look that failed leaves each check to read for itself", errors.New("the store is down"), 5, "paused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			st := &lookingStore{memStore: r.store, fail: tt.fail}
			r.engine = NewEngine(r.cfg, st, r.client, r.clock.Now, zerolog.Nop())
			// The phone's earlier session holds what was typed in it.
			r.must(t, "s0", "+234801", "")
			r.must(t, "s0", "+234801", "1")
			r.must(t, "s0", "+234801", "1*user_good")
			for range tt.failed {
				r.store.failures["+234801"] = append(r.store.failures["+234801"], r.clock.Now())
			}
			st.looked = nil
			got := r.must(t, "s1", "+234801", "")
			if !strings.Contains(got.Text, tt.want) {
				t.Fatalf("first screen %q, want %q in it", got.Text, tt.want)
			}
			if tt.fail != nil {
				return
			}
			if len(st.looked) != 1 || st.looked[0] == nil {
				t.Fatalf("looks taken: %d (%v), want one with the earlier session", len(st.looked), st.looked)
			}
			if len(st.looked[0].Secrets) == 0 {
				t.Fatal("the earlier session was looked at without its secrets: nothing to erase")
			}
			for _, b := range st.looked[0].Secrets {
				if b != 0 {
					t.Fatalf("the earlier session's secrets are still in memory after the first screen: %q", st.looked[0].Secrets)
				}
			}
		})
	}
}
