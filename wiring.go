package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gofiber/fiber/v2"

	"github.com/ussdlink/ussdlink/guard"
	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/outbox"
	"github.com/ussdlink/ussdlink/partner"
	"github.com/ussdlink/ussdlink/reqid"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/sms"
	"github.com/ussdlink/ussdlink/store"
	"github.com/ussdlink/ussdlink/ussd"
)

// The store is what every consumer declares it needs: checked here, where
// the two meet, so that neither imports the other.
var (
	_ menus.Store           = (*store.DB)(nil)
	_ partner.Store         = (*store.DB)(nil)
	_ partner.MonoEvents    = (*store.DB)(nil)
	_ partner.Outbox        = (*store.Queue)(nil)
	_ sms.ConversationStore = (*store.DB)(nil)
	_ sms.InboundStore      = (*store.DB)(nil)
	_ outbox.Queue          = (*store.Queue)(nil)
	_ outbox.SkippingQueue  = (*store.Queue)(nil) // a busy worker does not read its own messages again
	_ sms.Queue             = (*store.Queue)(nil)
	_ ussd.Conversation     = (*menus.Engine)(nil)
	_ sms.Engine            = (*menus.Engine)(nil)
	_ partner.Institutions  = (*menus.Engine)(nil)
)

// worker is a background loop the gateway runs until Close: the partner
// deliverer, the text sender, the sweeper.
type worker struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
}

// start runs a worker until Close stops it; workers stop in the order
// they were started. A worker that ends for another reason than being
// stopped says why in the log.
func (m *Main) start(name string, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			m.Log.Error().Err(err).Str("worker", name).Msg("worker stopped")
		}
	}()
	m.workers = append(m.workers, w)
}

// stop cancels the worker and waits for it to return.
func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// openStore opens the store with its seal key (generated beside the file
// when none is configured) and any previous keys, and returns the sealer,
// whose derived keys hash transcripts.
func (m *Main) openStore(ctx context.Context, cfg Config) (*seal.Sealer, error) {
	if cfg.Store.postgres() && cfg.Security.SealKey == "" {
		// A key generated per instance would seal what one instance
		// writes against every other.
		return nil, errors.New("config: [security] seal-key (or USSDLINK_SEAL_KEY) is required with [store] url: every instance must share it")
	}
	key, generated, err := seal.LoadKey(cfg.Security.SealKey, filepath.Join(filepath.Dir(cfg.Store.Path), "seal.key"))
	if err != nil {
		return nil, err
	}
	if generated {
		m.Log.Warn().Msg("generated a seal key file beside the database; configure [security] seal-key or USSDLINK_SEAL_KEY in production")
	}
	previous, err := seal.DecodeKeys(cfg.Security.PreviousSealKeys)
	if err != nil {
		return nil, fmt.Errorf("config: [security] previous-seal-keys: %w", err)
	}
	sealer, err := seal.New(key, previous...)
	clear(key)
	for _, k := range previous {
		clear(k)
	}
	if err != nil {
		return nil, err
	}
	return sealer, m.openBackend(ctx, cfg, sealer)
}

// connectMono builds the Mono client — on the embedded sandbox when no base
// URL is configured — and checks a real Mono at start. It returns the
// secret Mono's webhooks must carry (generated for the sandbox when none is
// configured: the sandbox and the receiver share it for this run).
func (m *Main) connectMono(ctx context.Context, cfg MonoConfig) (*mono.Client, string, error) {
	secret := cfg.WebhookSecret
	if cfg.BaseURL == "" && secret == "" {
		secret = partner.GenerateSecret()
	}
	client, err := m.monoClient(cfg, secret)
	if err != nil {
		return nil, "", err
	}
	if m.sandboxMono == nil {
		if err := checkMono(ctx, client, cfg, m.Log); err != nil {
			return nil, "", err
		}
	}
	return client, secret, nil
}

// startDeliverer starts sending partner webhooks, when a URL is configured.
func (m *Main) startDeliverer(cfg PartnerConfig) error {
	if cfg.WebhookURL == "" {
		m.Log.Info().Msg("no [partner] webhook-url: partner events are not sent")
		return nil
	}
	signer, err := partner.NewSigner(cfg.WebhookSecret)
	if err != nil {
		return err
	}
	m.deliverer = &partner.Deliverer{URL: cfg.WebhookURL, Signer: signer, Outbox: m.webhookQueue,
		RetryFor: cfg.WebhookRetryFor.Duration, MaxInFlight: cfg.WebhookMaxInFlight, Now: m.Now, Log: m.Log.With().Str("component", "webhooks").Logger(),
		Observe: m.metrics.Webhook}
	m.start("webhooks", m.deliverer.Run)
	return nil
}

// notifyPartner wakes the partner deliverer after a commit queued events
// (nothing when there is none).
func (m *Main) notifyPartner() func() {
	if m.deliverer == nil {
		return func() {}
	}
	return m.deliverer.Notify
}

// startTexts starts sending the text queue through the configured provider.
func (m *Main) startTexts(cfg SMSConfig) {
	sender := cfg.sender(m.Log.With().Str("component", "sms-sandbox").Logger())
	m.smsSandbox, _ = sender.(*sms.Sandbox)
	m.texts = &sms.Worker{Queue: m.textQueue, Sender: sender,
		Texts:    sms.Texts{PartnerName: cfg.PartnerName, Enabled: cfg.kinds(), Words: m.words, Language: m.Config.USSD.spoken()},
		Language: m.db.PhoneLanguage,
		OptedOut: m.db.OptedOut, RetryFor: cfg.RetryFor.Duration, MaxInFlight: cfg.MaxInFlight, Now: m.Now, Log: m.Log.With().Str("component", "sms").Logger(),
		Observe: m.metrics.Text}
	m.start("texts", m.texts.Run)
}

// engineConfig is the conversation's configuration: the operator's, with
// the transcript keys derived from the seal key and the workers to wake.
func engineConfig(cfg Config, words *lang.Catalogue, sealer *seal.Sealer, notify, notifyTexts func()) menus.Config {
	kinds := cfg.SMS.kinds()
	return menus.Config{
		ScreenLimit:            cfg.USSD.ScreenLimit,
		SessionTTL:             cfg.USSD.SessionTTL.Duration,
		MaxTries:               cfg.USSD.MaxTries,
		TranscriptKey:          sealer.Derive("transcript"),
		PreviousTranscriptKeys: sealer.DerivePrevious("transcript"),
		HopBudget:              cfg.USSD.HopBudget.Duration,
		ResumeWindow:           cfg.USSD.ResumeWindow.Duration,
		SecretTTL:              cfg.USSD.SecretTTL.Duration,
		MaxLoginFailures:       cfg.Security.MaxLoginFailures,
		Lockout:                cfg.Security.Lockout.Duration,
		LogPhone:               cfg.Log.logPhone(),
		ServiceCode:            cfg.USSD.ServiceCode,
		Shortcuts:              cfg.USSD.shortcuts(),
		RepeatWindow:           cfg.USSD.RepeatWindow.Duration,
		Emits:                  cfg.Partner.emits(),
		Notify:                 notify,
		Texts:                  func(kind string) bool { return kinds[kind] },
		NotifyTexts:            notifyTexts,
		SMSCredentials:         cfg.SMS.AllowCredentials,
		LeaseTTL:               cfg.Store.LeaseTTL.Duration,
		CustomerName:           cfg.Mono.CustomerName,
		CustomerEmail:          cfg.Mono.CustomerEmail,
		Words:                  words,
		Languages:              cfg.USSD.Languages,
		DefaultLanguage:        cfg.USSD.DefaultLanguage,
		Networks:               cfg.USSD.networks(),
		SealedJSON:             cfg.Store.SealedJSON,
	}
}

// shareEngine makes the engine one of the instances of a shared store:
// sessions locked across them, background work leased.
func shareEngine(c menus.Config, s *shared) menus.Config {
	if s != nil {
		c.Locker, c.Leases = s.locker, s.leases
	}
	return c
}

// mount builds the HTTP app and its routes: health, the aggregators'
// callbacks, the partner API, Mono's webhooks and the text-message edge,
// each behind its guards.
func (m *Main) mount(cfg Config, monoSecret string) error {
	allow, err := guard.ParsePrefixes(cfg.USSD.AllowIPs)
	if err != nil {
		return err
	}
	phones, err := cfg.USSD.phones()
	if err != nil {
		return err
	}
	loc, err := cfg.SMS.location()
	if err != nil {
		return err
	}
	auth := guard.CallbackAuth{Token: cfg.USSD.CallbackToken, Allow: allow, ProxyHeader: cfg.USSD.TrustedProxyHeader}
	if !auth.Enabled() {
		m.Log.Warn().Msg("telco callbacks are not authenticated: set [ussd] callback-token or allow-ips before going live")
	}
	kinds := cfg.SMS.kinds()
	texts := func(kind string) bool { return kinds[kind] }
	emits, notify := cfg.Partner.emits(), m.notifyPartner()
	spoken := cfg.USSD.spoken()

	m.app = newApp(m.Log)
	m.app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	edge := ussd.Edge{Conv: m.engine, Log: m.Log, Auth: auth,
		PhoneRate: guard.NewLimiter(cfg.Security.PhoneRate, m.Now), Limits: cfg.USSD.limits(),
		Phones: phones, ServiceCode: cfg.USSD.ServiceCode, IDs: reqid.NewSource(), Observer: m.metrics,
		Say: func(key string) string { return m.words.Text(spoken, key) }}
	edge.Mount(m.app, ussd.Dialects()...)
	byIP := guard.RateByIP(guard.NewLimiter(cfg.Security.IPRate, m.Now), auth.ProxyHeader, func() { m.metrics.Refused("ip_rate") })

	if len(cfg.Partner.APIKeys) == 0 {
		m.Log.Warn().Msg("no [partner] api-keys: every /v1 call is refused")
	}
	api := &partner.API{Store: m.db, Keys: cfg.Partner.APIKeys, ServiceCode: cfg.USSD.ServiceCode,
		InviteTTL: cfg.Partner.InviteTTL.Duration, Now: m.Now, Log: m.Log.With().Str("component", "api").Logger(),
		Texts: texts, Notify: m.texts.Notify, Phones: phones, Institutions: m.engine,
		IdempotencyTTL: cfg.Partner.IdempotencyTTL.Duration, Location: loc,
		Funnel: m.db, FunnelOrder: journeyOrder(), Languages: cfg.USSD.Languages}
	if m.shared != nil {
		api.Locker = m.shared.locker
	}
	api.Mount(m.app.Group("/v1", byIP))

	if monoSecret == "" {
		m.Log.Warn().Msg("no [mono] webhook-secret: Mono's webhooks are refused")
	}
	hooks := &partner.MonoWebhooks{Secret: monoSecret, Store: m.db, Emits: emits, Notify: notify, Now: m.Now,
		Log:   m.Log.With().Str("component", "mono-webhooks").Logger(),
		Nudge: kinds[link.TextReauthNudge], NotifyTexts: m.texts.Notify, ServiceCode: cfg.USSD.ServiceCode,
		InviteTTL: cfg.Partner.InviteTTL.Duration}
	m.app.Group("/webhooks", byIP).Post("/mono", hooks.Handler())

	inbound := &sms.Inbound{
		Conv: &sms.Conversation{Engine: m.engine, Store: m.db, Keyword: cfg.SMS.Keyword, SessionTTL: cfg.SMS.SessionTTL.Duration,
			Words: m.words, Language: spoken,
			Now: m.Now, Log: m.Log.With().Str("component", "sms").Logger()},
		Store: m.db, Phones: phones, TwilioToken: cfg.SMS.Twilio.AuthToken, TwilioURL: cfg.SMS.Twilio.WebhookURL,
		TermiiSecret: cfg.SMS.Termii.SecretKey, Notify: m.texts.Notify, Now: m.Now,
		Log: m.Log.With().Str("component", "sms").Logger()}
	inbound.Mount(m.app, auth.Middleware(m.Log))
	m.mountSMSSandbox()
	return nil
}

// mountSMSSandbox shows what the sandbox text provider "sent", for go run .
// dial and local tries; only ever with the Mono sandbox, never beside real
// accounts.
func (m *Main) mountSMSSandbox() {
	switch {
	case m.smsSandbox == nil:
	case m.sandboxMono == nil:
		m.Log.Warn().Msg("[sms] provider is the sandbox while Mono is real: texts are kept in memory and never sent")
	default:
		m.app.Get("/sms/sandbox/inbox", func(c *fiber.Ctx) error {
			return c.JSON(m.smsSandbox.Inbox(c.Query("phone")))
		})
	}
}

// serve starts answering on the listener.
func (m *Main) serve(serviceCode string) {
	m.served = make(chan error, 1)
	go func() { m.served <- m.app.Listener(m.listener) }()
	m.Log.Info().Str("addr", m.listener.Addr().String()).Str("service_code", serviceCode).Msg("ussdlink listening")
}
