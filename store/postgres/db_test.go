package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store/postgres"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// sealer is a sealer of a fixed key, with previous keys.
func sealer(t *testing.T, fill byte, previous ...byte) *seal.Sealer {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, seal.KeySize))
	}
	s, err := seal.New(bytes.Repeat([]byte{fill}, seal.KeySize), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInstancesStartingTogetherMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	const instances = 4
	var wg sync.WaitGroup
	errs := make([]error, instances)
	dbs := make([]*postgres.DB, instances)
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = postgres.Open(ctx, url, sealer(t, 1))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var applied, versions int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM ussdlink_schema_version WHERE version_id > 0`).
		Scan(&applied, &versions); err != nil {
		t.Fatal(err)
	}
	if applied != versions || applied == 0 {
		t.Errorf("schema versions recorded %d times for %d versions: want each applied once", applied, versions)
	}
	if again, err := postgres.Migrate(ctx, url); err != nil || len(again) != 0 {
		t.Errorf("migrate on a migrated database applied %v, %v; want nothing", again, err)
	}
}

func TestAnInstanceWithAnotherSealKeyRefusesToStart(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	first, err := postgres.Open(ctx, url, sealer(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	cases := []struct {
		name   string
		sealer *seal.Sealer
		want   error
	}{
		{"the same key", sealer(t, 1), nil},
		{"another key", sealer(t, 2), postgres.ErrSealKeyMismatch},
		{"a new key with the old one as previous", sealer(t, 3, 1), nil},
		{"the old key once the new one is checked in", sealer(t, 1), postgres.ErrSealKeyMismatch},
		{"the new key", sealer(t, 3), nil},
	}
	for _, c := range cases {
		db, err := postgres.Open(ctx, url, c.sealer)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: Open = %v, want %v", c.name, err, c.want)
		}
		if err == nil {
			db.Close()
		}
	}
}
