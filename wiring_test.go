package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

func TestExternalMonoFailuresEndWithClearScreens(t *testing.T) {
	const key = "test_sk_external"
	cases := []struct {
		name   string
		path   string // the endpoint that fails; "" fails none
		status int
		want   string
		calls  int64 // requests the failing endpoint must have seen
	}{
		{name: "an external Mono at base-url links like the sandbox", want: "is linked"},
		{name: "Mono 5xx on login is retried then ends with a clear screen", path: "/v1/connect/login", status: 503, want: "could not be reached", calls: 3},
		{name: "a refused key ends as service unavailable without retry", path: "/v1/connect/session", status: 401, want: "Service unavailable", calls: 1},
		{name: "no Partners add-on ends as service unavailable", path: "/v1/connect/session", status: 403, want: "Service unavailable", calls: 1},
		{name: "a failed code exchange ends with a clear screen", path: "/account/auth", status: 500, want: "could not be reached", calls: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Options{SecretKey: key})
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == tc.path {
					calls.Add(1)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					w.Write([]byte(`{"status":"failed","message":"upstream boom at 10.1.2.3"}`))
					return
				}
				sb.ServeHTTP(w, r)
			}))
			defer srv.Close()
			m, logs := startGateway(t, func(c *Config) {
				c.Mono.BaseURL = srv.URL
				c.Mono.SecretKey = key
				c.Mono.AppID = "app_external"
				c.Mono.Timeout = Duration{5 * time.Second}
			})
			h := newHandset(t, m, "+2348039990000")
			h.dial()
			h.choose("GTBank")
			h.send("user_good")
			h.send("pass_good")
			h.expect(tc.want)
			if !h.ended {
				t.Fatalf("session did not end: %s", h.screen)
			}
			if strings.Contains(h.screen, "boom") || strings.Contains(h.screen, "503") {
				t.Errorf("screen shows Mono's raw error: %s", h.screen)
			}
			if got := calls.Load(); got != tc.calls {
				t.Errorf("failing endpoint saw %d requests, want %d", got, tc.calls)
			}
			if tc.status != 0 && !strings.Contains(logs.String(), "boom") {
				t.Errorf("Mono's message was not kept in the logs")
			}
		})
	}
}

func TestDialCommandLinksAnAccount(t *testing.T) {
	m, _ := startGateway(t, nil)
	var out, errOut bytes.Buffer
	in := strings.NewReader("1\nuser_good\npass_good\n")
	err := run(context.Background(), []string{"dial", "-url", m.URL(), "-phone", "+2348035550000"}, in, &out, &errOut)
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, errOut.String())
	}
	for _, want := range []string{"Choose bank", "Log in to GTBank", "Password", "is linked"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dial output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "pass_good") {
		t.Errorf("dial output echoes the password")
	}
}

func TestDialCommandReportsHangUp(t *testing.T) {
	m, _ := startGateway(t, nil)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"dial", "-url", m.URL()}, strings.NewReader("1\n"), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "hung up") {
		t.Fatalf("dial with input running out = %v, want hung up", err)
	}
}

func TestHealthzAnswersWhenReady(t *testing.T) {
	m, _ := startGateway(t, nil)
	resp, err := http.Get(m.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}
}

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
	} {
		t.Run(bad.name, func(t *testing.T) {
			if _, err := LoadConfig(write(bad.body), true); err == nil {
				t.Errorf("LoadConfig accepted %q", bad.body)
			}
		})
	}
	t.Run("a missing default file is fine, a missing named file is not", func(t *testing.T) {
		if _, err := LoadConfig(filepath.Join(dir, "none.toml"), false); err != nil {
			t.Errorf("optional missing file: %v", err)
		}
		if _, err := LoadConfig(filepath.Join(dir, "none.toml"), true); err == nil {
			t.Errorf("required missing file accepted")
		}
	})
}

func TestLoadCommandDrivesLinkFlows(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) { c.Log.Level = "warn" })
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"load", "-url", m.URL(), "-flows", "24", "-concurrency", "4"}, nil, &out, &errOut)
	if err != nil {
		t.Fatalf("load: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "flows 24 (failed 0)") || !strings.Contains(out.String(), "p99") {
		t.Errorf("load output:\n%s", out.String())
	}
	// Every flow links the same sandbox account (one link, keyed by Mono's
	// account id); each phone's session must have ended linked.
	for i := 1; i <= 24; i++ {
		s, err := latestSession(m, fmt.Sprintf("+234903%07d", i))
		if err != nil {
			t.Fatal(err)
		}
		if s.Reason != "linked" {
			t.Errorf("session of flow %d ended %q", i, s.Reason)
		}
	}
}

func TestLoadCommandRefusesARemoteGateway(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"load", "-url", "http://192.0.2.10:8080", "-flows", "1"}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("load against a remote address = %v, want refused", err)
	}
}
