package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("the shipped config.toml loads with the documented defaults", func(t *testing.T) {
		cfg, err := LoadConfig("config.toml", true)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cfg, DefaultConfig(); !reflect.DeepEqual(got, want) {
			t.Errorf("config.toml = %+v, want defaults %+v", got, want)
		}
	})
	t.Run("MONO_SECRET_KEY overrides the file", func(t *testing.T) {
		t.Setenv("MONO_SECRET_KEY", "test_sk_env")
		cfg, err := LoadConfig(write("[mono]\nsecret-key = \"test_sk_file\"\n"), true)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Mono.SecretKey != "test_sk_env" {
			t.Errorf("secret key = %q", cfg.Mono.SecretKey)
		}
	})
	t.Run("keys are kebab-case and durations strings", func(t *testing.T) {
		cfg, err := LoadConfig(write("[ussd]\nservice-code = \"*1*2#\"\nscreen-limit = 120\nsession-ttl = \"90s\"\n[mono]\ntimeout = \"3s\"\nbase-url = \"http://x\"\napp-id = \"a\"\n"), true)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.USSD.ServiceCode != "*1*2#" || cfg.USSD.ScreenLimit != 120 || cfg.USSD.SessionTTL.Duration != 90*time.Second || cfg.Mono.Timeout.Duration != 3*time.Second || cfg.Mono.AppID != "a" {
			t.Errorf("config = %+v", cfg)
		}
	})
	for _, bad := range []struct{ name, body string }{
		{"an unknown key is refused", "[ussd]\nscreen-limt = 120\n"},
		{"a screen limit beyond a handset's is refused", "[ussd]\nscreen-limit = 500\n"},
		{"a malformed duration is refused", "[mono]\ntimeout = \"soon\"\n"},
		{"no texts in flight is refused", "[sms]\nmax-in-flight = 0\n"},
		{"no webhooks in flight is refused", "[partner]\nwebhook-max-in-flight = -1\n"},
		{"a Mono API other than v1 or v2 is refused", "[mono]\napi = \"v3\"\n"},
		{"a customer template with an unknown placeholder is refused", "[mono]\ncustomer-name = \"{name}\"\n"},
		{"a customer e-mail template that makes no address is refused", "[mono]\ncustomer-email = \"{phone}\"\n"},
		{"an empty customer name is refused", "[mono]\ncustomer-name = \" \"\n"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if _, err := LoadConfig(write(bad.body), true); err == nil {
				t.Errorf("LoadConfig accepted %q", bad.body)
			}
		})
	}
	t.Run("Mono v2 with an operator's customer templates loads", func(t *testing.T) {
		cfg, err := LoadConfig(write("[mono]\napi = \"v2\"\ncustomer-name = \"Customer {phone}\"\ncustomer-email = \"{phone}@customers.example.com\"\n"), true)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Mono.api() != "v2" || cfg.Mono.CustomerEmail != "{phone}@customers.example.com" {
			t.Errorf("mono = %+v", cfg.Mono)
		}
	})
	t.Run("a missing default file is fine, a missing named file is not", func(t *testing.T) {
		if _, err := LoadConfig(filepath.Join(dir, "none.toml"), false); err != nil {
			t.Errorf("optional missing file: %v", err)
		}
		if _, err := LoadConfig(filepath.Join(dir, "none.toml"), true); err == nil {
			t.Errorf("required missing file accepted")
		}
	})
}

func TestSafeDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.toml", time.Now().UnixNano()))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		body    string
		env     map[string]string
		refused bool
	}{
		{name: "a live key without callback auth is refused", body: "[mono]\nbase-url = \"http://mono\"\nsecret-key = \"live_sk_abc\"\n", refused: true},
		{name: "a live key from the environment without callback auth is refused", env: map[string]string{"MONO_SECRET_KEY": "live_sk_env"}, refused: true},
		{name: "a live key with a callback token starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n[ussd]\ncallback-token = \"t\"\n"},
		{name: "a live key with a token from the environment starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n", env: map[string]string{"USSDLINK_CALLBACK_TOKEN": "t"}},
		{name: "a live key with allowed networks starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n[ussd]\nallow-ips = [\"10.0.0.0/8\"]\n"},
		{name: "a live key with an explicit allow-unauthenticated starts", body: "[mono]\nsecret-key = \"live_sk_abc\"\n[security]\nallow-unauthenticated = true\n"},
		{name: "a test key without callback auth starts", body: "[mono]\nsecret-key = \"test_sk_abc\"\n"},
		{name: "a malformed allowed network is refused", body: "[ussd]\nallow-ips = [\"10.0.0/33\"]\n", refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig(write(tc.body), true)
			if refused := err != nil; refused != tc.refused {
				t.Fatalf("LoadConfig err = %v, want refused %v", err, tc.refused)
			}
		})
	}
	t.Run("a generated seal key is warned about, a configured one is not", func(t *testing.T) {
		_, logs := startGateway(t, nil)
		if !strings.Contains(logs.String(), "generated a seal key") {
			t.Errorf("no warning for a generated seal key")
		}
		_, logs = startGateway(t, func(c *Config) { c.Security.SealKey = strings.Repeat("ab", 32) })
		if strings.Contains(logs.String(), "generated a seal key") {
			t.Errorf("warned although a key was configured")
		}
	})
	t.Run("the seal key can come from the environment", func(t *testing.T) {
		t.Setenv("USSDLINK_SEAL_KEY", strings.Repeat("cd", 32))
		cfg, err := LoadConfig(write(""), true)
		if err != nil || cfg.Security.SealKey != strings.Repeat("cd", 32) {
			t.Fatalf("seal key = %q, %v", cfg.Security.SealKey, err)
		}
	})
}

func TestSMSTimezoneIsCheckedAtLoad(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"an IANA zone is accepted", "[sms]\ntimezone = \"Africa/Accra\"\n", true},
		{"an unknown zone is refused", "[sms]\ntimezone = \"Africa/Atlantis\"\n", false},
		{"an empty zone is refused", "[sms]\ntimezone = \"\"\n", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("%s/c%d.toml", dir, i)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path, true)
			if got := err == nil; got != tc.ok {
				t.Errorf("LoadConfig(%q) error = %v, want accepted %v", tc.body, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "sms.timezone") {
				t.Errorf("error %q does not name sms.timezone", err)
			}
		})
	}
	if got := DefaultConfig().SMS.Timezone; got != "Africa/Lagos" {
		t.Errorf("default timezone = %q, want Africa/Lagos", got)
	}
}

func TestTheDeployExamplesConfigurationLoads(t *testing.T) {
	for _, path := range []string{"deploy/config-8081.toml", "deploy/config-8082.toml", "config.toml"} {
		if _, err := LoadConfig(path, true); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
	// The two instances of one machine listen on addresses of their own,
	// the callbacks' and the admin listener's.
	taken := map[string]string{}
	for _, path := range []string{"deploy/config-8081.toml", "deploy/config-8082.toml"} {
		cfg, err := LoadConfig(path, true)
		if err != nil {
			continue
		}
		for _, addr := range []string{cfg.HTTP.Addr, cfg.Admin.Addr} {
			if other, dup := taken[addr]; dup {
				t.Errorf("%s and %s both listen on %s", other, path, addr)
			}
			taken[addr] = path
		}
	}
}

func TestTheStoreIsChosenByItsURL(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, env string
		wantURL         string
		wantErr         string
	}{
		{"no url keeps bbolt", "", "", "", ""},
		{"a postgres url", "[store]\nurl = \"postgres://u@db/ussdlink\"\n", "", "postgres://u@db/ussdlink", ""},
		{"a postgresql url", "[store]\nurl = \"postgresql://u@db/ussdlink\"\nmax-conns = 8\n", "", "postgresql://u@db/ussdlink", ""},
		{"DATABASE_URL wins over the file", "[store]\nurl = \"postgres://file/db\"\n", "postgres://env/db", "postgres://env/db", ""},
		{"another scheme is refused", "[store]\nurl = \"mysql://u@db/x\"\n", "", "", "store.url must be a postgres://"},
		{"a negative pool is refused", "[store]\nurl = \"postgres://u@db/x\"\nmax-conns = -1\n", "", "", "store.max-conns"},
		{"a lease under a second is refused", "[store]\nlease-ttl = \"100ms\"\n", "", "", "store.lease-ttl"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", c.env)
			path := filepath.Join(dir, fmt.Sprintf("c%d.toml", i))
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path, true)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("LoadConfig = %v, want an error about %q", err, c.wantErr)
				}
				return
			}
			if err != nil || cfg.Store.URL != c.wantURL || cfg.Store.postgres() != (c.wantURL != "") {
				t.Fatalf("store url = %q (postgres %v), %v; want %q", cfg.Store.URL, cfg.Store.postgres(), err, c.wantURL)
			}
		})
	}
}

func TestAGatewayOnPostgreSQLNeedsASharedSealKey(t *testing.T) {
	m := NewMain(&syncBuffer{})
	m.Config.USSD.Languages = []string{"en"}
	m.Config.HTTP.Addr, m.Config.Admin.Addr = "127.0.0.1:0", ""
	m.Config.Store.URL = "postgres://nobody@127.0.0.1:1/none" // never reached: the key is checked first
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "seal-key") {
		t.Fatalf("Run without a seal key on PostgreSQL = %v, want a refusal naming seal-key", err)
	}
}
