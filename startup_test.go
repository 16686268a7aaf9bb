package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/store"
)

func TestAMisconfiguredMonoIsFoundAtStart(t *testing.T) {
	tests := []struct {
		name    string
		app     string
		status  int
		body    string
		refuse  string // the start fails with this in its reason
		warning bool   // the start goes on with a loud warning
	}{
		{name: "no app id", app: "", status: 200, body: `{"data":[]}`, refuse: "app-id is required"},
		{name: "a key Mono refuses", app: "app", status: 401, body: `{"message":"invalid secret key"}`, refuse: "refused the secret key"},
		{name: "no Partners add-on", app: "app", status: 403, body: `{"message":"forbidden"}`, refuse: "Partners add-on"},
		{name: "an app Mono does not know", app: "app", status: 400, body: `{"message":"app not found"}`, refuse: "app-id"},
		{name: "Mono down for now", app: "app", status: 502, body: `bad gateway`, warning: true},
		{name: "all well", app: "app", status: 200, body: `{"data":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			var logs bytes.Buffer
			client := mono.NewClient("test_sk_check", mono.WithBaseURL(srv.URL), mono.WithRetry(1, 0))
			err := checkMono(context.Background(), client, MonoConfig{BaseURL: srv.URL, AppID: tt.app}, zerolog.New(&logs))
			switch {
			case tt.refuse != "" && (err == nil || !strings.Contains(err.Error(), tt.refuse)):
				t.Errorf("err = %v, want a refusal naming %q", err, tt.refuse)
			case tt.refuse == "" && err != nil:
				t.Errorf("err = %v, want the gateway to start", err)
			}
			if warned := strings.Contains(logs.String(), `"level":"error"`); warned != tt.warning {
				t.Errorf("loud warning = %v, want %v: %s", warned, tt.warning, logs.String())
			}
		})
	}
}

func TestASecondGatewayOnOneStoreFailsAtOnce(t *testing.T) {
	m, _ := startGateway(t, nil)
	second := NewMain(&bytes.Buffer{})
	second.Config.USSD.Languages = []string{"en"}
	second.Config = m.Config
	second.Config.HTTP.Addr, second.Config.Admin.Addr = "127.0.0.1:0", ""
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
