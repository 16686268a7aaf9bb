// Package webphone is a browser phone for trying the gateway by hand: a
// feature-phone page, served on the admin listener, that dials the gateway
// in any aggregator's wire format through the gateway's real callback
// routes, shows each screen as that aggregator's handset would, and shows
// the texts the sandbox SMS provider "sent" to the phone.
//
// The page builds each callback itself, exactly as the aggregator would;
// this package only serves it and forwards what it builds, unchanged, to
// the callback listener (adding the callback token, which the page never
// sees). Nothing here knows the conversation: a hop through the browser
// phone is a hop like any other.
package webphone

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	stdlog "log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/guard"
	"github.com/ussdlink/ussdlink/ussd"
)

// Options configures the browser phone.
type Options struct {
	// Callbacks is the base URL of the gateway's callback listener, e.g.
	// http://127.0.0.1:8080: every hop the page makes goes there.
	Callbacks string
	// CallbackToken is [ussd] callback-token: when set, it is sent with
	// every hop as the X-Callback-Token header, as an aggregator would.
	CallbackToken string
	// ServiceCode is the gateway's short code ("*384*123#"): the page's
	// default dial, and the stem it finds an extension after.
	ServiceCode string
	// ScreenLimit is the screen budget the page counts each screen
	// against (160 when 0).
	ScreenLimit int
	// Dialects are the aggregator routes the page may dial through
	// (africastalking, hubtel, arkesel, nalo, hollatags); any other is 404.
	Dialects []string
	// Inbox is whether the sandbox SMS inbox is served
	// (GET /sms/sandbox/inbox): without it the page shows no texts.
	Inbox bool
	// Log receives what went wrong forwarding a hop, never what was typed.
	Log zerolog.Logger
}

// Defaults the page starts with.
const (
	defaultPhone   = "+2348030000001"
	defaultLimit   = 160
	defaultDialect = "africastalking"
)

// MaxBody bounds a hop's request body (and a HollaTags hop's query): an
// aggregator's callback is a few hundred bytes.
const MaxBody = 16 << 10

// upstreamTimeout bounds the wait for the callback listener's answer. It is
// longer than any aggregator's deadline: the page, not the proxy, plays the
// aggregator and gives up on its own deadline.
const upstreamTimeout = 30 * time.Second

// contentSecurityPolicy lets the page load nothing but its own assets and
// talk to nothing but its own routes.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// label is the name the page shows for a dialect it knows how to speak
// (its app.js encodes each one's wire); ok is false for any other, which
// is left out.
func label(dialect string) (name string, ok bool) {
	switch dialect {
	case "africastalking":
		return "Africa's Talking", true
	case "hubtel":
		return "Hubtel", true
	case "arkesel":
		return "Arkesel", true
	case "nalo":
		return "Nalo Solutions", true
	case "hollatags":
		return "HollaTags", true
	}
	return "", false
}

//go:embed static
var static embed.FS

// page is what the page's template is rendered with.
type page struct {
	Dialects    []dialect
	Phone       string
	ServiceCode string
	ScreenLimit int
	Inbox       bool
}

// dialect is one option of the page's aggregator choice.
type dialect struct {
	Name, Label string
	Selected    bool
}

// Handler serves the browser phone, to be mounted under a prefix with
// http.StripPrefix: GET / (and /index.html) the page, its embedded assets,
// /ussd/{dialect} forwarded to the callback listener's route of the same
// name (in that aggregator's method) for the configured dialects, and GET
// /inbox forwarded to the sandbox SMS inbox when there is one. Everything
// else is 404.
func Handler(o Options) http.Handler {
	log := o.Log
	mux := http.NewServeMux()

	known := make([]string, 0, len(o.Dialects))
	for _, name := range o.Dialects {
		if _, ok := label(name); !ok {
			log.Warn().Str("dialect", name).Msg("the browser phone does not speak this dialect: left out")
			continue
		}
		if !slices.Contains(known, name) {
			known = append(known, name)
		}
	}

	index := pageHandler(o, known, log)
	mux.Handle("GET /{$}", index)
	mux.Handle("GET /index.html", index)
	// Neither can fail: the directory is embedded, under this name.
	assets, _ := fs.Sub(static, "static")
	files, _ := fs.ReadDir(assets, ".")
	for _, f := range files {
		if f.IsDir() || f.Name() == "index.html" {
			continue
		}
		mux.Handle("GET /"+f.Name(), assetHandler(assets, f.Name()))
	}

	base, err := callbackBase(o.Callbacks)
	if err != nil {
		log.Error().Err(err).Msg("the browser phone cannot reach the gateway: its hops will fail")
	}
	methods := map[string]string{}
	for _, d := range ussd.Dialects() {
		methods[d.Name()] = d.Method()
	}
	for _, name := range known {
		method := methods[name]
		if method == "" {
			method = http.MethodPost
		}
		f := forwarder{base: base, path: "/ussd/" + name, token: o.CallbackToken, log: log.With().Str("dialect", name).Logger()}
		if method == http.MethodGet {
			f.query = hopQuery
		}
		mux.Handle("/ussd/"+name, fromThePage(onlyMethod(method, bounded(f.proxy()))))
	}
	if o.Inbox {
		f := forwarder{base: base, path: "/sms/sandbox/inbox", query: inboxQuery, log: log.With().Str("route", "inbox").Logger()}
		mux.Handle("GET /inbox", fromThePage(bounded(f.proxy())))
	}
	return mux
}

// PageHeader is the header the page's own requests carry. A request
// another web site makes the operator's browser send cannot carry it
// without a CORS preflight, which is never granted: without it, nothing
// is forwarded (with the callback token) to the gateway.
const PageHeader = "X-Ussdlink-Phone"

// fromThePage forwards only the page's own requests: with PageHeader, and
// not marked cross-site by the browser.
func fromThePage(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		site := r.Header.Get("Sec-Fetch-Site")
		if r.Header.Get(PageHeader) != "1" || (site != "" && site != "same-origin") {
			http.Error(w, "only the browser phone's page may dial", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// pageHandler serves the page, rendered once with the options.
func pageHandler(o Options, dialects []string, log zerolog.Logger) http.Handler {
	p := page{Phone: defaultPhone, ServiceCode: o.ServiceCode, ScreenLimit: o.ScreenLimit, Inbox: o.Inbox}
	if p.ScreenLimit <= 0 {
		p.ScreenLimit = defaultLimit
	}
	chosen := defaultDialect
	if !slices.Contains(dialects, chosen) && len(dialects) > 0 {
		chosen = dialects[0]
	}
	for _, name := range dialects {
		l, _ := label(name)
		p.Dialects = append(p.Dialects, dialect{Name: name, Label: l, Selected: name == chosen})
	}
	body, err := render(p)
	if err != nil {
		log.Error().Err(err).Msg("render the browser phone's page")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			http.Error(w, "the browser phone's page could not be built", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		secure(h)
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(body))
	})
}

// render builds the page from its embedded template.
func render(p page) ([]byte, error) {
	t, err := template.ParseFS(static, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("webphone: parse the page: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return nil, fmt.Errorf("webphone: render the page: %w", err)
	}
	return b.Bytes(), nil
}

// assetHandler serves one embedded file; its content type comes from its
// extension.
func assetHandler(assets fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		secure(h)
		http.ServeFileFS(w, r, assets, name)
	})
}

// secure sets the headers that keep the page to its own resources.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// callbackBase reads the callback listener's base URL.
func callbackBase(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return nil, fmt.Errorf("webphone: callbacks URL: %w", err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("webphone: callbacks URL %q is not an http(s) URL with a host", raw)
	}
	return u, nil
}

// onlyMethod answers 405 to any method but the aggregator's.
func onlyMethod(method string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			http.Error(w, "this aggregator calls with "+method, http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bounded refuses a hop whose body or query is over MaxBody before
// anything reaches the gateway, and hands on the body read whole.
func bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.RawQuery) > MaxBody {
			http.Error(w, "the hop's query is too long", http.StatusRequestURITooLong)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			http.Error(w, "the hop's body is too large", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "the hop's body could not be read", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// forwarder sends requests on to one route of the callback listener.
type forwarder struct {
	base  *url.URL // the callback listener; nil when misconfigured
	path  string   // the route there
	token string   // the callback token; "" sends none
	// query builds the forwarded query from the incoming one; nil
	// forwards none.
	query func(url.Values) string
	log   zerolog.Logger
}

// hopQuery forwards a query-string hop (HollaTags) as the page built it,
// less any token parameter: the token is the proxy's to add, as a header.
func hopQuery(in url.Values) string {
	in.Del("token")
	return in.Encode()
}

// inboxQuery forwards only the phone an inbox is asked for.
func inboxQuery(in url.Values) string {
	return url.Values{"phone": {in.Get("phone")}}.Encode()
}

// proxy is the reverse proxy to the forwarder's route. Of the browser's
// headers only Content-Type and Accept go on: its cookies and credentials
// for the admin listener are not the callback listener's business, and no
// X-Forwarded-For is added or passed on, so an allow-list sees the proxy.
func (f forwarder) proxy() http.Handler {
	if f.base == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "the browser phone is not configured with the gateway's address", http.StatusBadGateway)
		})
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = upstreamTimeout
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := *f.base
			out.Path = path.Join("/", f.base.Path, f.path)
			out.RawPath = ""
			out.RawQuery = ""
			if f.query != nil {
				out.RawQuery = f.query(pr.In.URL.Query())
			}
			pr.Out.URL = &out
			pr.Out.Host = ""
			h := http.Header{}
			for _, k := range []string{"Content-Type", "Accept"} {
				if v := pr.In.Header.Get(k); v != "" {
					h.Set(k, v)
				}
			}
			h.Set("User-Agent", "ussdlink-webphone")
			if f.token != "" {
				h.Set(guard.HeaderCallbackToken, f.token)
			}
			pr.Out.Header = h
		},
		Transport: transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("Cache-Control", "no-store")
			f.log.Debug().Int("status", resp.StatusCode).Msg("browser phone hop forwarded")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			// A *url.Error names the URL, and a query-string hop's URL
			// holds what the user typed: only the cause is logged.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			f.log.Warn().Err(err).Str("route", f.path).Msg("the callback listener did not answer the browser phone")
			http.Error(w, "the gateway's callback listener did not answer", http.StatusBadGateway)
		},
		ErrorLog: stdlog.New(f.log, "", 0),
	}
}
