package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/menus"
)

func TestSeedFillsTheStoreWithFinishedLinksTheGatewayReads(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	dbPath := filepath.Join(dir, "seeded.db")
	if err := os.WriteFile(cfgPath, []byte("[store]\npath = \""+dbPath+"\"\n[log]\nlevel = \"warn\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"seed", "-config", cfgPath, "-sessions", "40", "-concurrency", "8"},
		strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("seed: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "wrote 40 sessions") {
		t.Fatalf("seed said %q", out.String())
	}

	m, _ := startGateway(t, func(c *Config) { c.Store.Path = dbPath })
	sizes, err := m.db.BucketSizes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sizes["session_keys"] != 40 || sizes["links"] != 40 || sizes["phones"] != 40 {
		t.Fatalf("store after seeding 40: %v", sizes)
	}
	r, err := m.db.Session(context.Background(), "seed_7")
	if err != nil {
		t.Fatal(err)
	}
	s, err := menus.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != menus.StateLinked || s.Link == nil || s.Link.AccountID != "seed00000000000000000007" || s.Phone != "+2348100000007" {
		t.Fatalf("seeded session 7 = %+v", s)
	}
	// A seeded phone dials again: the gateway answers it as any returning
	// user, from the full store.
	h := newHandset(t, m, "+2348100000007")
	if screen := h.dial(); h.ended || screen == "" {
		t.Fatalf("a seeded phone dialling got %q (ended %v)", screen, h.ended)
	}
}
