package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations are the schema's versions, applied in order of their number.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockID is the advisory lock instances take while migrating.
const migrationLockID int64 = 0x7573_7364_6c69_6e6b // "ussdlink"

// Migrate applies the migrations a database lacks, under an advisory lock
// (two instances starting together migrate once), and reports what it
// applied. `ussdlink migrate` runs it alone.
func Migrate(ctx context.Context, url string) ([]string, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", redact(err))
	}
	defer pool.Close()
	return applied(ctx, pool)
}

// migrate applies the missing migrations on an open pool.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := applied(ctx, pool)
	return err
}

// applied runs goose's provider over the embedded migrations.
func applied(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var out []string
	err := withProvider(pool, func(p *goose.Provider) error {
		results, err := p.Up(ctx)
		for _, r := range results {
			out = append(out, r.Source.Path)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return out, nil
}

// withProvider calls fn with goose's provider of the embedded migrations
// on pool, under the migrations' advisory lock.
func withProvider(pool *pgxpool.Pool, fn func(*goose.Provider) error) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithSessionLocker(locker),
		goose.WithTableName("ussdlink_schema_version"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	return fn(p)
}
