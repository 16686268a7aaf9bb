package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestProfilesAreServedOnlyOnTheDebugAddress(t *testing.T) {
	t.Run("configured: its own listener serves them, the callback port does not", func(t *testing.T) {
		m, _ := startGateway(t, func(c *Config) { c.HTTP.DebugAddr = "127.0.0.1:0" })
		if m.DebugURL() == "" {
			t.Fatal("no debug listener")
		}
		if code, body := get(t, m.DebugURL()+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
			t.Fatalf("debug listener: %d %.80q", code, body)
		}
		if code, _ := get(t, m.URL()+"/debug/pprof/"); code != 404 {
			t.Fatalf("callback port answered the profiles with %d", code)
		}
	})
	t.Run("not configured: no listener", func(t *testing.T) {
		m, _ := startGateway(t, nil)
		if m.DebugURL() != "" {
			t.Fatalf("a debug listener at %s", m.DebugURL())
		}
	})
}

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}
