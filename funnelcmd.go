package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ussdlink/ussdlink/funnel"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/menus"
)

// journeyOrder is the funnel's screen order: the journey's states.
func journeyOrder() []string {
	var out []string
	for _, s := range menus.TheJourney().States {
		out = append(out, s.Name)
	}
	return out
}

// runFunnel prints the drop-off funnel: `ussdlink funnel [-since 7d] [-by
// network|dialect|institution] [-format text|csv|json]`, from the
// configured store, or with -url from a running gateway's GET /v1/funnel
// (a gateway on bbolt holds its file: ask it).
func runFunnel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ussdlink funnel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	m := NewMain(stderr)
	fs.StringVar(&m.ConfigPath, "config", m.ConfigPath, "configuration file (TOML) naming the store")
	sinceFlag := fs.String("since", "7d", "how far back: days (7d), a duration (36h) or a date (2026-11-01)")
	by := fs.String("by", "", "group by network, dialect or institution (none: all sessions)")
	format := fs.String("format", "text", "text, csv or json")
	from := fs.String("url", "", "a running gateway's base URL: read its GET /v1/funnel instead of the store")
	key := fs.String("key", "", "with -url: a partner API key ([partner] api-keys)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !slices.Contains(link.FunnelGroupings, *by) {
		return fmt.Errorf("funnel: -by must be network, dialect or institution, not %q", *by)
	}
	if !slices.Contains([]string{"text", "csv", "json"}, *format) {
		return fmt.Errorf("funnel: -format must be text, csv or json, not %q", *format)
	}
	since, err := funnel.ParseSince(*sinceFlag, time.Now())
	if err != nil {
		return fmt.Errorf("funnel: %w", err)
	}
	var r funnel.Report
	if *from != "" {
		if r, err = remoteFunnel(ctx, *from, *key, *sinceFlag, *by); err != nil {
			return err
		}
		return r.Write(stdout, *format)
	}
	if err := m.loadConfig(fs); err != nil {
		return err
	}
	m.Log, _ = newLogger(stderr, LogConfig{Level: "warn", Format: m.Config.Log.Format})
	if _, err := m.openStore(ctx, m.Config); err != nil {
		return fmt.Errorf("%w (a running gateway on bbolt holds its file: use -url)", err)
	}
	counts, err := m.db.FunnelCounts(ctx, since, *by)
	if cerr := m.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return funnel.Build(counts, journeyOrder(), since, *by).Write(stdout, *format)
}

// remoteFunnel reads a running gateway's GET /v1/funnel.
func remoteFunnel(ctx context.Context, base, key, since, by string) (funnel.Report, error) {
	var r funnel.Report
	q := url.Values{"since": {since}}
	if by != "" {
		q.Set("by", by)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/funnel?"+q.Encode(), nil)
	if err != nil {
		return r, fmt.Errorf("funnel: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return r, fmt.Errorf("funnel: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return r, fmt.Errorf("funnel: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("funnel: GET /v1/funnel answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, errors.Join(errors.New("funnel: the gateway's answer is not a funnel"), err)
	}
	return r, nil
}
