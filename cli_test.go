package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/store"
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

func TestASecondGatewayOnOneStoreFailsAtOnce(t *testing.T) {
	m, _ := startGateway(t, nil)
	second := NewMain(&bytes.Buffer{})
	second.Config = m.Config
	second.Config.HTTP.Addr = "127.0.0.1:0"
	start := time.Now()
	err := second.Run(context.Background())
	second.Close()
	if !errors.Is(err, store.ErrInUse) {
		t.Fatalf("second Run: %v, want the store in use", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the second gateway took %v to fail, want at once", took)
	}
	want := "the store is in use by another process (" + m.Config.Store.Path + ")"
	var stderr bytes.Buffer
	if code := exitCode(err, &stderr); code != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, %q; want 1 and %q", code, stderr.String(), want)
	}
}
