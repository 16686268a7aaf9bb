package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/guard"
	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/partner"
	"github.com/ussdlink/ussdlink/phone"
	"github.com/ussdlink/ussdlink/sms"
	"github.com/ussdlink/ussdlink/ussd"
)

// Config is the gateway's configuration, read from TOML with kebab-case keys.
type Config struct {
	HTTP     HTTPConfig     `toml:"http"`
	Store    StoreConfig    `toml:"store"`
	Mono     MonoConfig     `toml:"mono"`
	Admin    AdminConfig    `toml:"admin"`
	USSD     USSDConfig     `toml:"ussd"`
	Security SecurityConfig `toml:"security"`
	Partner  PartnerConfig  `toml:"partner"`
	SMS      SMSConfig      `toml:"sms"`
	Log      LogConfig      `toml:"log"`
}

// SMSConfig is the text-message channel: which provider sends, which
// messages are sent, and the text conversation.
type SMSConfig struct {
	Provider         string   `toml:"provider"`          // africastalking | twilio | termii | sandbox (default)
	PartnerName      string   `toml:"partner-name"`      // named in receipts and invitations
	Keyword          string   `toml:"keyword"`           // starts the text conversation; default LINK
	SessionTTL       Duration `toml:"session-ttl"`       // inactivity before a text conversation lapses
	AllowCredentials bool     `toml:"allow-credentials"` // off: hand over to USSD for credentials
	Receipts         bool     `toml:"receipts"`
	Invitations      bool     `toml:"invitations"`
	LateOutcomes     bool     `toml:"late-outcomes"`
	ReauthNudges     bool     `toml:"reauth-nudges"`
	RetryFor         Duration `toml:"retry-for"` // how long a text is retried through an outage
	// MaxInFlight is how many texts are handed to the provider at once
	// (those to one phone one after another).
	MaxInFlight int `toml:"max-in-flight"`
	// Timezone (IANA, "Africa/Lagos") is where the times texts show are
	// read: an invitation's expiry is "2 Jan 15:04 WAT" to its customer.
	Timezone string `toml:"timezone"`

	AfricasTalking SMSProvider `toml:"africastalking"`
	Twilio         SMSProvider `toml:"twilio"`
	Termii         SMSProvider `toml:"termii"`
}

// SMSProvider is one provider's [sms.<provider>] table; each uses the keys
// its API needs. base-url is the API's scheme and host (the documented path
// is appended), so a test server can stand in.
type SMSProvider struct {
	BaseURL    string `toml:"base-url"`
	Username   string `toml:"username"`    // Africa's Talking
	APIKey     string `toml:"api-key"`     // Africa's Talking, Termii
	AccountSID string `toml:"account-sid"` // Twilio
	AuthToken  string `toml:"auth-token"`  // Twilio: also verifies its inbound signatures
	SecretKey  string `toml:"secret-key"`  // Termii: verifies its inbound signatures
	From       string `toml:"from"`
	WebhookURL string `toml:"webhook-url"` // Twilio: the public URL it calls (and signs), if behind a proxy
}

// PartnerConfig is the partner's side: the keys of its API, where its
// webhooks go and how they are signed, which events it wants.
type PartnerConfig struct {
	APIKeys         []string `toml:"api-keys"`          // bearer keys of /v1; or USSDLINK_API_KEYS, comma-separated
	WebhookURL      string   `toml:"webhook-url"`       // empty: no webhooks
	WebhookSecret   string   `toml:"webhook-secret"`    // whsec_<base64>; or USSDLINK_WEBHOOK_SECRET
	Events          []string `toml:"events"`            // which event types to send; empty: all
	WebhookRetryFor Duration `toml:"webhook-retry-for"` // how long a webhook is retried
	// WebhookMaxInFlight is how many webhooks are sent at once (a
	// session's events one after another).
	WebhookMaxInFlight int      `toml:"webhook-max-in-flight"`
	InviteTTL          Duration `toml:"invite-ttl"` // how long an invitation code can be dialled
	// IdempotencyTTL is how long the answer to a request with an
	// Idempotency-Key is kept and replayed; then it is forgotten.
	IdempotencyTTL Duration `toml:"idempotency-ttl"`
	// InviteRetention is how long a partner invitation is kept, for
	// GET /v1/links, once it can no longer be used (expired, or last
	// changed when later); then it is deleted.
	InviteRetention Duration `toml:"invite-retention"`
}

// HTTPConfig is where the gateway listens.
type HTTPConfig struct {
	Addr string `toml:"addr"`
	// DebugAddr, when set, serves Go's runtime profiles (/debug/pprof/)
	// on a listener of its own; keep it on loopback. Empty: no listener.
	DebugAddr string `toml:"debug-addr"`
}

// StoreConfig is where state is kept.
type StoreConfig struct {
	// URL, when set (postgres://… or postgresql://…; env DATABASE_URL
	// overrides), is the PostgreSQL database every instance shares; empty
	// keeps the embedded bbolt file at Path.
	URL string `toml:"url"`
	// MaxConns sizes the PostgreSQL connection pool; 0 keeps the
	// default (twice the CPUs, at least 8; or the URL's pool_max_conns).
	MaxConns int `toml:"max-conns"`
	// LeaseTTL is how long an instance's lease on background Mono work
	// lasts without renewal (it renews a third of the way): another
	// instance takes the work over this long after the first one died.
	LeaseTTL Duration `toml:"lease-ttl"`
	Path     string   `toml:"path"`
	// BatchDelay is how long a commit that finds the writer idle waits for
	// others to share its disk sync (commits arriving during a sync share
	// the next one regardless); every commit is durable before its reply.
	BatchDelay Duration `toml:"batch-delay"`
	// SealedJSON writes a session's sealed values as JSON, which the
	// versions before their MessagePack form read, instead of MessagePack:
	// for a rolling upgrade of instances sharing one database, while
	// instances of such a version still run. Both forms are read always.
	SealedJSON bool `toml:"sealed-json"`
}

// AdminConfig is the admin listener: metrics, readiness, the browser
// phone, the log level and (with Pprof) runtime profiles, on an address
// of its own that must not face aggregators. An empty Addr turns it off.
type AdminConfig struct {
	Addr  string `toml:"addr"`
	Pprof bool   `toml:"pprof"`
}

// MonoConfig reaches Mono. An empty BaseURL serves the embedded sandbox.
type MonoConfig struct {
	BaseURL   string   `toml:"base-url"`
	SecretKey string   `toml:"secret-key"`
	AppID     string   `toml:"app-id"`
	Timeout   Duration `toml:"timeout"`
	// WebhookSecret is the secret Mono sends in mono-webhook-secret with
	// its webhooks (POST /webhooks/mono); or MONO_WEBHOOK_SECRET.
	WebhookSecret string `toml:"webhook-secret"`
	// API is the version of Mono's Partners API spoken: "v1" (the
	// default) or "v2", Mono's current one. The embedded sandbox speaks
	// both.
	API string `toml:"api"`
	// CustomerName and CustomerEmail are templates of the customer a v2
	// session is for when the invitation names none; {phone} is the E.164
	// digits of the phone. See menus.DefaultCustomerName.
	CustomerName  string `toml:"customer-name"`
	CustomerEmail string `toml:"customer-email"`
}

// api is the configured Mono API version (validated at load).
func (c MonoConfig) api() mono.API {
	v, err := mono.ParseAPI(c.API)
	if err != nil {
		return mono.V1
	}
	return v
}

// USSDConfig shapes the conversation.
type USSDConfig struct {
	ServiceCode string `toml:"service-code"`
	// Country (ISO 3166-1 alpha-2, "NG") is where national numbers
	// ("0803…") are read: every phone, from every aggregator, text provider
	// and partner call, is kept in E.164 so one subscriber is one identity.
	Country     string   `toml:"country"`
	ScreenLimit int      `toml:"screen-limit"`
	SessionTTL  Duration `toml:"session-ttl"`
	MaxTries    int      `toml:"max-tries"`
	// HopBudget is the most a reply may take; Mono work past it continues
	// in the background behind a "please wait" screen.
	HopBudget Duration `toml:"hop-budget"`
	// ResumeWindow is how long after a dropped session the same phone is
	// offered to continue it.
	ResumeWindow Duration `toml:"resume-window"`
	// SecretTTL is the longest typed values are kept, sealed, for a step
	// that is retried after a restart or continued after a drop.
	SecretTTL Duration `toml:"secret-ttl"`
	// SweepInterval is how often expired sessions are deleted.
	SweepInterval Duration `toml:"sweep-interval"`
	// CallbackToken, when set, must come with every telco callback, as the
	// token query parameter or the X-Callback-Token header.
	CallbackToken string `toml:"callback-token"`
	// AllowIPs, when set, lists the networks (CIDR) callbacks may come from.
	AllowIPs []string `toml:"allow-ips"`
	// TrustedProxyHeader names the header a reverse proxy in front of the
	// gateway puts the caller's address in; unset, no such header is trusted.
	TrustedProxyHeader string `toml:"trusted-proxy-header"`
	// RepeatWindow is how soon the same input again, from an aggregator that
	// sends neither the transcript nor a hop number, counts as a repeated
	// delivery.
	RepeatWindow Duration `toml:"repeat-window"`
	// ScreenLimits overrides screen-limit per dialect name ("hubtel") or
	// network code ("62120"); a network's entry wins.
	ScreenLimits map[string]int `toml:"screen-limits"`
	// Shortcuts are deep-dial codes (*384*123*7#) that open an institution.
	Shortcuts []ShortcutConfig `toml:"shortcuts"`
	// Languages are those offered, in order (codes of package lang); with
	// more than one, a phone's first dial asks once. DefaultLanguage is
	// spoken until a phone chooses. Texts names an operator's file
	// overriding any message in any language.
	Languages       []string `toml:"languages"`
	DefaultLanguage string   `toml:"default-language"`
	Texts           string   `toml:"texts"`
}

// spoken is the language the gateway speaks before a phone has chosen one
// (lang.Spoken): the engine, the edge's own endings and the texts agree.
func (c USSDConfig) spoken() string { return lang.Spoken(c.Languages, c.DefaultLanguage) }

// ShortcutConfig is one [[ussd.shortcuts]] table: a deep-dial code opening
// an institution, or speaking a language, or both.
type ShortcutConfig struct {
	Code        string `toml:"code"`
	Institution string `toml:"institution"`
	AuthMethod  string `toml:"auth-method"`
	Language    string `toml:"language"`
}

// networks are the network codes the operator names (its screen-limits'
// keys that are not dialects), for the funnel's groups.
func (c USSDConfig) networks() []string {
	var out []string
	for k := range c.ScreenLimits {
		if link.ShortCode(k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// checkLanguages refuses languages the catalogue lacks, a language listed
// twice, and a default that is not offered.
func (c USSDConfig) checkLanguages() error {
	seen := map[string]bool{}
	for _, code := range c.Languages {
		switch {
		case !slices.Contains(lang.All, code):
			return fmt.Errorf("config: [ussd] languages: %q is not one of %s", code, strings.Join(lang.All, ", "))
		case seen[code]:
			return fmt.Errorf("config: [ussd] languages: %q is listed twice", code)
		}
		seen[code] = true
	}
	if c.DefaultLanguage != "" && !seen[c.DefaultLanguage] {
		return fmt.Errorf("config: [ussd] default-language %q is not one of [ussd] languages", c.DefaultLanguage)
	}
	return nil
}

// words is the catalogue the conversation speaks: the embedded one, with
// the operator's [ussd] texts over it.
func (c USSDConfig) words() (*lang.Catalogue, error) {
	words, err := lang.Load()
	if err != nil {
		return nil, err
	}
	if c.Texts == "" {
		return words, nil
	}
	data, err := os.ReadFile(c.Texts)
	if err != nil {
		return nil, fmt.Errorf("config: [ussd] texts: %w", err)
	}
	if err := words.Override(data); err != nil {
		return nil, fmt.Errorf("config: [ussd] texts %s: %w", c.Texts, err)
	}
	return words, nil
}

// SecurityConfig holds the key that seals what users type and the limits
// against brute force and floods.
type SecurityConfig struct {
	SealKey string `toml:"seal-key"`
	// PreviousSealKeys open values sealed before the seal key was rotated;
	// new values use SealKey. Or USSDLINK_PREVIOUS_SEAL_KEYS, comma-separated.
	PreviousSealKeys []string `toml:"previous-seal-keys"`
	// MaxLoginFailures refused bank logins of one phone within Lockout
	// pause its logins until Lockout has passed.
	MaxLoginFailures int      `toml:"max-login-failures"`
	Lockout          Duration `toml:"lockout"`
	// PhoneRate is hops a minute per phone on the telco routes; 0: no limit.
	PhoneRate int `toml:"phone-rate"`
	// IPRate is requests a minute per address on the partner and webhook
	// routes; 0: no limit.
	IPRate int `toml:"ip-rate"`
	// AllowUnauthenticated lets a live Mono key run with callback
	// authentication off. Leave it false.
	AllowUnauthenticated bool `toml:"allow-unauthenticated"`
}

// LogConfig sets the log level and format ("auto": console on a terminal,
// JSON otherwise), and how phone numbers appear in logs: "masked" (country
// prefix and last three digits), "full" or "none".
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
	Phone  string `toml:"phone"`
}

// Duration is a time.Duration written as a string ("20s") in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig is the configuration used for keys a file leaves out.
func DefaultConfig() Config {
	engine := menus.DefaultConfig()
	return Config{
		HTTP:  HTTPConfig{Addr: "127.0.0.1:8080"},
		Admin: AdminConfig{Addr: "127.0.0.1:8081"},
		Store: StoreConfig{Path: "data/ussdlink.db", BatchDelay: Duration{0}, LeaseTTL: Duration{engine.LeaseTTL}},
		Mono: MonoConfig{Timeout: Duration{20 * time.Second}, API: string(mono.V1),
			CustomerName: engine.CustomerName, CustomerEmail: engine.CustomerEmail},
		USSD: USSDConfig{
			ServiceCode:     "*384*123#",
			Country:         "NG",
			ScreenLimit:     engine.ScreenLimit,
			SessionTTL:      Duration{engine.SessionTTL},
			MaxTries:        engine.MaxTries,
			HopBudget:       Duration{engine.HopBudget},
			ResumeWindow:    Duration{engine.ResumeWindow},
			SecretTTL:       Duration{engine.SecretTTL},
			SweepInterval:   Duration{30 * time.Second},
			AllowIPs:        []string{},
			RepeatWindow:    Duration{engine.RepeatWindow},
			ScreenLimits:    map[string]int{},
			Languages:       append([]string(nil), lang.All...),
			DefaultLanguage: lang.English,
		},
		Security: SecurityConfig{
			PreviousSealKeys: []string{},
			MaxLoginFailures: engine.MaxLoginFailures,
			Lockout:          Duration{engine.Lockout},
			PhoneRate:        30,
			IPRate:           600,
		},
		Partner: PartnerConfig{
			APIKeys:            []string{},
			Events:             []string{},
			WebhookRetryFor:    Duration{partner.DefaultWebhookRetryFor},
			WebhookMaxInFlight: partner.DefaultWebhooksInFlight,
			InviteTTL:          Duration{partner.DefaultInviteTTL},
			IdempotencyTTL:     Duration{partner.DefaultIdempotencyTTL},
			InviteRetention:    Duration{720 * time.Hour},
		},
		SMS: SMSConfig{
			Provider: "sandbox", Keyword: "LINK", SessionTTL: Duration{sms.DefaultSessionTTL},
			Receipts: true, Invitations: true, LateOutcomes: true, ReauthNudges: true,
			RetryFor: Duration{sms.DefaultRetryFor}, MaxInFlight: sms.DefaultTextsInFlight, Timezone: "Africa/Lagos",
		},
		Log: LogConfig{Level: "info", Format: "auto", Phone: "masked"},
	}
}

// LoadConfig reads a TOML file over the defaults, then applies the
// environment: DATABASE_URL, MONO_SECRET_KEY, MONO_WEBHOOK_SECRET, USSDLINK_SEAL_KEY,
// USSDLINK_CALLBACK_TOKEN, USSDLINK_API_KEYS (comma-separated) and
// USSDLINK_WEBHOOK_SECRET override the file, so secrets need not be
// written in it. A missing file is an error only when
// required.
func LoadConfig(path string, required bool) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.DecodeFile(path, &cfg)
	switch {
	case os.IsNotExist(err) && !required:
	case err != nil:
		return cfg, fmt.Errorf("config %s: %w", path, err)
	default:
		if undecoded := md.Undecoded(); len(undecoded) > 0 {
			return cfg, fmt.Errorf("config %s: unknown key %s", path, undecoded[0])
		}
	}
	if v := os.Getenv("MONO_SECRET_KEY"); v != "" {
		cfg.Mono.SecretKey = v
	}
	if v := os.Getenv("DATABASE_URL"); v != "" {
		cfg.Store.URL = v
	}
	if v := os.Getenv("USSDLINK_SEAL_KEY"); v != "" {
		cfg.Security.SealKey = v
	}
	if v := os.Getenv("USSDLINK_PREVIOUS_SEAL_KEYS"); v != "" {
		cfg.Security.PreviousSealKeys = strings.Split(v, ",")
	}
	if v := os.Getenv("USSDLINK_CALLBACK_TOKEN"); v != "" {
		cfg.USSD.CallbackToken = v
	}
	if v := os.Getenv("USSDLINK_API_KEYS"); v != "" {
		cfg.Partner.APIKeys = nil
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				cfg.Partner.APIKeys = append(cfg.Partner.APIKeys, k)
			}
		}
	}
	if v := os.Getenv("USSDLINK_WEBHOOK_SECRET"); v != "" {
		cfg.Partner.WebhookSecret = v
	}
	if v := os.Getenv("MONO_WEBHOOK_SECRET"); v != "" {
		cfg.Mono.WebhookSecret = v
	}
	for env, key := range map[string]*string{
		"AFRICASTALKING_API_KEY": &cfg.SMS.AfricasTalking.APIKey,
		"TWILIO_AUTH_TOKEN":      &cfg.SMS.Twilio.AuthToken,
		"TERMII_API_KEY":         &cfg.SMS.Termii.APIKey,
		"TERMII_SECRET_KEY":      &cfg.SMS.Termii.SecretKey,
	} {
		if v := os.Getenv(env); v != "" {
			*key = v
		}
	}
	return cfg, cfg.validate()
}

// validate refuses values the gateway cannot run with.
func (c Config) validate() error {
	switch {
	case c.USSD.ScreenLimit < 40 || c.USSD.ScreenLimit > 182:
		return fmt.Errorf("config: ussd.screen-limit must be between 40 and 182, got %d", c.USSD.ScreenLimit)
	case c.USSD.SessionTTL.Duration <= 0:
		return fmt.Errorf("config: ussd.session-ttl must be positive")
	case c.USSD.HopBudget.Duration < 100*time.Millisecond:
		return fmt.Errorf("config: ussd.hop-budget must be at least 100ms")
	case c.USSD.ResumeWindow.Duration < 0 || c.USSD.SecretTTL.Duration <= 0 || c.USSD.SweepInterval.Duration <= 0:
		return fmt.Errorf("config: ussd.resume-window, secret-ttl and sweep-interval must be positive")
	case c.Mono.Timeout.Duration <= 0:
		return fmt.Errorf("config: mono.timeout must be positive")
	case c.Store.URL == "" && c.Store.Path == "":
		return fmt.Errorf("config: store.path is required")
	case c.Store.URL != "" && !c.Store.postgres():
		return fmt.Errorf("config: store.url must be a postgres:// or postgresql:// URL")
	case c.Store.LeaseTTL.Duration < time.Second:
		return fmt.Errorf("config: store.lease-ttl must be at least 1s")
	case c.Store.MaxConns < 0:
		return fmt.Errorf("config: store.max-conns must be 0 (the driver's default) or positive")
	case c.Security.MaxLoginFailures <= 0 || c.Security.Lockout.Duration <= 0:
		return fmt.Errorf("config: security.max-login-failures and lockout must be positive")
	case c.Security.PhoneRate < 0 || c.Security.IPRate < 0:
		return fmt.Errorf("config: security.phone-rate and ip-rate must be 0 (off) or positive")
	case c.Log.Phone != "masked" && c.Log.Phone != "full" && c.Log.Phone != "none":
		return fmt.Errorf("config: log.phone must be masked, full or none")
	}
	for k, v := range c.USSD.ScreenLimits {
		if v < 40 || v > 182 {
			return fmt.Errorf("config: ussd.screen-limits.%s must be between 40 and 182, got %d", k, v)
		}
	}
	seen := map[string]bool{}
	for _, sc := range c.USSD.Shortcuts {
		switch {
		case sc.Code == "" || (sc.Institution == "" && sc.Language == "") || !isDigitsOnly(sc.Code):
			return fmt.Errorf("config: each [[ussd.shortcuts]] needs a numeric code and an institution or a language")
		case sc.Language != "" && !slices.Contains(c.USSD.Languages, sc.Language):
			return fmt.Errorf("config: shortcut %q: language %q is not one of [ussd] languages", sc.Code, sc.Language)
		case seen[sc.Code]:
			return fmt.Errorf("config: shortcut code %q is listed twice", sc.Code)
		}
		seen[sc.Code] = true
	}
	for _, typ := range c.Partner.Events {
		if !slices.Contains(link.EventTypes, typ) {
			return fmt.Errorf("config: partner.events: unknown event %q (known: %s)", typ, strings.Join(link.EventTypes, ", "))
		}
	}
	if c.Partner.WebhookURL != "" {
		if _, err := partner.NewSigner(c.Partner.WebhookSecret); err != nil {
			return fmt.Errorf("config: partner.webhook-url needs a webhook-secret (whsec_…): %w", err)
		}
	}
	switch c.SMS.Provider {
	case "sandbox", "":
	case "africastalking":
		if c.SMS.AfricasTalking.Username == "" || c.SMS.AfricasTalking.APIKey == "" {
			return fmt.Errorf("config: sms provider africastalking needs [sms.africastalking] username and api-key")
		}
	case "twilio":
		if c.SMS.Twilio.AccountSID == "" || c.SMS.Twilio.AuthToken == "" || c.SMS.Twilio.From == "" {
			return fmt.Errorf("config: sms provider twilio needs [sms.twilio] account-sid, auth-token and from")
		}
	case "termii":
		if c.SMS.Termii.APIKey == "" || c.SMS.Termii.From == "" {
			return fmt.Errorf("config: sms provider termii needs [sms.termii] api-key and from")
		}
	default:
		return fmt.Errorf("config: sms.provider must be africastalking, twilio, termii or sandbox")
	}
	if c.SMS.SessionTTL.Duration <= 0 || c.SMS.RetryFor.Duration <= 0 {
		return fmt.Errorf("config: sms.session-ttl and retry-for must be positive")
	}
	if c.SMS.MaxInFlight <= 0 || c.Partner.WebhookMaxInFlight <= 0 {
		return fmt.Errorf("config: sms.max-in-flight and partner.webhook-max-in-flight must be positive")
	}
	if c.Partner.WebhookRetryFor.Duration <= 0 || c.Partner.InviteTTL.Duration <= 0 {
		return fmt.Errorf("config: partner.webhook-retry-for and invite-ttl must be positive")
	}
	if c.Partner.IdempotencyTTL.Duration <= 0 || c.Partner.InviteRetention.Duration < 0 {
		return fmt.Errorf("config: partner.idempotency-ttl must be positive and invite-retention 0 or positive")
	}
	if _, err := c.SMS.location(); err != nil {
		return err
	}
	if err := c.USSD.checkLanguages(); err != nil {
		return err
	}
	if _, err := c.USSD.words(); err != nil {
		return err
	}
	if _, err := mono.ParseAPI(c.Mono.API); err != nil {
		return fmt.Errorf("config: [mono] api: %w", err)
	}
	if err := menus.CheckCustomerTemplates(c.Mono.CustomerName, c.Mono.CustomerEmail); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := guard.ParsePrefixes(c.USSD.AllowIPs); err != nil {
		return fmt.Errorf("config: ussd.%w", err)
	}
	if _, err := c.USSD.phones(); err != nil {
		return err
	}
	return c.checkSafe()
}

// checkSafe refuses a live Mono key while anyone can post callbacks, unless
// the operator has said so explicitly.
func (c Config) checkSafe() error {
	live := strings.HasPrefix(c.Mono.SecretKey, "live_sk_")
	open := c.USSD.CallbackToken == "" && len(c.USSD.AllowIPs) == 0
	if live && open && !c.Security.AllowUnauthenticated {
		return fmt.Errorf("config: a live_sk_ Mono key needs callback authentication: set [ussd] callback-token (or USSDLINK_CALLBACK_TOKEN) or allow-ips, or [security] allow-unauthenticated = true")
	}
	return nil
}

// isDigitsOnly reports whether s is one or more ASCII digits.
func isDigitsOnly(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// shortcuts returns the configured deep-dial codes for the engine.
func (c USSDConfig) shortcuts() map[string]menus.Shortcut {
	out := make(map[string]menus.Shortcut, len(c.Shortcuts))
	for _, sc := range c.Shortcuts {
		out[sc.Code] = menus.Shortcut{Institution: sc.Institution, AuthMethod: sc.AuthMethod, Language: sc.Language}
	}
	return out
}

// phones returns how phone numbers are read: national ones in the
// configured country, all into E.164.
func (c USSDConfig) phones() (phone.Numbers, error) {
	n, err := phone.New(c.Country)
	if err != nil {
		return n, fmt.Errorf("config: ussd.country: %w", err)
	}
	return n, nil
}

// limits returns the screen budgets per dialect or network, keys folded to
// lower case.
func (c USSDConfig) limits() ussd.Limits {
	out := make(ussd.Limits, len(c.ScreenLimits))
	for k, v := range c.ScreenLimits {
		out[strings.ToLower(k)] = v
	}
	return out
}

// emits says which partner events are sent: none without a webhook URL,
// the listed ones, or all.
func (c PartnerConfig) emits() func(string) bool {
	if c.WebhookURL == "" {
		return nil
	}
	if len(c.Events) == 0 {
		return func(string) bool { return true }
	}
	return func(t string) bool { return slices.Contains(c.Events, t) }
}

// kinds returns which text kinds are switched on.
func (c SMSConfig) kinds() map[string]bool {
	return map[string]bool{
		link.TextReceipt:     c.Receipts,
		link.TextInvitation:  c.Invitations,
		link.TextLateOutcome: c.LateOutcomes,
		link.TextReauthNudge: c.ReauthNudges,
		link.TextReply:       true,
	}
}

// location returns the time zone texts show times in.
func (c SMSConfig) location() (*time.Location, error) {
	if c.Timezone == "" {
		return nil, fmt.Errorf("config: sms.timezone is required (an IANA name, e.g. \"Africa/Lagos\")")
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("config: sms.timezone %q is not an IANA time zone: %w", c.Timezone, err)
	}
	return loc, nil
}

// sender returns the configured provider.
func (c SMSConfig) sender(log zerolog.Logger) sms.SMSSender {
	switch c.Provider {
	case "africastalking":
		p := c.AfricasTalking
		return sms.AfricasTalking{BaseURL: p.BaseURL, Username: p.Username, APIKey: p.APIKey, From: p.From}
	case "twilio":
		p := c.Twilio
		return sms.Twilio{BaseURL: p.BaseURL, AccountSID: p.AccountSID, AuthToken: p.AuthToken, From: p.From}
	case "termii":
		p := c.Termii
		return sms.Termii{BaseURL: p.BaseURL, APIKey: p.APIKey, From: p.From}
	}
	return &sms.Sandbox{Log: log}
}

// logPhone returns how phone numbers appear in logs.
func (c LogConfig) logPhone() func(string) string {
	switch c.Phone {
	case "full":
		return func(p string) string { return p }
	case "none":
		return func(string) string { return "" }
	}
	return phone.Mask
}

// postgres reports whether the store is PostgreSQL at URL.
func (c StoreConfig) postgres() bool {
	return strings.HasPrefix(c.URL, "postgres://") || strings.HasPrefix(c.URL, "postgresql://")
}
