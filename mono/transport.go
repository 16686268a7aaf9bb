package mono

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ussdlink/ussdlink/reqid"
)

// exchange is one attempt of a call as it goes on the wire.
type exchange struct {
	method  string
	url     string
	secret  string
	session string // x-session-id, when set
	reqID   string // X-Request-Id, when set
	body    []byte // nil sends none
}

// headers calls set with each header of the exchange: the same on every
// wire.
func (x *exchange) headers(set func(key, value string)) {
	set("mono-sec-key", x.secret)
	set("Accept", "application/json")
	if x.body != nil {
		set("Content-Type", "application/json")
	}
	if x.session != "" {
		set("x-session-id", x.session)
	}
	if x.reqID != "" {
		set(reqid.Header, x.reqID)
	}
}

// answer is what Mono said to one exchange.
type answer struct {
	status     int
	retryAfter string
	body       []byte
}

// roundTripper carries exchanges to Mono. Besides the error it tells
// whether the request may have reached Mono (sent): false only when it
// provably did not, so that a call Mono must not receive twice is resent
// only then.
type roundTripper interface {
	roundTrip(ctx context.Context, x *exchange) (a answer, sent bool, err error)
}

// errTooLarge says Mono's answer was longer than maxResponse.
var errTooLarge = errors.New("response larger than 1 MiB")

// netHTTP is the round tripper over a net/http Client: the one given with
// WithHTTPClient, or the standard transport where a proxy must be used.
type netHTTP struct{ client *http.Client }

func (t netHTTP) roundTrip(ctx context.Context, x *exchange) (answer, bool, error) {
	var wrote atomic.Bool // the request's headers left for Mono
	trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}
	var body io.Reader
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), x.method, x.url, body)
	if err != nil {
		return answer{}, false, err
	}
	x.headers(req.Header.Set)
	resp, err := t.client.Do(req)
	if err != nil {
		return answer{}, wrote.Load(), err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return answer{}, true, err
	}
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: data}
	if len(data) > maxResponse {
		return a, true, errTooLarge
	}
	return a, true, nil
}

// fastHTTP is the default round tripper: fasthttp's client, which parses
// into reused buffers and keeps no reader and writer goroutines per
// connection, for a fraction of net/http's work per call. Its connections
// are watched (watchedConn): one found closed by Mono while it sat idle is
// dropped before a request is written on it.
type fastHTTP struct{ client *fasthttp.Client }

// newFastHTTP returns the default round tripper for Mono at base: at most
// maxConns connections, none of its requests retried behind the Client's
// back (the Client decides what may be resent), none left waiting on a
// silent peer for longer than stallLimit(timeout).
func newFastHTTP(base string, timeout time.Duration, roots *x509.CertPool) fastHTTP {
	var secure bool
	var host string // every connection is to base's host: its name is checked once set
	if u, err := url.Parse(base); err == nil {
		secure, host = strings.EqualFold(u.Scheme, "https"), u.Hostname()
	}
	conf := tlsConfig(roots, host)
	return fastHTTP{client: &fasthttp.Client{
		Name:                      "ussdlink",
		MaxConnsPerHost:           maxConns,
		MaxIdleConnDuration:       maxIdle,
		MaxIdemponentCallAttempts: 1,
		MaxResponseBodySize:       maxResponse,
		ReadTimeout:               stallLimit(timeout),
		WriteTimeout:              stallLimit(timeout),
		Dial: func(addr string) (net.Conn, error) {
			return dialWatched(addr, secure, conf)
		},
		// Paths are sent as built: an escaped "/" in an account id
		// stays escaped.
		DisablePathNormalizing: true,
		ConfigureClient: func(hc *fasthttp.HostClient) error {
			hc.SecureErrorLogMessage = true // errors never quote Mono's bytes
			return nil
		},
	}}
}

// maxConns bounds the connections to Mono: far more than calls in flight
// at once on a busy gateway (a login waits on the bank for a second or
// two); a call that finds none free is refused before anything is sent
// (fasthttp.ErrNoFreeConns, retried like a refused connection).
const maxConns = 4096

// maxIdle is how long an idle connection to Mono is kept: shorter than
// the idle timeouts of common servers and proxies (Node's 5 s, nginx's
// 75 s), so the gateway usually closes one before Mono does.
const maxIdle = 4 * time.Second

// tlsConfig is both wires' TLS to Mono: roots nil trusts the system's; an
// empty serverName is the dialled host's (net/http's wire sets it).
func tlsConfig(roots *x509.CertPool, serverName string) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		RootCAs:            roots,
		ClientSessionCache: tls.NewLRUClientSessionCache(0), // resumed handshakes after an idle close
		MinVersion:         tls.VersionTLS12,
	}
}

// stallLimit is how long a connection may wait on Mono for one read or
// write: never less than a call's own limit (timeout, which the context's
// deadline enforces), and at least a minute, so that a call whose caller
// gave up, or that has no limit, cannot hold its connection forever.
func stallLimit(timeout time.Duration) time.Duration {
	return max(timeout+dialTimeout, time.Minute)
}

func (t fastHTTP) roundTrip(ctx context.Context, x *exchange) (answer, bool, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(x.url)
	req.Header.SetMethod(x.method)
	req.Header.SetNoDefaultContentType(true)
	x.headers(req.Header.Set)
	if x.body != nil {
		req.SetBodyRaw(x.body)
	}
	deadline, _ := ctx.Deadline()
	done := make(chan error, 1)
	go func() { // on a goroutine of its own, so that cancelling ctx is heard
		var err error
		// A kept connection found closed is dropped and the next one
		// (or a new one) taken: the request was not written.
		for range maxConns {
			if deadline.IsZero() {
				err = t.client.Do(req, resp)
			} else {
				err = t.client.DoDeadline(req, resp, deadline)
			}
			if !errors.Is(err, errStale) {
				break
			}
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// The request may be on its way; its buffers are left to the
		// goroutine still using them, and to the collector.
		return answer{}, true, ctx.Err()
	}
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err != nil {
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			return answer{status: resp.StatusCode()}, true, errTooLarge
		case errors.Is(err, fasthttp.ErrTimeout):
			err = context.DeadlineExceeded
		}
		return answer{}, sentBefore(err), err
	}
	a := answer{status: resp.StatusCode(), body: bytes.Clone(resp.Body())}
	if v := resp.Header.Peek("Retry-After"); v != nil {
		a.retryAfter = string(v)
	}
	return a, true, nil
}

// sentBefore reports whether a request that failed with err may have
// reached Mono: not when its connection could not be opened, when no
// connection was free, or when the one taken was found closed before the
// request was written.
func sentBefore(err error) bool {
	var dial *dialError
	switch {
	case errors.As(err, &dial), errors.Is(err, errStale), errors.Is(err, fasthttp.ErrNoFreeConns):
		return false
	}
	return true
}

// dialError is a connection to Mono that could not be opened: nothing
// was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errStale says a kept connection was found closed by Mono before a
// request was written on it.
var errStale = errors.New("connection closed by the server while idle")

// dialTimeout bounds opening one connection to Mono.
const dialTimeout = 5 * time.Second

// dialWatched opens a connection to addr, over IPv4 or IPv6, watched
// (watchedConn), with its TLS handshake done (secure) within dialTimeout:
// done here, not by fasthttp, so that a peer that never answers the
// handshake cannot hold a connection slot, and so that a failed handshake
// is known to have sent nothing.
func dialWatched(addr string, secure bool, conf *tls.Config) (net.Conn, error) {
	conn, err := fasthttp.DialDualStackTimeout(addr, dialTimeout)
	if err != nil {
		return nil, &dialError{err: err}
	}
	watched := watch(conn)
	if !secure {
		return watched, nil
	}
	tc := tls.Client(watched, conf)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, &dialError{err: err}
	}
	return tc, nil
}

// watchedConn is a kept connection to Mono that checks, before the first
// write of each new request, that Mono has not closed it while it sat
// idle. net/http learns this from a reader it keeps on every idle
// connection; here the check is one getsockopt (where the platform
// allows, see inspect). Without it a login written into a connection
// Mono has just closed could not be told from one Mono took and then
// failed to answer.
type watchedConn struct {
	net.Conn
	read bool // a read happened since the last write: the next write starts a request

	raw    syscall.RawConn  // the socket, nil when it cannot be reached
	probe  func(fd uintptr) // inspect, bound once: a check allocates nothing
	closed bool             // what the last probe found
}

// watch wraps conn, reaching its socket once for every later check.
func watch(conn net.Conn) *watchedConn {
	c := &watchedConn{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok && canInspect {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	c.probe = c.inspect
	return c
}

// peerClosed reports whether Mono has closed the connection (see inspect;
// where the platform cannot tell, never).
func (c *watchedConn) peerClosed() bool {
	if c.raw == nil {
		return false
	}
	if c.raw.Control(c.probe) != nil {
		return false
	}
	return c.closed
}

func (c *watchedConn) Read(p []byte) (int, error) {
	c.read = true
	return c.Conn.Read(p)
}

func (c *watchedConn) Write(p []byte) (int, error) {
	if c.read {
		c.read = false
		if c.peerClosed() {
			return 0, errStale
		}
	}
	return c.Conn.Write(p)
}

// proxied reports whether the environment sends requests for base through
// a proxy (HTTPS_PROXY and the like), which the default round tripper
// does not speak: those go through net/http, which does.
func proxied(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	p, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	return err == nil && p != nil
}
