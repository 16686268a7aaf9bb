package main

import (
	"context"
	"flag"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// benchBatchDelay overrides [store] batch-delay for comparisons
// (-batch-delay 10ms); negative keeps the default.
var benchBatchDelay time.Duration

func init() {
	flag.DurationVar(&benchBatchDelay, "batch-delay", -1, "override [store] batch-delay in BenchmarkLinkFlows")
}

// BenchmarkLinkFlows runs whole link flows (dial, bank, user name, password:
// four hops, each committed to bbolt before its reply) through the real
// gateway's Africa's Talking route against the embedded sandbox, with many
// handsets at once. It reports flows/s and hop latency percentiles.
func BenchmarkLinkFlows(b *testing.B) {
	for _, conc := range []int{1, 16, 64} {
		b.Run("handsets="+strconv.Itoa(conc), func(b *testing.B) {
			m, _ := startGatewayB(b, benchBatchDelay)
			l := Load{URL: m.URL(), Flows: b.N, Concurrency: conc}
			b.ResetTimer()
			r := l.Run(context.Background())
			b.StopTimer()
			if r.FirstError != nil {
				b.Fatalf("%d flows failed: %v", r.Failed, r.FirstError)
			}
			b.ReportMetric(float64(r.Flows)/r.Elapsed.Seconds(), "flows/s")
			b.ReportMetric(float64(r.Percentile(0.50))/float64(time.Millisecond), "p50-ms")
			b.ReportMetric(float64(r.Percentile(0.99))/float64(time.Millisecond), "p99-ms")
			b.ReportMetric(0, "ns/op") // a flow is many hops: ns/op says nothing here
		})
	}
}

// startGatewayB is startGateway for benchmarks, logging at warn.
func startGatewayB(b *testing.B, batchDelay time.Duration) (*Main, *syncBuffer) {
	b.Helper()
	logs := &syncBuffer{}
	m := NewMain(logs)
	m.Config.USSD.Languages = []string{"en"}
	m.Config.HTTP.Addr, m.Config.Admin.Addr = "127.0.0.1:0", ""
	m.Config.Store.Path = b.TempDir() + "/data/ussdlink.db"
	m.Config.Log = LogConfig{Level: "warn", Format: "json"}
	if batchDelay >= 0 {
		m.Config.Store.BatchDelay = Duration{batchDelay}
	}
	if err := m.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m, logs
}

// BenchmarkLinkFlowsPostgres runs the same flows on PostgreSQL: one
// gateway, then two on one database with every hop going to the other
// (the Mono sandbox shared), 16 handsets at once.
func BenchmarkLinkFlowsPostgres(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run("instances="+strconv.Itoa(n), func(b *testing.B) {
			c := startClusterB(b, n)
			var urls []string
			for _, m := range c {
				urls = append(urls, m.URL())
			}
			l := Load{URL: strings.Join(urls, ","), Flows: b.N, Concurrency: 16}
			b.ResetTimer()
			r := l.Run(context.Background())
			b.StopTimer()
			if r.FirstError != nil {
				b.Fatalf("%d flows failed: %v", r.Failed, r.FirstError)
			}
			b.ReportMetric(float64(r.Flows)/r.Elapsed.Seconds(), "flows/s")
			b.ReportMetric(float64(r.Percentile(0.50))/float64(time.Millisecond), "p50-ms")
			b.ReportMetric(float64(r.Percentile(0.99))/float64(time.Millisecond), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// startClusterB starts n gateways on one fresh database and one external
// Mono sandbox, logging at warn.
func startClusterB(b *testing.B, n int) []*Main {
	b.Helper()
	url := pgtest.URL(b)
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_bench"})
	srv := httptest.NewServer(sb)
	b.Cleanup(func() { srv.Close(); sb.Close() })
	var out []*Main
	for range n {
		m := NewMain(&syncBuffer{})
		m.Config.USSD.Languages = []string{"en"}
		m.Config.HTTP.Addr, m.Config.Admin.Addr = "127.0.0.1:0", ""
		m.Config.Store.URL = url
		m.Config.Security.SealKey = sealKey(0x5B)
		m.Config.Mono.BaseURL, m.Config.Mono.SecretKey, m.Config.Mono.AppID = srv.URL, "test_sk_bench", "app"
		m.Config.Log = LogConfig{Level: "warn", Format: "json"}
		if err := m.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		out = append(out, m)
	}
	return out
}
