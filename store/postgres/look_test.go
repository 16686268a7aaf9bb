package postgres

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// queryRecorder records the statements sent as queries of their own.
type queryRecorder struct {
	noTrace
	mu      sync.Mutex
	queries []string
}

func (r *queryRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, data.SQL)
	return ctx
}

func (r *queryRecorder) reset() { r.mu.Lock(); r.queries = nil; r.mu.Unlock() }

func (r *queryRecorder) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...)
}

func TestTheFirstLookIsOneStatementGivingWhatEachReadAloneWould(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const phone = "+2348031110050"
	invite := func(id string, created time.Time, expires time.Duration) *link.Invite {
		return &link.Invite{ID: id, Kind: link.InviteLink, Phone: phone, Status: link.StatusPending, Language: "ha",
			Created: created, Updated: created, Expires: created.Add(expires)}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, db *DB)
		want  func(l link.FirstLook) bool // what the look must hold besides equalling the reads'
	}{
		{"a phone never seen", func(*testing.T, *DB) {},
			func(l link.FirstLook) bool { return l == link.FirstLook{} }},
		{"a phone with a failure, a language, a latest session with secrets and invitations", func(t *testing.T, db *DB) {
			if _, ok, err := db.ReserveAttempt(t.Context(), phone, at.Add(-time.Hour), at, 5); err != nil || !ok {
				t.Fatalf("reserve: %v, %v", ok, err)
			}
			r := laneRecord("fl-01", at)
			r.Phone = phone
			if err := db.Commit(t.Context(), link.Change{Session: r, Language: "ha"}); err != nil {
				t.Fatal(err)
			}
			for _, inv := range []*link.Invite{invite("lnk_old", at.Add(-2*time.Hour), 4*time.Hour),
				invite("lnk_new", at.Add(-time.Hour), 4*time.Hour), invite("lnk_gone", at.Add(-3*time.Hour), time.Hour)} {
				if err := db.CreateInvite(t.Context(), inv, 4, inv.Created); err != nil {
					t.Fatal(err)
				}
			}
		}, func(l link.FirstLook) bool {
			return l.Failures == 1 && l.Language == "ha" && l.Latest != nil && string(l.Latest.Secrets) == "typed in fl-01" &&
				l.Invite != nil && l.Invite.ID == "lnk_new"
		}},
		{"a latest session without secrets, no language, no invitation", func(t *testing.T, db *DB) {
			r := laneRecord("fl-02", at)
			r.Phone, r.Secrets = phone, nil
			if err := db.Commit(t.Context(), link.Change{Session: r}); err != nil {
				t.Fatal(err)
			}
		}, func(l link.FirstLook) bool {
			return l.Failures == 0 && l.Language == "" && l.Latest != nil && l.Latest.ID == "fl-02" && l.Latest.Secrets == nil && l.Invite == nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &queryRecorder{}
			db := openTraced(t, pgtest.URL(t), rec)
			tt.setup(t, db)
			since := at.Add(-time.Hour)
			rec.reset()
			got, err := db.FirstLook(t.Context(), phone, since, at)
			if err != nil {
				t.Fatal(err)
			}
			if sent := rec.sent(); len(sent) != 1 || sent[0] != firstLookSQL {
				t.Errorf("the first look sent %d statements, want 1 (firstLookSQL): %q", len(sent), sent)
			}
			alone, err := kit.FirstLook(t.Context(), db, phone, since, at)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, alone) {
				t.Errorf("first look %+v\nwant what the reads give alone %+v", got, alone)
			}
			if !tt.want(got) {
				t.Errorf("first look %+v", got)
			}
		})
	}
}
