// Package admin serves, on a listener of its own, what must never face
// the aggregators: Prometheus metrics (/metrics), readiness (/readyz), the
// browser phone (/phone/), the log level (/log/level) and, when asked for,
// Go's runtime profiles (/debug/pprof/). An operator keeps it on loopback
// or a private network.
package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check is one part /readyz looks at: Run returns nil when that part can
// serve (the store takes writes, Mono answers, the workers run).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// CheckTimeout bounds each readiness check.
const CheckTimeout = 3 * time.Second

// Options are what the admin listener serves. Nil parts are not served.
type Options struct {
	Gatherer prometheus.Gatherer // /metrics
	Checks   []Check             // /readyz
	Phone    http.Handler        // /phone/, mounted under /phone
	Level    *Level              // /log/level
	Pprof    bool                // /debug/pprof/
	Log      zerolog.Logger
}

// Handler serves o.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{ErrorLog: errorLog{o.Log}}))
	}
	mux.Handle("GET /readyz", readyz(o.Checks))
	if o.Phone != nil {
		mux.Handle("/phone/", http.StripPrefix("/phone", o.Phone))
		mux.Handle("GET /phone", http.RedirectHandler("/phone/", http.StatusMovedPermanently))
	}
	if o.Level != nil {
		mux.Handle("/log/level", o.Level)
	}
	if o.Pprof {
		mux.Handle("/debug/pprof/", Profiles())
	}
	// A page on another site the operator's browser opens may send
	// requests to a loopback address: none that changes anything (a PUT
	// of the log level, a hop of the browser phone) is taken from it.
	return http.NewCrossOriginProtection().Handler(mux)
}

// Profiles serves Go's runtime profiles under /debug/pprof/: on the admin
// listener with [admin] pprof, and on [http] debug-addr. They show the
// gateway's internals, never user data.
func Profiles() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// readiness is /readyz's answer: every check's result, and the failing
// ones named.
type readiness struct {
	Status  string            `json:"status"` // "ready" or "not ready"
	Failing []string          `json:"failing,omitempty"`
	Checks  map[string]string `json:"checks"` // name → "ok" or why not
}

// readyz runs every check at once, each bounded by CheckTimeout, and
// answers 200 when all pass, 503 naming those that failed.
func readyz(checks []Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), CheckTimeout)
		defer cancel()
		res := readiness{Status: "ready", Checks: make(map[string]string, len(checks))}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.Run(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.Failing = append(res.Failing, c.Name)
					res.Checks[c.Name] = err.Error()
					return
				}
				res.Checks[c.Name] = "ok"
			}()
		}
		wg.Wait()
		status := http.StatusOK
		if len(res.Failing) > 0 {
			sort.Strings(res.Failing)
			res.Status, status = "not ready", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(res)
	})
}

// errorLog passes promhttp's errors to the logger.
type errorLog struct{ log zerolog.Logger }

// Println implements promhttp.Logger.
func (l errorLog) Println(v ...any) {
	l.log.Error().Msg(strings.TrimSpace(fmt.Sprintln(v...)))
}

// Level is the log level the gateway writes at, changeable while it runs.
// The logger consults it before building a line (it is the logger's
// zerolog.Sampler), so a line below the level costs nothing, and filters
// what reaches the output (it is its zerolog.LevelWriter). GET /log/level
// answers it; PUT or POST /log/level with the level's name ("debug",
// "info", "warn", "error") as the body, or ?level=…, sets it.
type Level struct {
	level atomic.Int32
	out   io.Writer
}

// NewLevel writes to out at level.
func NewLevel(out io.Writer, level zerolog.Level) *Level {
	l := &Level{out: out}
	l.level.Store(int32(level))
	return l
}

// Get returns the current level.
func (l *Level) Get() zerolog.Level { return zerolog.Level(l.level.Load()) }

// Set changes the level.
func (l *Level) Set(level zerolog.Level) { l.level.Store(int32(level)) }

// Sample implements zerolog.Sampler: a line is built only at or above the
// level (or with no level).
func (l *Level) Sample(level zerolog.Level) bool {
	return level >= l.Get() || level == zerolog.NoLevel
}

// Write implements io.Writer, for lines of no level.
func (l *Level) Write(p []byte) (int, error) { return l.out.Write(p) }

// WriteLevel implements zerolog.LevelWriter: lines below the level are
// dropped.
func (l *Level) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	if level < l.Get() && level != zerolog.NoLevel {
		return len(p), nil
	}
	return l.out.Write(p)
}

// levels are the names /log/level takes (zerolog's numbers are not:
// a "100" would silence every line, errors included).
var levels = map[string]zerolog.Level{
	"trace": zerolog.TraceLevel, "debug": zerolog.DebugLevel, "info": zerolog.InfoLevel, "warn": zerolog.WarnLevel,
	"error": zerolog.ErrorLevel, "fatal": zerolog.FatalLevel, "panic": zerolog.PanicLevel,
}

// ServeHTTP answers and sets the level.
func (l *Level) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPut, http.MethodPost:
		name := r.URL.Query().Get("level")
		if name == "" {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 64))
			name = strings.TrimSpace(string(b))
		}
		level, ok := levels[strings.ToLower(name)]
		if !ok {
			http.Error(w, "level must be one of trace, debug, info, warn, error, fatal, panic", http.StatusBadRequest)
			return
		}
		l.Set(level)
	default:
		w.Header().Set("Allow", "GET, PUT, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, l.Get().String()+"\n")
}
