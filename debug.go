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
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on [http] debug-addr: %w", err)
	}
	m.debug = &http.Server{Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
	m.debugListener = l
	go func() {
		if err := m.debug.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error().Err(err).Msg("debug listener")
		}
	}()
	m.Log.Info().Str("addr", l.Addr().String()).Msg("serving profiles on the debug address")
	return nil
}

// DebugURL is the debug listener's base URL, or "" when none is configured.
func (m *Main) DebugURL() string {
	if m.debugListener == nil {
		return ""
	}
	return "http://" + m.debugListener.Addr().String()
}
