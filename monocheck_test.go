package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/mono"
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
