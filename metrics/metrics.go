// Package metrics is the gateway's Prometheus instrumentation: one
// registry per gateway (no global state), every series under the ussdlink_
// prefix in base units, and never a label that names a phone, a session or
// an account — only bounded sets (dialects, networks, screens, reasons,
// institutions, endpoints, outcomes, queues).
//
// The packages that do the work know nothing of Prometheus: each reports
// through a small function or interface it declares, and Metrics provides
// them.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ussdlink/ussdlink/link"
)

// HopBuckets are the hop latency histogram's bounds, in seconds: fine
// below the 2 s a person notices, then up to the 10 s aggregators wait
// before they drop a session.
var HopBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 6, 8, 10}

// MonoBuckets are the Mono latency histogram's bounds, in seconds: a bank
// login can take longer than a hop, up to the client's timeout.
var MonoBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30}

// Metrics holds the gateway's collectors and the registry that serves
// them.
type Metrics struct {
	// Registry gathers everything below plus the Go runtime and process
	// collectors; /metrics on the admin listener serves it.
	Registry *prometheus.Registry

	hops          *prometheus.CounterVec
	hopSeconds    *prometheus.HistogramVec
	sessionsEnded *prometheus.CounterVec
	links         *prometheus.CounterVec
	monoRequests  *prometheus.CounterVec
	monoSeconds   *prometheus.HistogramVec
	webhooks      *prometheus.CounterVec
	texts         *prometheus.CounterVec
	refusals      *prometheus.CounterVec

	networks []string // the operator's, labelled besides the known ones (link.NetworkLabel)
}

// New registers the gateway's collectors, the Go runtime's and the
// process's on a fresh registry. networks are those the operator names,
// labelled by name besides the known ones (link.NetworkLabel); any other
// is "other".
func New(networks ...string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		networks: networks,
		hops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ussdlink_hops_total",
			Help: "USSD callbacks answered, by dialect, mobile network and the screen shown.",
		}, []string{"dialect", "network", "screen"}),
		hopSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ussdlink_hop_duration_seconds",
			Help:    "Time from a USSD callback's arrival to its reply, by dialect.",
			Buckets: HopBuckets,
		}, []string{"dialect"}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ussdlink_sessions_ended_total",
			Help: "Conversations ended, by reason and the last screen the user reached.",
		}, []string{"reason", "screen"}),
		links: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ussdlink_links_total",
			Help: "Accounts linked or reauthorised, by Mono institution id and kind (link, reauth).",
		}, []string{"institution", "kind"}),
		monoRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ussdlink_mono_requests_total",
			Help: "Calls to Mono, by endpoint and outcome (ok, rejected, not_found, unauthorized, temporary, unknown, error).",
		}, []string{"endpoint", "outcome"}),
		monoSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ussdlink_mono_request_duration_seconds",
			Help:    "Duration of calls to Mono, retries included, by endpoint.",
			Buckets: MonoBuckets,
		}, []string{"endpoint"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ussdlink_webhook_deliveries_total",
			Help: "Attempts to deliver partner webhooks, by result (sent, skipped, retry, gave_up).",
		}, []string{"result"}),
		texts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ussdlink_texts_sent_total",
			Help: "Attempts to send text messages, by result (sent, retry, gave_up, skipped).",
		}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ussdlink_refusals_total",
			Help: "Callbacks and logins refused for safety, by reason (phone_rate, ip_rate, lockout).",
		}, []string{"reason"}),
	}
	m.Registry.MustRegister(m.hops, m.hopSeconds, m.sessionsEnded, m.links, m.monoRequests, m.monoSeconds,
		m.webhooks, m.texts, m.refusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Hop counts one answered callback and its latency. An empty network is
// reported as "unknown", so the label set stays the same.
func (m *Metrics) Hop(dialect, network, screen string, took time.Duration) {
	m.hops.WithLabelValues(dialect, orUnknown(link.NetworkLabel(network, m.networks)), orUnknown(screen)).Inc()
	m.hopSeconds.WithLabelValues(dialect).Observe(took.Seconds())
}

// SessionEnded counts a conversation that ended, with why and where.
func (m *Metrics) SessionEnded(reason, screen string) {
	m.sessionsEnded.WithLabelValues(orUnknown(reason), orUnknown(screen)).Inc()
}

// Linked counts an account linked (kind "link") or reauthorised
// ("reauth") at an institution.
func (m *Metrics) Linked(institution, kind string) {
	m.links.WithLabelValues(orUnknown(institution), kind).Inc()
}

// MonoRequest counts one call to Mono and its duration.
func (m *Metrics) MonoRequest(endpoint, outcome string, took time.Duration) {
	m.monoRequests.WithLabelValues(endpoint, outcome).Inc()
	m.monoSeconds.WithLabelValues(endpoint).Observe(took.Seconds())
}

// Webhook counts one partner webhook delivery attempt by its result.
func (m *Metrics) Webhook(result string) { m.webhooks.WithLabelValues(result).Inc() }

// Text counts one text message attempt by its result.
func (m *Metrics) Text(result string) { m.texts.WithLabelValues(result).Inc() }

// Refused counts a refusal for safety: a rate limit or a lockout.
func (m *Metrics) Refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

// JobsRunning reports, at each scrape, how much background Mono work is
// under way: ussdlink_background_jobs.
func (m *Metrics) JobsRunning(count func() int) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ussdlink_background_jobs",
		Help: "Mono work running past its hop (a slow bank login), on this instance.",
	}, func() float64 { return float64(count()) }))
}

// StoreWriterStats is what a store's one writer has done since the store
// opened: its group commits, the writes in them and the time spent
// committing.
type StoreWriterStats struct {
	Groups, Writes uint64
	Busy           time.Duration
}

// StoreWriter reports, at each scrape, what the store's single writer has
// done (the bbolt store has one; PostgreSQL does not):
// ussdlink_store_commit_groups_total, ussdlink_store_commit_writes_total
// and ussdlink_store_writer_busy_seconds_total, whose rate nearing 1 says
// the writer is saturated and hops queue for it.
func (m *Metrics) StoreWriter(stats func() StoreWriterStats) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ussdlink_store_commit_groups_total",
			Help: "Group commits of the store's writer: one transaction and its disk syncs each.",
		}, func() float64 { return float64(stats().Groups) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ussdlink_store_commit_writes_total",
			Help: "Writes the store's group commits took: hops' commits, login reservations, queue updates.",
		}, func() float64 { return float64(stats().Writes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ussdlink_store_writer_busy_seconds_total",
			Help: "Time the store's writer spent committing, disk syncs included; a rate near 1 means it is saturated.",
		}, func() float64 { return stats().Busy.Seconds() }),
	)
}

// Depth is what a durable queue holds: messages waiting and when the
// oldest was queued (zero when empty).
type Depth struct {
	Messages int
	Oldest   time.Time
}

// Queues reports, at each scrape, every outbox queue's depth and the age
// of its oldest message: ussdlink_outbox_messages and
// ussdlink_outbox_oldest_age_seconds, by queue.
func (m *Metrics) Queues(now func() time.Time, depth func(ctx context.Context, queue string) (Depth, error), queues ...string) {
	m.Registry.MustRegister(&queueCollector{now: now, depth: depth, queues: queues})
}

// queueCollector reads the queues' depths when scraped.
type queueCollector struct {
	now    func() time.Time
	depth  func(ctx context.Context, queue string) (Depth, error)
	queues []string
}

var (
	queueMessages = prometheus.NewDesc("ussdlink_outbox_messages", "Messages waiting in a durable outbox queue.", []string{"queue"}, nil)
	queueAge      = prometheus.NewDesc("ussdlink_outbox_oldest_age_seconds", "Age of the oldest message waiting in a durable outbox queue (0 when empty).", []string{"queue"}, nil)
)

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueMessages
	ch <- queueAge
}

// Collect implements prometheus.Collector. A queue that cannot be read is
// left out of the scrape (and /readyz says why).
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, q := range c.queues {
		d, err := c.depth(ctx, q)
		if err != nil {
			continue
		}
		age := 0.0
		if !d.Oldest.IsZero() {
			age = max(c.now().Sub(d.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(queueMessages, prometheus.GaugeValue, float64(d.Messages), q)
		ch <- prometheus.MustNewConstMetric(queueAge, prometheus.GaugeValue, age, q)
	}
}

// orUnknown keeps a label's value set closed over empty values.
func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}
