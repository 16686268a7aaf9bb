package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store/postgres"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
	"github.com/ussdlink/ussdlink/store/storetest"
)

// TestContract runs the store contract against PostgreSQL, each behaviour
// on a fresh database.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return openContract(t, pgtest.URL(t))
	})
}

// TestContractOnHops runs the contract again with every session read and
// commit made as a hop makes them: on the session's own connection, the
// lock taken with the read and let go with the commit (LockSession).
func TestContractOnHops(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return openContractAs(t, pgtest.URL(t), func(db *postgres.DB) storetest.Store { return hopStore{db} })
	})
}

// hopStore reads and commits each session under LockSession.
type hopStore struct{ *postgres.DB }

// Session reads a session as a hop's first read does.
func (s hopStore) Session(ctx context.Context, id string) (*link.SessionRecord, error) {
	hctx, unlock, err := s.Locks().LockSession(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.DB.Session(hctx, id)
}

// Commit commits a change as a hop's commit does, after its read.
func (s hopStore) Commit(ctx context.Context, c link.Change) error {
	if c.Session == nil {
		return s.DB.Commit(ctx, c)
	}
	hctx, unlock, err := s.Locks().LockSession(ctx, c.Session.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.DB.Session(hctx, c.Session.ID); err != nil && !errors.Is(err, link.ErrNoSession) {
		return err
	}
	return s.DB.Commit(hctx, c)
}

// openContract opens the store on the database at url as the contract
// needs it, with the seal key of a restart: the same each time.
func openContract(t *testing.T, url string) storetest.Backend {
	return openContractAs(t, url, func(db *postgres.DB) storetest.Store { return db })
}

// openContractAs is openContract handing the suite as(db).
func openContractAs(t *testing.T, url string, as func(*postgres.DB) storetest.Store) storetest.Backend {
	t.Helper()
	sealer, err := seal.New(bytes.Repeat([]byte{0x5c}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(t.Context(), url, sealer, postgres.WithLinkUpdates(storetest.LinkUpdates),
		postgres.WithFunnel(storetest.FunnelOf))
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Opened(t, as(db), db.Close, db.Webhooks(), db.Texts(),
		func(t *testing.T) storetest.Backend { return openContractAs(t, url, as) },
		func(t *testing.T) []byte {
			t.Helper()
			raw, err := dump(t.Context(), url)
			if err != nil {
				t.Fatalf("dump the database: %v", err)
			}
			return raw
		})
}

// dump is everything the database at url holds in its tables, as text:
// every row of every table as PostgreSQL writes it out (bytea in hex),
// and every bytea value again with its bytes as they are (escaped only
// where they are not printable), so that a value stored in the clear shows
// whatever column holds it.
func dump(ctx context.Context, url string) ([]byte, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var queries []string
	rows, err := conn.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for rows.Next() {
		var table, column, typ string
		if err := rows.Scan(&table, &column, &typ); err != nil {
			return nil, err
		}
		tbl := pgx.Identifier{table}.Sanitize()
		if !seen[table] {
			seen[table] = true
			queries = append(queries, fmt.Sprintf(`SELECT string_agg(t::text, E'\n') FROM %s t`, tbl))
		}
		if typ == "bytea" {
			queries = append(queries, fmt.Sprintf(`SELECT string_agg(encode(%s, 'escape'), E'\n') FROM %s`,
				pgx.Identifier{column}.Sanitize(), tbl))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, q := range queries {
		var text *string
		if err := conn.QueryRow(ctx, q).Scan(&text); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		if text != nil {
			out.WriteString(*text)
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

// TestInstancesShareOneDatabaseSafely checks, with several instances on
// one database writing at once, the rules the bbolt store kept by having
// one writer: each case runs its writers spread over the instances.
func TestInstancesShareOneDatabaseSafely(t *testing.T) {
	const instances, writers = 3, 24
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)
	const phone = "+2348030000001"
	record := func(id string) *link.SessionRecord {
		return &link.SessionRecord{ID: id, Phone: phone, Updated: t0, Purge: t0.Add(time.Hour), Data: []byte(`{}`)}
	}
	for _, c := range []struct {
		name string
		// setup prepares the database; write is writer i's call on db;
		// check looks at the outcome, given each writer's result.
		setup func(t *testing.T, db *postgres.DB)
		write func(ctx context.Context, db *postgres.DB, i int) (bool, error)
		check func(t *testing.T, db *postgres.DB, won int)
	}{
		{
			name: "reservations never exceed max",
			write: func(ctx context.Context, db *postgres.DB, i int) (bool, error) {
				_, ok, err := db.ReserveAttempt(ctx, phone, t0.Add(-time.Hour), t0.Add(time.Duration(i)*time.Microsecond), 3)
				return ok, err
			},
			check: func(t *testing.T, db *postgres.DB, won int) {
				if n, err := db.LoginFailures(t.Context(), phone, t0.Add(-time.Hour)); won != 3 || n != 3 || err != nil {
					t.Errorf("%d reservations granted, %d recorded (%v); want 3", won, n, err)
				}
			},
		},
		{
			name: "one session claims a code",
			setup: func(t *testing.T, db *postgres.DB) {
				inv := &link.Invite{ID: "lnk_1", Kind: link.InviteLink, Phone: phone, Status: link.StatusPending,
					Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
				if err := db.CreateInvite(t.Context(), inv, 4, t0); err != nil {
					t.Fatal(err)
				}
			},
			write: func(ctx context.Context, db *postgres.DB, i int) (bool, error) {
				inv, err := db.Invite(ctx, "lnk_1")
				if err != nil {
					return false, err
				}
				_, err = db.ClaimInvite(ctx, link.InviteClaim{Code: inv.Code, Phone: phone, Session: fmt.Sprintf("s%02d", i), Now: t0})
				if errors.Is(err, link.ErrInviteInUse) {
					return false, nil
				}
				return err == nil, err
			},
			check: func(t *testing.T, db *postgres.DB, won int) {
				if won != 1 {
					t.Errorf("%d sessions claimed the code, want 1", won)
				}
			},
		},
		{
			name: "codes created at once are unique among pending invitations",
			write: func(ctx context.Context, db *postgres.DB, i int) (bool, error) {
				inv := &link.Invite{ID: fmt.Sprintf("lnk_%02d", i), Kind: link.InviteLink, Phone: phone, Status: link.StatusPending,
					Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
				return true, db.CreateInvite(ctx, inv, 1, t0)
			},
			check: func(t *testing.T, db *postgres.DB, _ int) {
				invs, err := db.InvitesByPhone(t.Context(), phone)
				if err != nil || len(invs) != writers {
					t.Fatalf("InvitesByPhone = %d invitations, %v; want %d", len(invs), err, writers)
				}
				holders := map[string]string{}
				for _, inv := range invs {
					if other, dup := holders[inv.Code]; dup {
						t.Errorf("%s and %s, both pending, hold code %s", other, inv.ID, inv.Code)
					}
					holders[inv.Code] = inv.ID
					if got, err := db.InviteByCode(t.Context(), inv.Code); err != nil || got.ID != inv.ID {
						t.Errorf("InviteByCode(%s) = %v, %v; want %s", inv.Code, got, err, inv.ID)
					}
				}
			},
		},
		{
			name: "a Mono event delivered to every instance at once is applied once",
			write: func(ctx context.Context, db *postgres.DB, i int) (bool, error) {
				return db.MonoEvent(ctx, "evt_1", t0, "acc-1", func(*link.Link, *link.Invite) link.MonoOutcome {
					return link.MonoOutcome{Events: []link.Event{{ID: fmt.Sprintf("msg_%02d", i), Type: link.TypeDataStatus,
						Timestamp: t0, Data: map[string]any{"account_id": "acc-1"}}}}
				})
			},
			check: func(t *testing.T, db *postgres.DB, won int) {
				msgs, err := db.Webhooks().Due(t.Context(), t0.Add(time.Hour), 100)
				if won != 1 || len(msgs) != 1 || err != nil {
					t.Errorf("applied %d times, %d webhooks queued (%v); want once", won, len(msgs), err)
				}
			},
		},
		{
			name: "an update Mono sends while a link commits reaches the link",
			write: func(ctx context.Context, db *postgres.DB, i int) (bool, error) {
				account := fmt.Sprintf("acc-%02d", i/2)
				if i%2 == 0 {
					l := &link.Link{AccountID: account, Phone: phone, SessionID: "s-" + account, Linked: t0}
					return true, db.Commit(ctx, link.Change{Session: record("s-" + account), Link: l})
				}
				return db.MonoEvent(ctx, "evt_"+account, t0, account, func(l *link.Link, _ *link.Invite) link.MonoOutcome {
					if l != nil {
						l.DataStatus = "AVAILABLE"
					}
					return link.MonoOutcome{Update: &link.MonoUpdate{AccountID: account, DataStatus: "AVAILABLE", Received: t0}}
				})
			},
			check: func(t *testing.T, db *postgres.DB, _ int) {
				for i := 0; i < writers; i += 2 {
					account := fmt.Sprintf("acc-%02d", i/2)
					if l, ok, err := db.Link(t.Context(), account); err != nil || !ok || l.DataStatus != "AVAILABLE" {
						t.Errorf("Link(%s) = %+v, %v, %v; want data status AVAILABLE", account, l, ok, err)
					}
				}
			},
		},
		{
			name: "funnel counters add up from every instance at once",
			write: func(ctx context.Context, db *postgres.DB, i int) (bool, error) {
				return true, db.Commit(ctx, link.Change{Session: record(fmt.Sprintf("s%02d", i)), Funnel: funnelEntry(t0, i)})
			},
			check: func(t *testing.T, db *postgres.DB, _ int) {
				checkReached(t, db, t0, writers)
			},
		},
		{
			name: "sweeps on every instance at once count each session once",
			setup: func(t *testing.T, db *postgres.DB) {
				for i := range writers {
					r := record(fmt.Sprintf("s%02d", i))
					data, err := json.Marshal(map[string]any{"funnel": funnelEntry(t0, i)})
					if err != nil {
						t.Fatal(err)
					}
					r.Data, r.Purge = data, t0.Add(-time.Minute)
					if err := db.Commit(t.Context(), link.Change{Session: r}); err != nil {
						t.Fatal(err)
					}
				}
			},
			write: func(ctx context.Context, db *postgres.DB, i int) (bool, error) {
				n, err := db.Sweep(ctx, t0, 2)
				return n > 0, err
			},
			check: func(t *testing.T, db *postgres.DB, _ int) {
				for {
					n, err := db.Sweep(t.Context(), t0, writers)
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						break
					}
				}
				checkReached(t, db, t0, writers)
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := pgtest.URL(t)
			dbs := make([]*postgres.DB, instances)
			for i := range dbs {
				dbs[i] = openContract(t, url).Store.(*postgres.DB)
			}
			if c.setup != nil {
				c.setup(t, dbs[0])
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			won := make([]bool, writers)
			errs := make([]error, writers)
			for i := range writers {
				wg.Go(func() {
					<-start
					won[i], errs[i] = c.write(t.Context(), dbs[i%instances], i)
				})
			}
			close(start)
			wg.Wait()
			n := 0
			for i := range writers {
				if errs[i] != nil {
					t.Errorf("writer %d: %v", i, errs[i])
				}
				if won[i] {
					n++
				}
			}
			c.check(t, dbs[0], n)
		})
	}
}

// funnelEntry is writer i's funnel entry on day: the same two screens as
// every writer's, first reached in an order that depends on i, so that
// commits adding to the same counters meet them in either order.
func funnelEntry(day time.Time, i int) *link.FunnelEntry {
	screens := []link.FunnelScreen{{Screen: "banks", Seconds: i}, {Screen: "otp", Seconds: 2 * i}}
	if i%2 == 1 {
		screens[0], screens[1] = screens[1], screens[0]
	}
	return &link.FunnelEntry{Day: day, Dialect: "hubtel", Network: "MTN", Institution: "gtb", Reached: screens,
		EndedOn: screens[1].Screen, Reason: "exit"}
}

// checkReached checks that each of funnelEntry's screens was reached n
// times on day, in every grouping, and that n sessions ended.
func checkReached(t *testing.T, db *postgres.DB, day time.Time, n int) {
	t.Helper()
	for _, by := range link.FunnelGroupings {
		counts, err := db.FunnelCounts(t.Context(), day, by)
		if err != nil || len(counts) != 2 {
			t.Fatalf("FunnelCounts(by %q) = %+v, %v; want two screens", by, counts, err)
		}
		left := 0
		for _, c := range counts {
			if c.Reached != n {
				t.Errorf("by %q, screen %s reached %d times, want %d", by, c.Screen, c.Reached, n)
			}
			left += c.Left["exit"]
		}
		if left != n {
			t.Errorf("by %q, %d sessions ended, want %d", by, left, n)
		}
	}
}
