package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load drives whole link flows through a running gateway's Africa's
// Talking route, as many handsets at once would, and measures them.
type Load struct {
	// URL is the gateway; several, comma-separated, are instances behind
	// one store, and each hop goes to the next, as a round-robin load
	// balancer would send it.
	URL         string
	Flows       int           // flows to run in all
	Concurrency int           // handsets at once
	MaxDuration time.Duration // stop starting flows after this
	Client      *http.Client
}

// LoadReport is what a load run measured.
type LoadReport struct {
	Flows, Failed int
	Hops          int
	Elapsed       time.Duration
	Latencies     []time.Duration // every hop's latency, sorted
	FirstError    error
}

// flowInputs is one link: GTBank, a user with one account, the password.
var flowInputs = []string{"1", "user_good", "pass_good"}

// Run executes the load and reports.
func (l Load) Run(ctx context.Context) LoadReport {
	client := l.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: l.Concurrency * 2, MaxConnsPerHost: l.Concurrency * 2,
		}}
	}
	if l.MaxDuration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.MaxDuration)
		defer cancel()
	}
	var (
		next   atomic.Int64
		mu     sync.Mutex
		report LoadReport
		wg     sync.WaitGroup
	)
	runID := time.Now().UnixNano()
	start := time.Now()
	for w := 0; w < max(1, l.Concurrency); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 64)
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(l.Flows) {
					break
				}
				phone := fmt.Sprintf("+234903%07d", n%10_000_000) // valid Nigerian mobile numbers: every phone is checked at the edge
				session := fmt.Sprintf("load-%d-%d", runID, n)
				hops, err := l.flow(ctx, client, session, phone, &lat)
				mu.Lock()
				report.Flows++
				report.Hops += hops
				if err != nil {
					report.Failed++
					if report.FirstError == nil {
						report.FirstError = err
					}
				}
				mu.Unlock()
			}
			mu.Lock()
			report.Latencies = append(report.Latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	report.Elapsed = time.Since(start)
	slices.Sort(report.Latencies)
	return report
}

// instance is the gateway hop i goes to.
func (l Load) instance(i int) string {
	urls := strings.Split(l.URL, ",")
	return strings.TrimRight(urls[i%len(urls)], "/")
}

// flow runs one link from dial to END, recording each hop's latency. A
// gateway that asks a new phone's language first is answered English.
func (l Load) flow(ctx context.Context, client *http.Client, session, phone string, lat *[]time.Duration) (int, error) {
	inputs := flowInputs
	for i := 0; i <= len(inputs); i++ {
		transcript := strings.Join(inputs[:i], "*")
		form := url.Values{"sessionId": {session}, "serviceCode": {"*384*123#"}, "phoneNumber": {phone}, "networkCode": {"99999"}, "text": {transcript}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.instance(i)+"/ussd/africastalking", strings.NewReader(form.Encode()))
		if err != nil {
			return i, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return i, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		*lat = append(*lat, time.Since(t0))
		if err != nil {
			return i + 1, err
		}
		if resp.StatusCode != http.StatusOK {
			return i + 1, fmt.Errorf("hop %d: status %d", i, resp.StatusCode)
		}
		got := string(body)
		if i == 0 && strings.Contains(got, "\n1. English\n") {
			inputs = append([]string{"1"}, flowInputs...) // the language question, once per phone
		}
		last := i == len(inputs)
		if strings.HasPrefix(got, "END ") != last || (last && !strings.Contains(got, "is linked")) {
			return i + 1, fmt.Errorf("hop %d: unexpected reply %q", i, got)
		}
	}
	return len(inputs) + 1, nil
}

// Percentile returns the latency below which p (0..1) of the hops fall.
func (r LoadReport) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

// String summarises the run.
func (r LoadReport) String() string {
	secs := r.Elapsed.Seconds()
	return fmt.Sprintf("flows %d (failed %d) in %.2fs: %.1f flows/s, %.1f hops/s\nhop latency p50 %v  p90 %v  p99 %v  max %v",
		r.Flows, r.Failed, secs, float64(r.Flows-r.Failed)/secs, float64(r.Hops)/secs,
		r.Percentile(0.50).Round(10*time.Microsecond), r.Percentile(0.90).Round(10*time.Microsecond),
		r.Percentile(0.99).Round(10*time.Microsecond), r.Percentile(1).Round(10*time.Microsecond))
}

// runLoad is the load command: it refuses any gateway that is not on this
// machine unless told otherwise, and its run is bounded in flows and time.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ussdlink load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	l := Load{}
	remote := false
	fs.StringVar(&l.URL, "url", "http://127.0.0.1:8080", "gateway base URL (its Mono should be the sandbox); several, comma-separated, take turns hop by hop")
	fs.IntVar(&l.Flows, "flows", 2000, "link flows to run")
	fs.IntVar(&l.Concurrency, "concurrency", 50, "handsets at once")
	fs.DurationVar(&l.MaxDuration, "max-duration", 2*time.Minute, "stop starting flows after this")
	fs.BoolVar(&remote, "allow-remote", false, "allow a gateway that is not on a loopback address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, raw := range strings.Split(l.URL, ",") {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("url: %w", err)
		}
		if ip := net.ParseIP(u.Hostname()); !remote && u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("load: the gateway must be on a loopback address (or pass -allow-remote)")
		}
	}
	fmt.Fprintf(stdout, "driving %d flows (%d hops each) with %d handsets at %s\n", l.Flows, len(flowInputs)+1, l.Concurrency, l.URL)
	r := l.Run(ctx)
	fmt.Fprintln(stdout, r)
	if r.FirstError != nil {
		return fmt.Errorf("%d flows failed; first: %w", r.Failed, r.FirstError)
	}
	return nil
}
