// Command ussdlink is a USSD gateway in front of Mono's Partners (Connect)
// API: feature-phone users dial a short code and link a bank account through
// numbered screens.
//
//	ussdlink [serve] [-config FILE]   run the gateway
//	ussdlink dial [flags]             a terminal phone for a running gateway
//	ussdlink load [flags]             drive link flows through a running gateway and measure them
//	ussdlink seed [flags]             fill the configured store with finished links, to measure on a full store
//	ussdlink help                     print the usage (also -h, --help)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // [sms] timezone works on a machine without zoneinfo

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/admin"
	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/metrics"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/mono/sandbox"
	"github.com/ussdlink/ussdlink/partner"
	"github.com/ussdlink/ussdlink/sms"
	"github.com/ussdlink/ussdlink/store"
)

func main() {
	tuneCollector()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := exitCode(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}

// tuneCollector sets the collector's target unless GOGC says otherwise.
func tuneCollector() {
	if os.Getenv("GOGC") == "" {
		// The gateway's live heap is small (sessions live in the store,
		// not in memory) and every hop allocates: collecting at 4× the
		// live heap instead of 2× halves the collector's share of the CPU
		// for a few megabytes.
		debug.SetGCPercent(gcPercent)
	}
}

// spareP reports whether the gateway takes a P more than the runtime's
// default: on the bbolt store, unless GOMAXPROCS is set. Its one writer
// waits in two disk syncs per group commit, and every hop waits for it.
// When a sync returns while every P runs a handler, the writer queues
// behind them for one, and the group with it; a P more lets the kernel
// run the writer as soon as its sync is done: on two cores, median
// flows/s ×1.11, ×1.07 and ×1.09 in three A/B runs. PostgreSQL has no
// such writer (single runs: no change).
func spareP(store StoreConfig, getenv func(string) string) bool {
	return !store.postgres() && getenv("GOMAXPROCS") == ""
}

// takeSpareP sets the number of Ps to the runtime's default (which heeds
// the CPU quota now) and spareProcs more; set this way, the number no
// longer follows a quota changed while the gateway runs.
func takeSpareP() {
	runtime.SetDefaultGOMAXPROCS()
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + spareProcs)
}

// gcPercent is the collector's target unless GOGC says otherwise.
const gcPercent = 400

// spareProcs is how many Ps the gateway takes beyond the runtime's
// default (spareP).
const spareProcs = 1

// usage is the command line's help, printed by help, -h and --help, and
// after an unknown command.
const usage = `Usage: ussdlink [command] [flags]

Commands:
  serve   run the gateway (the default when no command is given)
  dial    a terminal phone for a running gateway
  load    drive link flows through a running gateway and measure them
  migrate apply the PostgreSQL schema's migrations ([store] url or DATABASE_URL) and exit
  seed    fill the configured store with made-up finished links (-sessions N), to measure on a full store
  funnel  print the drop-off funnel (-since 7d, -by network|dialect|institution, -format text|csv|json)
  graph   print the conversation's state machine (-format mermaid|dot), from the definition the engine runs
  help    print this help

Flags of serve and migrate:
  -config FILE   configuration file (TOML); default config.toml, which may be missing

Run "ussdlink dial -h", "ussdlink load -h" or "ussdlink seed -h" for their flags.
`

// UsageError is a command line naming a command that does not exist. The
// usage has already been printed when it is returned; the exit status is 2.
type UsageError struct{ Command string }

// Error implements error.
func (e *UsageError) Error() string { return fmt.Sprintf("unknown command %q", e.Command) }

// exitCode reports err on stderr and returns the process's exit status: 0
// for success or a request for help, 2 for a command line naming an unknown
// command, 1 for any other failure.
func exitCode(err error, stderr io.Writer) int {
	var ue *UsageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	fmt.Fprintln(stderr, "ussdlink:", err)
	return 1
}

// run dispatches the command line. With no command, or with flags first,
// it serves; help, -h and --help print the usage to stdout; any other first
// argument that is not a flag is an unknown command: the usage goes to
// stderr and nothing starts.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		switch first := args[0]; {
		case first == "help" || first == "-h" || first == "-help" || first == "--help":
			_, err := io.WriteString(stdout, usage)
			return err
		case first == "serve" || first == "dial" || first == "load" || first == "migrate" || first == "seed" || first == "graph" || first == "funnel":
			cmd, args = first, args[1:]
		case !strings.HasPrefix(first, "-"):
			fmt.Fprintf(stderr, "ussdlink: unknown command %q\n\n%s", first, usage)
			return &UsageError{Command: first}
		}
	}
	switch cmd {
	case "dial":
		return runDial(ctx, args, stdin, stdout, stderr)
	case "load":
		return runLoad(ctx, args, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args, stdout, stderr)
	case "seed":
		return runSeed(ctx, args, stdout, stderr)
	case "graph":
		return runGraph(args, stdout, stderr)
	case "funnel":
		return runFunnel(ctx, args, stdout, stderr)
	}
	m := NewMain(stderr)
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if spareP(m.Config.Store, os.Getenv) {
		takeSpareP()
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	<-ctx.Done()
	m.Log.Info().Msg("shutting down")
	return m.Close()
}

// Main is the gateway: its configuration and the running parts it wires.
type Main struct {
	ConfigPath string
	Config     Config
	Log        zerolog.Logger
	Now        func() time.Time

	logOut io.Writer
	db     backend
	// webhookQueue and textQueue are the store's two durable queues.
	webhookQueue, textQueue queue
	shared                  *shared // coordination between instances, on a shared store
	engine                  *menus.Engine
	app                     *fiber.App
	listener                net.Listener
	served                  chan error
	workers                 []*worker // background loops, stopped in the order started

	deliverer   *partner.Deliverer // sends the outbox to the partner, when configured
	texts       *sms.Worker        // sends the text queue
	smsSandbox  *sms.Sandbox       // the sandbox provider's mailbox, when it is the provider
	sandboxMono *sandbox.Sandbox   // the embedded Mono, when no base URL is configured
	sandbox     *http.Server

	debug         *http.Server // the profiles, on [http] debug-addr
	debugListener net.Listener

	level         *admin.Level     // the log level, changeable on the admin listener
	metrics       *metrics.Metrics // what /metrics serves
	admin         *http.Server     // the admin listener, on [admin] addr
	adminListener net.Listener
	closed        bool            // Close ran
	words         *lang.Catalogue // every word users read, with the operator's texts
}

// NewMain returns a Main with the default configuration, logging to w.
func NewMain(w io.Writer) *Main {
	return &Main{
		ConfigPath: "config.toml",
		Config:     DefaultConfig(),
		Now:        time.Now,
		logOut:     w,
		Log:        zerolog.New(w).With().Timestamp().Logger(),
	}
}

// ParseFlags reads -config and loads the file it names. The default file
// may be missing; one named explicitly may not.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("ussdlink", flag.ContinueOnError)
	fs.StringVar(&m.ConfigPath, "config", m.ConfigPath, "configuration file (TOML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return m.loadConfig(fs)
}

// loadConfig reads m.ConfigPath into m.Config, once fs is parsed: a file
// named with -config must exist; the default one may be missing.
func (m *Main) loadConfig(fs *flag.FlagSet) error {
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := LoadConfig(m.ConfigPath, explicit)
	if err != nil {
		return err
	}
	m.Config = cfg
	return nil
}

// Run opens the store, reaches Mono (or starts the sandbox), starts the
// background workers and starts serving. It returns once the gateway is
// listening; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	m.Log, m.level = newLogger(m.logOut, cfg.Log)
	m.metrics = metrics.New(cfg.USSD.networks()...)
	var err error
	if m.words, err = cfg.USSD.words(); err != nil {
		return err
	}
	sealer, err := m.openStore(ctx, cfg)
	if err != nil {
		return err
	}
	if m.listener, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	client, monoSecret, err := m.connectMono(ctx, cfg.Mono)
	if err != nil {
		return err
	}
	if err := m.startDeliverer(cfg.Partner); err != nil {
		return err
	}
	m.startTexts(cfg.SMS)
	engine := shareEngine(engineConfig(cfg, m.words, sealer, m.notifyPartner(), m.texts.Notify), m.shared)
	engine.Observer = m.metrics
	m.engine = menus.NewEngine(engine, m.db, client, m.Now, m.Log)
	m.engine.Prefetch()
	m.start("sweeper", m.sweepEvery(cfg.USSD.SweepInterval.Duration))
	if err := m.mount(cfg, monoSecret); err != nil {
		return err
	}
	if cfg.HTTP.DebugAddr != "" {
		if err := m.startDebug(cfg.HTTP.DebugAddr); err != nil {
			return err
		}
	}
	m.serve(cfg.USSD.ServiceCode)
	if cfg.Admin.Addr != "" {
		if err := m.startAdmin(cfg, client); err != nil {
			return err
		}
	}
	return nil
}

// monoClient returns a client for the configured Mono, or for the embedded
// sandbox, started on a loopback port, when no base URL is configured.
func (m *Main) monoClient(cfg MonoConfig, webhookSecret string) (*mono.Client, error) {
	base, key, app := cfg.BaseURL, cfg.SecretKey, cfg.AppID
	if base == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("sandbox listen: %w", err)
		}
		if key == "" {
			key = "test_sk_sandbox"
		}
		if app == "" {
			app = "sandbox_app"
		}
		m.sandboxMono = sandbox.New(sandbox.Options{SecretKey: key, Webhook: sandbox.WebhookOptions{
			URL: m.URL() + "/webhooks/mono", Secret: webhookSecret}})
		m.sandbox = &http.Server{Handler: m.sandboxMono, ReadHeaderTimeout: 5 * time.Second}
		go m.sandbox.Serve(l)
		base = "http://" + l.Addr().String()
		m.Log.Warn().Str("url", base).Msg("no [mono] base-url: serving Mono from the embedded sandbox")
	} else if key == "" {
		return nil, errors.New("config: [mono] secret-key (or MONO_SECRET_KEY) is required with a base-url")
	}
	return mono.NewClient(key,
		mono.WithBaseURL(base),
		mono.WithAppID(app),
		mono.WithAPI(cfg.api()),
		mono.WithTimeout(cfg.Timeout.Duration),
		mono.WithObserver(m.metrics.MonoRequest),
	), nil
}

// URL is the gateway's base URL, once Run has returned.
func (m *Main) URL() string { return "http://" + m.listener.Addr().String() }

// leads reports whether this instance does the housekeeping: always on
// the embedded store; on a shared one, the instance holding its lock.
func (m *Main) leads(ctx context.Context) bool {
	if m.shared == nil {
		return true
	}
	ok, err := m.shared.leader.Lead(ctx)
	if err != nil {
		m.Log.Warn().Err(err).Msg("housekeeping lock")
	}
	return ok
}

// sweepEvery is the sweeper: every interval it deletes what has outlived
// its retention.
func (m *Main) sweepEvery(every time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			if m.leads(ctx) {
				m.sweep(context.Background())
			}
		}
	}
}

// Retentions of what no configuration key sets.
const (
	seenRetention       = 72 * time.Hour      // Mono event and inbound text ids: Mono retries for about 48h
	deadLetterRetention = 30 * 24 * time.Hour // webhooks and texts given up on, kept for an operator
	sweepBatch          = 500                 // deleted per transaction, so no sweep holds the file long
)

// sweep deletes, through the store's time indexes, everything past its
// retention: expired sessions, lapsed sealed answers, old login failures,
// seen event and message ids, idempotency answers past idempotency-ttl,
// abandoned text conversations, expired hand-over invitations, partner
// invitations past invite-retention, and old dead letters. Each runs in
// batches until nothing is left.
func (m *Main) sweep(ctx context.Context) {
	now, cfg := m.Now(), m.Config
	for _, job := range []struct {
		what string
		run  func() (int, error)
	}{
		{"login failures", func() (int, error) {
			return m.db.SweepFailures(ctx, now.Add(-cfg.Security.Lockout.Duration), sweepBatch)
		}},
		{"mono event ids", func() (int, error) { return m.db.SweepMonoEvents(ctx, now.Add(-seenRetention), sweepBatch) }},
		{"mono account updates", func() (int, error) {
			return m.db.SweepMonoUpdates(ctx, now.Add(-store.MonoUpdateTTL), sweepBatch)
		}},
		{"inbound text ids", func() (int, error) { return m.db.SweepInbound(ctx, now.Add(-seenRetention), sweepBatch) }},
		{"sessions", func() (int, error) { return m.db.Sweep(ctx, now, sweepBatch) }},
		{"idempotency answers", func() (int, error) {
			return m.db.SweepAnswers(ctx, now.Add(-cfg.Partner.IdempotencyTTL.Duration), sweepBatch)
		}},
		{"text conversations", func() (int, error) { return m.db.SweepConversations(ctx, now, sweepBatch) }},
		{"invitations", func() (int, error) {
			return m.db.SweepInvites(ctx, now, now.Add(-cfg.Partner.InviteRetention.Duration), sweepBatch)
		}},
		{"webhook dead letters", func() (int, error) {
			return m.webhookQueue.SweepDeadLetters(ctx, now.Add(-deadLetterRetention), sweepBatch)
		}},
		{"text dead letters", func() (int, error) {
			return m.textQueue.SweepDeadLetters(ctx, now.Add(-deadLetterRetention), sweepBatch)
		}},
		{"work leases", func() (int, error) {
			if m.shared == nil {
				return 0, nil
			}
			return m.shared.leases.SweepLeases(ctx, now.Add(-time.Hour), sweepBatch)
		}},
	} {
		total := 0
		for {
			n, err := job.run()
			total += n
			if err != nil {
				m.Log.Error().Err(err).Msg("sweep " + job.what)
				break
			}
			if n < sweepBatch {
				break
			}
		}
		if total > 0 {
			m.Log.Debug().Int("deleted", total).Msg("swept " + job.what)
		}
	}
}

// Close stops serving and waits for hops in flight, then for background
// Mono work to settle (bounded by the Mono timeout), and closes the store
// cleanly.
func (m *Main) Close() error {
	if m.closed {
		return nil // closed already: a second Close has nothing to stop
	}
	m.closed = true
	var errs []error
	if m.admin != nil {
		// First, and waiting for the requests under way (a /readyz takes
		// at most admin.CheckTimeout): they read what the rest of Close
		// takes down.
		ctx, cancel := context.WithTimeout(context.Background(), admin.CheckTimeout+2*time.Second)
		if err := m.admin.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin listener: %w", err))
		}
		cancel()
	}
	if m.app != nil {
		errs = append(errs, m.app.ShutdownWithTimeout(10*time.Second))
		// Shutdown cannot stop a server that had not started serving yet:
		// closing its listener makes it return either way.
		m.listener.Close()
		if m.served != nil {
			if err := <-m.served; err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	if m.app == nil && m.listener != nil {
		m.listener.Close() // Run failed before serving
	}
	if m.engine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.Mono.Timeout.Duration+5*time.Second)
		if err := m.engine.Drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain background work: %w", err))
		}
		cancel()
	}
	for _, w := range m.workers {
		w.stop()
	}
	m.workers = nil
	if m.shared != nil {
		// Another instance takes the housekeeping at once, and the
		// store's pool can close: the lead holds a connection.
		errs = append(errs, m.shared.leader.Resign())
	}
	if m.debug != nil {
		errs = append(errs, m.debug.Close())
	}

	if m.sandboxMono != nil {
		m.sandboxMono.Close()
	}
	if m.sandbox != nil {
		errs = append(errs, m.sandbox.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}

// newApp builds the Fiber app: panics are recovered, errors answered without
// internals, and each request logged without its body or query (they carry
// what users type, and callback tokens).
func newApp(log zerolog.Logger) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		BodyLimit:             16 * 1024,
		// A callback is a few hundred bytes sent at once. The read timeout
		// also bounds a connection a client opened and never used (a
		// spare dial): shutdown waits for those, so it stays well below
		// Close's 10 s.
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 15 * time.Second,
		IdleTimeout:  60 * time.Second,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			code := fiber.StatusInternalServerError
			var fe *fiber.Error
			if errors.As(err, &fe) {
				code = fe.Code
			} else {
				log.Error().Err(err).Str("path", c.Path()).Msg("request failed")
			}
			return c.Status(code).SendString(http.StatusText(code))
		},
	})
	app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
		log.Error().Str("path", c.Path()).Interface("panic", fmt.Sprint(e)).Msg("panic recovered")
	}}))
	app.Use(func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		status := c.Response().StatusCode()
		var fe *fiber.Error
		if errors.As(err, &fe) {
			status = fe.Code
		}
		log.Debug().Str("method", c.Method()).Str("path", c.Path()).Int("status", status).
			Dur("latency", time.Since(start)).Msg("request")
		return err
	})
	return app
}

// newLogger returns a zerolog logger at the configured level: console
// output on a terminal, JSON otherwise, unless the format says which.
func newLogger(w io.Writer, cfg LogConfig) (zerolog.Logger, *admin.Level) {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil || cfg.Level == "" {
		level = zerolog.InfoLevel
	}
	console := cfg.Format == "console"
	if cfg.Format == "" || cfg.Format == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	// The switch decides, before a line is built, whether its level is
	// written, so the admin listener can change it while the gateway runs.
	sw := admin.NewLevel(w, level)
	return zerolog.New(sw).Sample(sw).With().Timestamp().Logger(), sw
}
