package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

// scrape reads the admin listener's /metrics.
func scrape(t *testing.T, m *Main) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := get(t, m.AdminURL()+"/metrics")
	if status != 200 {
		t.Fatalf("/metrics = %d", status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value sums the samples of a family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
samples:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue samples
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

func TestMetricsAfterAFlowNameWhatHappenedWithoutPhonesOrAccounts(t *testing.T) {
	rcv := newReceiver(t)
	m, _ := startPartnerGateway(t, rcv, nil)
	const phone = "+2348071000601"
	walk(t, m, phone, "1", "user_otp", "pass_good", "123456").expect("is linked")
	walk(t, m, "+2348071000602", "0").expect("Goodbye") // 0 Exit on the bank list
	account := rcv.await("ACCOUNT_LINKED", nil)["account_id"].(string)
	settled(t, m)
	fams := scrape(t, m)

	hops, _ := value(fams, "ussdlink_hops_total", map[string]string{"dialect": "africastalking"})
	latencies, _ := value(fams, "ussdlink_hop_duration_seconds", map[string]string{"dialect": "africastalking"})
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   func(float64) bool
	}{
		{"every hop is counted", "ussdlink_hops_total", map[string]string{"dialect": "africastalking"}, func(v float64) bool { return v == 7 }}, // 5 to link, 2 to leave
		{"hops name the screen they showed", "ussdlink_hops_total", map[string]string{"screen": "challenge"}, func(v float64) bool { return v == 1 }},
		{"every hop's latency is observed", "ussdlink_hop_duration_seconds", map[string]string{"dialect": "africastalking"}, func(v float64) bool { return v == hops }},
		{"a link ends its session on the challenge it answered", "ussdlink_sessions_ended_total", map[string]string{"reason": "linked", "screen": "challenge"}, func(v float64) bool { return v == 1 }},
		{"a user who leaves ends on the screen left", "ussdlink_sessions_ended_total", map[string]string{"reason": "exit", "screen": "banks"}, func(v float64) bool { return v == 1 }},
		{"links count by institution", "ussdlink_links_total", map[string]string{"institution": "5f2d08be60b92e2888287702", "kind": "link"}, func(v float64) bool { return v == 1 }},
		{"Mono's login is counted by outcome", "ussdlink_mono_requests_total", map[string]string{"endpoint": "login", "outcome": "ok"}, func(v float64) bool { return v == 1 }},
		{"Mono's latency is observed", "ussdlink_mono_request_duration_seconds", map[string]string{"endpoint": "commit"}, func(v float64) bool { return v == 1 }},
		{"the receipt text was sent", "ussdlink_texts_sent_total", map[string]string{"result": "sent"}, func(v float64) bool { return v >= 1 }},
		{"the partner's webhooks were sent", "ussdlink_webhook_deliveries_total", map[string]string{"result": "sent"}, func(v float64) bool { return v >= 1 }},
		{"no work is left running", "ussdlink_background_jobs", nil, func(v float64) bool { return v == 0 }},
		{"the text queue is empty", "ussdlink_outbox_messages", map[string]string{"queue": "texts"}, func(v float64) bool { return v == 0 }},
		{"the webhook queue's age is reported", "ussdlink_outbox_oldest_age_seconds", map[string]string{"queue": "webhooks"}, func(v float64) bool { return v == 0 }},
		{"the store's writer counts its group commits", "ussdlink_store_commit_groups_total", nil, func(v float64) bool { return v >= 1 }},
		{"and the writes in them, a commit or more a hop", "ussdlink_store_commit_writes_total", nil, func(v float64) bool { return v >= hops }},
		{"and the time it spent committing", "ussdlink_store_writer_busy_seconds_total", nil, func(v float64) bool { return v > 0 }},
		{"the Go runtime is reported", "go_goroutines", nil, func(v float64) bool { return v > 0 }},
		{"the process is reported", "process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := value(fams, tt.metric, tt.labels)
			if !ok || !tt.want(v) {
				t.Errorf("%s%v = %v (present %v)", tt.metric, tt.labels, v, ok)
			}
		})
	}
	if latencies != hops || hops == 0 {
		t.Errorf("%v hops, %v latencies", hops, latencies)
	}
	for name, f := range fams {
		if strings.HasPrefix(name, "ussdlink_") && strings.HasSuffix(name, "_total") && f.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v, not a counter", name, f.GetType())
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				for _, private := range []string{strings.TrimPrefix(phone, "+"), account} {
					if strings.Contains(l.GetValue(), private) {
						t.Errorf("%s has a label %s=%q naming a phone or account", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
}

func TestReadyzNamesTheFailingPart(t *testing.T) {
	t.Run("all parts ready", func(t *testing.T) {
		m, _ := startGateway(t, nil)
		status, body := get(t, m.AdminURL()+"/readyz")
		var r struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if status != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Status != "ready" || r.Checks["store"] != "ok" || r.Checks["mono"] != "ok" || r.Checks["workers"] != "ok" {
			t.Errorf("/readyz = %d %s", status, body)
		}
	})
	t.Run("a Mono that does not answer", func(t *testing.T) {
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
		t.Cleanup(down.Close)
		m, _ := startGateway(t, func(c *Config) {
			c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID, c.Mono.Timeout.Duration = down.URL, "test_sk_x", "app", 200e6
		})
		status, body := get(t, m.AdminURL()+"/readyz")
		if status != 503 || !strings.Contains(body, `"failing":["mono"]`) {
			t.Errorf("/readyz = %d %s", status, body)
		}
	})
	t.Run("a store that takes no writes", func(t *testing.T) {
		m, _ := startGateway(t, nil)
		if err := m.db.Close(); err != nil { // the file is closed under the running gateway
			t.Fatal(err)
		}
		status, body := get(t, m.AdminURL()+"/readyz")
		if status != 503 || !strings.Contains(body, `"failing":["store"]`) {
			t.Errorf("/readyz = %d %s", status, body)
		}
	})
}

func TestTheAdminListenerIsOffWhenItsAddressIsEmpty(t *testing.T) {
	m, _ := startGateway(t, func(c *Config) { c.Admin.Addr = "" })
	if u := m.AdminURL(); u != "" {
		t.Fatalf("AdminURL = %q", u)
	}
	for _, path := range []string{"/metrics", "/readyz", "/phone/", "/log/level"} {
		if status, _ := get(t, m.URL()+path); status != 404 {
			t.Errorf("the callback listener serves %s: %d", path, status)
		}
	}
}

func TestProfilesAreServedOnlyWhenAskedFor(t *testing.T) {
	for _, on := range []bool{false, true} {
		m, _ := startGateway(t, func(c *Config) { c.Admin.Pprof = on })
		status, _ := get(t, m.AdminURL()+"/debug/pprof/")
		if (status == 200) != on {
			t.Errorf("pprof = %v: /debug/pprof/ = %d", on, status)
		}
	}
}

func TestTheLogLevelChangesWhileTheGatewayRuns(t *testing.T) {
	m, logs := startGateway(t, func(c *Config) {})
	set := func(level string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, m.AdminURL()+"/log/level", strings.NewReader(level))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT /log/level %s = %v %v", level, resp, err)
		}
		resp.Body.Close()
	}
	hopLines := func() int { return strings.Count(logs.String(), `"message":"hop"`) }
	walk(t, m, "+2348071000611")
	if hopLines() != 1 {
		t.Fatalf("at debug, %d hop lines", hopLines())
	}
	set("warn")
	walk(t, m, "+2348071000612")
	if n := hopLines(); n != 1 {
		t.Errorf("at warn, a hop was logged at info (%d lines)", n)
	}
	set("info")
	walk(t, m, "+2348071000613")
	if n := hopLines(); n != 2 {
		t.Errorf("back at info, %d hop lines, want 2", n)
	}
	if status, body := get(t, m.AdminURL()+"/log/level"); status != 200 || strings.TrimSpace(body) != "info" {
		t.Errorf("GET /log/level = %d %q", status, body)
	}
	req, _ := http.NewRequest(http.MethodPut, m.AdminURL()+"/log/level", strings.NewReader("loud"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("PUT a level that is none = %v %v", resp, err)
	}
}

func TestEveryHopLogsOneLineWhoseRequestIDReachesMono(t *testing.T) {
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_ids"})
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Request-Id")] = true
		mu.Unlock()
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); sb.Close() })
	rcv := newReceiver(t)
	m, logs := startPartnerGateway(t, rcv, func(c *Config) {
		c.Mono.BaseURL, c.Mono.SecretKey, c.Mono.AppID = srv.URL, "test_sk_ids", "app"
	})
	walk(t, m, "+2348071000621", "1", "user_good", "pass_good").expect("is linked")
	var hops []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["message"] == "hop" {
			hops = append(hops, line)
		}
	}
	if len(hops) != 4 {
		t.Fatalf("%d hop lines for 4 hops", len(hops))
	}
	last := hops[3]
	for _, k := range []string{"dialect", "session", "screen", "from", "outcome", "took", "request_id"} {
		if _, ok := last[k]; !ok {
			t.Errorf("hop line lacks %s: %v", k, last)
		}
	}
	if last["from"] != "credentials" || last["screen"] != "linked" || last["outcome"] != "input" {
		t.Errorf("last hop line = %v", last)
	}
	mu.Lock()
	defer mu.Unlock()
	if id, _ := last["request_id"].(string); id == "" || !seen[id] {
		t.Errorf("the hop's request id %v never reached Mono (seen %v)", last["request_id"], seen)
	}
	if strings.Contains(logs.String(), "pass_good") {
		t.Error("the logs hold the password")
	}
	rcv.await("ACCOUNT_LINKED", nil)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, e := range rcv.events {
		if e.Type == "ACCOUNT_LINKED" && e.RequestID != last["request_id"] {
			t.Errorf("ACCOUNT_LINKED carries request id %q, the hop that linked %v", e.RequestID, last["request_id"])
		}
	}
}
