package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ussdlink/ussdlink/admin"
)

// debugMux serves Go's runtime profiles under /debug/pprof/. It is mounted
// only on [http] debug-addr, a listener of its own that an operator keeps
// on loopback.
func debugMux() http.Handler { return admin.Profiles() }

// startDebug listens on addr and serves debugMux until Close.
func (m *Main) startDebug(addr string) error {
	srv, l, err := m.serveSide("[http] debug-addr", addr, debugMux())
	if err != nil {
		return err
	}
	m.debug, m.debugListener = srv, l
	m.Log.Info().Str("addr", l.Addr().String()).Msg("serving profiles on the debug address")
	return nil
}

// serveSide listens on addr (named by its configuration key, for errors)
// and serves h there, off the callback listener, until the returned
// server is closed.
func (m *Main) serveSide(key, addr string, h http.Handler) (*http.Server, net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", key, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error().Err(err).Str("listener", key).Msg("listener stopped")
		}
	}()
	return srv, l, nil
}

// DebugURL is the debug listener's base URL, or "" when none is configured.
func (m *Main) DebugURL() string {
	if m.debugListener == nil {
		return ""
	}
	return "http://" + m.debugListener.Addr().String()
}
