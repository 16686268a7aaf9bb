package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

func TestTheFunnelCountsCompleteAndAbandonedFlowsOnEveryBackend(t *testing.T) {
	for _, backend := range []string{"bbolt", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			clock := &testClock{now: time.Now().UTC()}
			m, _ := startMain(t, func(m *Main) {
				m.Now = clock.Now
				m.Config.Partner.APIKeys = []string{testAPIKey}
				if backend == "postgres" {
					m.Config.Store.URL = pgtest.URL(t)
					m.Config.Security.SealKey = sealKey(0x33)
				}
			})
			phone := func(i int) string { return fmt.Sprintf("+23480720%05d", i) }
			walk(t, m, phone(1), "1", "user_good", "pass_good").expect("is linked")
			walk(t, m, phone(2), "1", "user_otp", "pass_good", "123456").expect("is linked")
			walk(t, m, phone(3), "0").expect("Goodbye")  // leaves at the bank list
			walk(t, m, phone(4), "1").expect("UserID")   // walks away on the login form
			walk(t, m, phone(5), "1", "nobody", "wrong") // refused once, then walks away
			clock.Advance(3 * time.Hour)                 // the abandoned sessions lapse
			m.sweep(context.Background())
			m.sweep(context.Background()) // a second sweep counts nothing twice

			_, body := call(t, m, "GET", "/v1/funnel?since=1d", testAPIKey, nil, nil)
			groups, _ := body["groups"].([]any)
			if len(groups) != 1 {
				t.Fatalf("GET /v1/funnel = %v", body)
			}
			g := groups[0].(map[string]any)
			if g["sessions"] != 5.0 || g["completed"] != 2.0 || g["completion_rate"] != 0.4 {
				t.Errorf("group = %v", g)
			}
			screens := map[string]map[string]any{}
			var order []string
			for _, s := range g["screens"].([]any) {
				sc := s.(map[string]any)
				screens[sc["screen"].(string)] = sc
				order = append(order, sc["screen"].(string))
			}
			if strings.Join(order, " ") != "banks credentials challenge linked" {
				t.Errorf("screens in order %v, want the journey's", order)
			}
			want := map[string]struct {
				reached, left float64
				by            map[string]float64
			}{
				"banks":       {5, 1, map[string]float64{"exit": 1}},
				"credentials": {4, 2, map[string]float64{"expired": 2}},
				"challenge":   {1, 0, nil},
				"linked":      {2, 2, map[string]float64{"linked": 2}},
			}
			for name, w := range want {
				s := screens[name]
				if s == nil || s["reached"] != w.reached || s["left"] != w.left {
					t.Errorf("%s = %v, want reached %v, left %v", name, s, w.reached, w.left)
					continue
				}
				for reason, n := range w.by {
					if by, _ := s["left_by"].(map[string]any); by[reason] != n {
						t.Errorf("%s left by %s = %v, want %v", name, reason, s["left_by"], n)
					}
				}
			}
			_, byDialect := call(t, m, "GET", "/v1/funnel?since=1d&by=dialect", testAPIKey, nil, nil)
			if gs, _ := byDialect["groups"].([]any); len(gs) != 1 || gs[0].(map[string]any)["value"] != "africastalking" {
				t.Errorf("by dialect = %v", byDialect)
			}
			if status, _ := call(t, m, "GET", "/v1/funnel?by=phone", testAPIKey, nil, nil); status != 400 {
				t.Errorf("by=phone = %d, want 400", status)
			}

			var out, errOut bytes.Buffer
			if err := run(context.Background(), []string{"funnel", "-url", m.URL(), "-key", testAPIKey, "-since", "1d"}, nil, &out, &errOut); err != nil {
				t.Fatalf("funnel -url: %v %s", err, errOut.String())
			}
			if !strings.Contains(out.String(), "5 sessions, 2 linked, completion 40.0%") || !strings.Contains(out.String(), "expired 2") {
				t.Errorf("funnel printed:\n%s", out.String())
			}
		})
	}
}

func TestTheFunnelCommandReadsAStoppedGatewaysStore(t *testing.T) {
	m := NewMain(&syncBuffer{})
	m.Config.USSD.Languages = []string{"en"}
	m.Config.HTTP.Addr, m.Config.Admin.Addr = "127.0.0.1:0", ""
	path := filepath.Join(t.TempDir(), "data", "ussdlink.db")
	m.Config.Store.Path = path
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	walk(t, m, "+2348072000101", "1", "user_good", "pass_good").expect("is linked")
	if err := m.Close(); err != nil { // the file is free for the command
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[store]\npath = %q\n", path)), 0o600); err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string]string{
		"text": "1 sessions, 1 linked, completion 100.0%",
		"csv":  ",,linked,1,1,",
		"json": `"completion_rate": 1`,
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"funnel", "-config", cfg, "-format", format}, nil, &out, &errOut); err != nil {
			t.Fatalf("funnel -format %s: %v %s", format, err, errOut.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("funnel -format %s printed:\n%s", format, out.String())
		}
	}
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"funnel", "-config", cfg, "-by", "phone"}, nil, &bytes.Buffer{}, &errOut); err == nil {
		t.Error("funnel -by phone succeeded")
	}
}
