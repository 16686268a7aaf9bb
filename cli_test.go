package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/menus"
)

func TestTheCommandLinePrintsUsageAndRefusesUnknownCommands(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		stdout   bool // the usage goes to stdout; otherwise to stderr
		wantErr  string
	}{
		{name: "help", args: []string{"help"}, wantCode: 0, stdout: true},
		{name: "-h", args: []string{"-h"}, wantCode: 0, stdout: true},
		{name: "--help", args: []string{"--help"}, wantCode: 0, stdout: true},
		{name: "-help", args: []string{"-help"}, wantCode: 0, stdout: true},
		{name: "a misspelt command", args: []string{"dail"}, wantCode: 2, wantErr: `unknown command "dail"`},
		{name: "a misspelt command with flags", args: []string{"srve", "-config", "x.toml"}, wantCode: 2, wantErr: `unknown command "srve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := exitCode(run(ctx, tt.args, strings.NewReader(""), &stdout, &stderr), &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			out, other := stdout.String(), stderr.String()
			if !tt.stdout {
				out, other = other, out
			}
			for _, want := range []string{"Usage: ussdlink", "serve", "dial", "load", "help", "-config"} {
				if !strings.Contains(out, want) {
					t.Errorf("usage lacks %q:\n%s", want, out)
				}
			}
			if other != "" {
				t.Errorf("the other stream got %q, want nothing", other)
			}
			if !strings.Contains(out, tt.wantErr) {
				t.Errorf("output lacks %q:\n%s", tt.wantErr, out)
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
	// A gateway that asks each new phone its language (the default) is
	// answered English.
	asking, _ := startGateway(t, func(c *Config) { c.Log.Level = "warn"; c.USSD.Languages = []string{"en", "ha"} })
	out.Reset()
	if err := run(context.Background(), []string{"load", "-url", asking.URL(), "-flows", "8", "-concurrency", "2"}, nil, &out, &errOut); err != nil ||
		!strings.Contains(out.String(), "flows 8 (failed 0)") {
		t.Errorf("load against a gateway asking the language: %v\n%s", err, out.String())
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

func TestGraphPrintsTheJourneyTheReadmeShows(t *testing.T) {
	for _, format := range []string{"mermaid", "dot"} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"graph", "-format", format}, nil, &out, &errOut); err != nil {
			t.Fatalf("graph -format %s: %v %s", format, err, errOut.String())
		}
		want := menus.TheJourney().Mermaid()
		if format == "dot" {
			want = menus.TheJourney().Dot()
		}
		if out.String() != want {
			t.Errorf("graph -format %s printed something else than the journey", format)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```mermaid\n"+menus.TheJourney().Mermaid()+"```") {
		t.Error("README.md's journey is not the one `ussdlink graph` prints: paste its output again")
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"graph", "-format", "png"}, nil, &out, &errOut); err == nil {
		t.Error("graph -format png succeeded")
	}
}

func TestOnlyAGatewayOnBboltTakesTheExtraP(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	tests := []struct {
		name  string
		store StoreConfig
		env   map[string]string
		want  bool
	}{
		{"on bbolt", StoreConfig{Path: "data/ussdlink.db"}, nil, true},
		{"on PostgreSQL", StoreConfig{URL: "postgres://u@localhost/db"}, nil, false},
		{"on bbolt with GOMAXPROCS set", StoreConfig{Path: "data/ussdlink.db"}, map[string]string{"GOMAXPROCS": "4"}, false},
	}
	for _, tt := range tests {
		if got := spareP(tt.store, env(tt.env)); got != tt.want {
			t.Errorf("%s: spareP = %v, want %v", tt.name, got, tt.want)
		}
	}
}
