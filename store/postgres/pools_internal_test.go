package postgres

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

func TestEachPoolCommitsAndReadsAsItsWorkNeeds(t *testing.T) {
	sealer, err := seal.New(bytes.Repeat([]byte{0x61}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	// The test server commits without waiting for the WAL; a production
	// one does not.
	if _, err := admin.Exec(t.Context(), `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on',
		current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), url, sealer)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		name              string
		pool              *pgxpool.Pool
		synchronousCommit string
	}{
		{"statements and transactions: durable before they return", db.pool, "on"},
		{"a hop's session lock, read and commit: durable before they return", db.held, "on"},
		{"queue claims and outcomes: at least once, no wait for the WAL", db.settle, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sync, isolation string
			if err := tt.pool.QueryRow(t.Context(), `SELECT current_setting('synchronous_commit'),
				current_setting('default_transaction_isolation')`).Scan(&sync, &isolation); err != nil {
				t.Fatal(err)
			}
			if sync != tt.synchronousCommit || isolation != "read committed" {
				t.Errorf("synchronous_commit %s, isolation %s; want %s, read committed", sync, isolation, tt.synchronousCommit)
			}
		})
	}
}
