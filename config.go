package main

import (
	"fmt"
	"os"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the gateway's configuration, read from TOML with kebab-case keys.
type Config struct {
	HTTP     HTTPConfig     `toml:"http"`
	Store    StoreConfig    `toml:"store"`
	Mono     MonoConfig     `toml:"mono"`
	USSD     USSDConfig     `toml:"ussd"`
	Security SecurityConfig `toml:"security"`
	Log      LogConfig      `toml:"log"`
}

// HTTPConfig is where the gateway listens.
type HTTPConfig struct {
	Addr string `toml:"addr"`
}

// StoreConfig is where state is kept.
type StoreConfig struct {
	Path string `toml:"path"`
	// BatchDelay is how long a commit waits for others to share its disk
	// sync; every commit is durable before its reply either way.
	BatchDelay Duration `toml:"batch-delay"`
}

// MonoConfig reaches Mono. An empty BaseURL serves the embedded sandbox.
type MonoConfig struct {
	BaseURL   string   `toml:"base-url"`
	SecretKey string   `toml:"secret-key"`
	AppID     string   `toml:"app-id"`
	Timeout   Duration `toml:"timeout"`
}

// USSDConfig shapes the conversation.
type USSDConfig struct {
	ServiceCode string   `toml:"service-code"`
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
}

// SecurityConfig holds the key that seals what users type.
type SecurityConfig struct {
	SealKey string `toml:"seal-key"`
}

// LogConfig sets the log level and format ("auto": console on a terminal,
// JSON otherwise).
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
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
	return Config{
		HTTP:  HTTPConfig{Addr: "127.0.0.1:8080"},
		Store: StoreConfig{Path: "data/ussdlink.db", BatchDelay: Duration{2 * time.Millisecond}},
		Mono:  MonoConfig{Timeout: Duration{20 * time.Second}},
		USSD: USSDConfig{
			ServiceCode:   "*384*123#",
			ScreenLimit:   160,
			SessionTTL:    Duration{180 * time.Second},
			MaxTries:      3,
			HopBudget:     Duration{4 * time.Second},
			ResumeWindow:  Duration{10 * time.Minute},
			SecretTTL:     Duration{2 * time.Minute},
			SweepInterval: Duration{30 * time.Second},
		},
		Log: LogConfig{Level: "info", Format: "auto"},
	}
}

// LoadConfig reads a TOML file over the defaults, then applies the
// environment: MONO_SECRET_KEY and USSDLINK_SEAL_KEY override the file, so
// secrets need not be written in it. A missing file is an error only when
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
	if v := os.Getenv("USSDLINK_SEAL_KEY"); v != "" {
		cfg.Security.SealKey = v
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
	case c.Store.Path == "":
		return fmt.Errorf("config: store.path is required")
	}
	return nil
}
