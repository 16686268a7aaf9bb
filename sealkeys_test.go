package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
)

// sealKey is a 32-byte key of one repeated byte, base64 as configured.
func sealKey(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

// gatewayOn runs a gateway on a given store and Mono with given seal keys;
// stop closes it, so another can open the same store.
func gatewayOn(t *testing.T, path, monoURL, key string, previous ...string) (m *Main, stop func()) {
	t.Helper()
	m = NewMain(&syncBuffer{})
	m.Config.USSD.Languages = []string{"en"}
	m.Config.Mono.BaseURL, m.Config.Mono.SecretKey, m.Config.Mono.AppID = monoURL, "test_sk_hooks", "app"
	m.Config.HTTP.Addr, m.Config.Admin.Addr = "127.0.0.1:0", ""
	m.Config.Store.Path = path
	m.Config.Log = LogConfig{Level: "debug", Format: "json", Phone: "masked"}
	m.Config.Security.SealKey, m.Config.Security.PreviousSealKeys = key, previous
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	closed := false
	stop = func() {
		if !closed {
			closed = true
			if err := m.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return m, stop
}

// moveTo points a handset at another gateway, as the aggregator would
// after a restart on a new port.
func (h *handset) moveTo(m *Main) { h.url = m.URL() }

func TestRotatingTheSealKeyKeepsEveryLinkUnderWay(t *testing.T) {
	path, mono := filepath.Join(t.TempDir(), "data", "ussdlink.db"), newExternalSandbox(t).URL
	before, stop := gatewayOn(t, path, mono, sealKey(0xA1))
	h := newHandset(t, before, "+2348092000001")
	h.dial()
	h.send("1")
	h.send("user_good") // sealed under the old key while the password is asked
	stop()

	after, _ := gatewayOn(t, path, mono, sealKey(0xB2), sealKey(0xA1))
	h.moveTo(after)
	if got := h.send("pass_good"); !strings.Contains(got, "is linked") {
		t.Fatalf("after rotating the key = %q, want the link made with what was typed before", got)
	}
}

func TestALostSealKeyStartsAgainPolitely(t *testing.T) {
	path, mono := filepath.Join(t.TempDir(), "data", "ussdlink.db"), newExternalSandbox(t).URL
	before, stop := gatewayOn(t, path, mono, sealKey(0xA1))
	typing := newHandset(t, before, "+2348092000002")
	typing.dial()
	typing.send("1")
	typing.send("user_good") // a secret sealed, a transcript hashed, both under the lost key
	choosing := newHandset(t, before, "+2348092000003")
	choosing.dial()
	choosing.send("1")
	choosing.send("user_multi")
	choosing.send("pass_good") // the account choice needs no secret
	if !strings.Contains(choosing.screen, "Choose the account") {
		t.Fatalf("screen = %q", choosing.screen)
	}
	stop()

	after, _ := gatewayOn(t, path, mono, sealKey(0xC3)) // the old key is gone
	typing.moveTo(after)
	got := typing.send("pass_good") // fails the test on a 400
	if typing.ended || !strings.Contains(got, "start again") || !strings.Contains(got, "GTBank") || strings.Contains(got, "went wrong") {
		t.Fatalf("after losing the key = %q (ended %v), want a polite screen starting again", got, typing.ended)
	}
	if got := typing.send("1"); !strings.Contains(got, "GTBank") {
		t.Fatalf("the session does not go on after starting again: %q", got)
	}

	// The dropped account choice is offered again on a new dial, and works.
	again := newHandset(t, after, "+2348092000003")
	if got := again.dial(); !strings.Contains(got, "Continue") {
		t.Fatalf("redial = %q, want the offer to continue", got)
	}
	if got := again.send("1"); !strings.Contains(got, "Choose the account") {
		t.Fatalf("continue = %q", got)
	}
	if got := again.send("1"); !strings.Contains(got, "is linked") {
		t.Fatalf("choosing the account = %q", got)
	}
}
