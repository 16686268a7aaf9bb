package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ussdlink/ussdlink/store/postgres"
)

// runMigrate applies the PostgreSQL schema's missing migrations and
// exits: for deploys that migrate before starting new instances (every
// instance also migrates at start, under the same lock).
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := NewMain(stderr)
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if !m.Config.Store.postgres() {
		return errors.New("migrate: no PostgreSQL configured ([store] url or DATABASE_URL); the embedded bbolt store migrates itself at open")
	}
	applied, err := postgres.Migrate(ctx, m.Config.Store.URL)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		_, err = fmt.Fprintln(stdout, "migrate: the schema is up to date")
		return err
	}
	for _, name := range applied {
		if _, err := fmt.Fprintln(stdout, "migrate: applied", name); err != nil {
			return err
		}
	}
	return nil
}
