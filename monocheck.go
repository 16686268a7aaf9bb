package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/mono"
)

// monoCheckTimeout bounds the start-up look at Mono.
const monoCheckTimeout = 10 * time.Second

// institutionLister is the part of Mono the start-up check calls.
type institutionLister interface {
	Institutions(ctx context.Context) ([]mono.Institution, error)
}

// checkMono looks once at a configured Mono before the gateway serves, so
// that a gateway that cannot link anyone says so at start rather than
// showing every user "service unavailable": without an app id no v1
// session can be created (v2 sessions name none), and a key Mono refuses (401/403) or a request it calls
// misconfigured stops the start with the reason. Mono being unreachable or
// failing (network, 5xx) is only warned about, loudly: it may be a passing
// outage, and the gateway retries on every dial.
func checkMono(ctx context.Context, m institutionLister, cfg MonoConfig, log zerolog.Logger) error {
	if cfg.AppID == "" && cfg.api() == mono.V1 {
		return errors.New("config: [mono] app-id is required with a base-url: Mono refuses to open connect sessions without it (\"app is required\")")
	}
	ctx, cancel := context.WithTimeout(ctx, monoCheckTimeout)
	defer cancel()
	_, err := m.Institutions(ctx)
	switch mono.KindOf(err) {
	case mono.KindOther:
		if err == nil {
			return nil
		}
	case mono.KindUnauthorized:
		return fmt.Errorf("Mono refused the secret key at %s (check [mono] secret-key or MONO_SECRET_KEY, and that the Partners add-on is enabled): %w", cfg.BaseURL, err)
	case mono.KindMisconfigured:
		return fmt.Errorf("Mono refused the gateway's request at %s (check [mono] app-id and secret-key): %w", cfg.BaseURL, err)
	}
	log.Error().Err(err).Str("url", cfg.BaseURL).Msg("Mono could not be reached at start: the gateway serves anyway and users see 'service unavailable' until it answers")
	return nil
}
