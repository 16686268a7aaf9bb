package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/mono/sandbox"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// processLeaseTTL is the work lease of the clustered gateway processes:
// short, so that a takeover comes soon after an instance dies.
const processLeaseTTL = 2 * time.Second

// clusterConfig writes a config for one of several gateway processes on a
// shared PostgreSQL database and a shared external Mono, with one seal key.
func clusterConfig(t *testing.T, monoURL, dbURL, hopBudget string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf(`[http]
addr = "127.0.0.1:0"
[admin]
addr = ""
[store]
url = %q
lease-ttl = %q
path = %q
[security]
seal-key = %q
[mono]
base-url = %q
secret-key = "test_sk_process"
app-id = "app_process"
timeout = "10s"
[ussd]
languages = ["en"]
hop-budget = %q
[log]
level = "debug"
format = "json"
`, dbURL, processLeaseTTL.String(), filepath.Join(dir, "data", "ussdlink.db"), sealKey(0x3C), monoURL, hopBudget)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loginClock is an external Mono sandbox that also notes when each login
// call arrived, so a test can tell when an instance took work over.
type loginClock struct {
	sb *sandbox.Sandbox
	mu sync.Mutex
	at []time.Time
}

// ServeHTTP notes a login's arrival and lets the sandbox answer.
func (l *loginClock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/connect/login" {
		l.mu.Lock()
		l.at = append(l.at, time.Now())
		l.mu.Unlock()
	}
	l.sb.ServeHTTP(w, r)
}

// logins returns the arrival times of the login calls so far.
func (l *loginClock) logins() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

// queryInt runs a query returning one integer on the database at url.
func queryInt(t *testing.T, url, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestAKilledInstancesLoginIsFinishedByAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	const (
		slow        = 3 * time.Second        // user_slow's login
		hopBudget   = 300 * time.Millisecond // the gateways' [ussd] hop-budget
		readingTime = 500 * time.Millisecond // before the user checks again
	)
	bin := buildGateway(t)
	bank := &loginClock{sb: sandbox.New(sandbox.Options{SecretKey: "test_sk_process", SlowDelay: slow})}
	monoSrv := httptest.NewServer(bank)
	t.Cleanup(func() { monoSrv.Close(); bank.sb.Close() })
	db := pgtest.URL(t)
	a := startProcess(t, bin, clusterConfig(t, monoSrv.URL, db, hopBudget.String()))
	b := startProcess(t, bin, clusterConfig(t, monoSrv.URL, db, hopBudget.String()))

	const phone = "+2348071000001"
	h := &handset{t: t, url: a.url, wire: atWire{}, phone: phone, session: fmt.Sprintf("takeover-%d", time.Now().UnixNano()), limit: 160}
	h.dial()
	h.send("1")
	h.send("user_slow")
	h.send("pass_good") // the bank outlives the hop budget: A logs in in the background
	h.expect("still answering", "Check again")
	logins := bank.logins()
	if len(logins) != 1 {
		t.Fatalf("A's login reached Mono %d times before the waiting screen, want 1", len(logins))
	}

	killed := time.Now()
	a.stop(t, syscall.SIGKILL, 5*time.Second)
	if ran := killed.Sub(logins[0]); ran >= slow {
		t.Fatalf("A's login had run %v (of %v) when A was killed: it was no longer in flight", ran, slow)
	}

	// Check again, on B each time: B waits while A's lease is live, then
	// takes the work over and logs in again with the still-sealed password.
	// The user reads each waiting screen a moment before checking again.
	h.url = b.url
	var hurried []time.Duration // checks answered "still waiting" well within the hop budget
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(h.screen, "is linked") {
		if h.ended || !strings.Contains(h.screen, "still answering") {
			t.Fatalf("checking again on B shows neither the waiting screen nor the link:\n%s\nB's logs:\n%s", h.screen, b.logs.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("B never finished A's login within 20s (logins at %v, A killed at %v):\n%s\nB's logs:\n%s",
				bank.logins(), killed, h.screen, b.logs.String())
		}
		time.Sleep(readingTime)
		sent := time.Now()
		h.send("1")
		if took := time.Since(sent); strings.Contains(h.screen, "still answering") && took < hopBudget/2 {
			hurried = append(hurried, took)
		}
	}
	// Whether A's work runs on (its lease is live) or B runs it, a check
	// waits for the outcome through most of the hop budget before showing
	// the waiting screen again.
	if len(hurried) > 0 {
		t.Errorf("B answered %d checks with the waiting screen after %v, not waiting out the %v hop budget for the outcome",
			len(hurried), hurried, hopBudget)
	}

	if n := queryInt(t, db, `SELECT count(*) FROM links`); n != 1 {
		t.Errorf("links = %d, want 1", n)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM links WHERE phone = $1`, phone); n != 1 {
		t.Errorf("links of %s = %d, want 1", phone, n)
	}
	logins = bank.logins()
	if len(logins) != 2 {
		t.Fatalf("Mono saw %d logins, want 2: A's, lost with it, and B's", len(logins))
	}
	// A renewed its lease every third of the lease's life, so the lease
	// lapsed no sooner than two thirds of it after the kill: a login from
	// B before half of it means B did not wait for A's lease.
	if early := killed.Add(processLeaseTTL / 2); logins[1].Before(early) {
		t.Errorf("B logged in %v after A was killed, before A's %v lease could lapse: the work ran twice at once",
			logins[1].Sub(killed), processLeaseTTL)
	}

	// Nothing of the lost login counts against the phone.
	again := &handset{t: t, url: b.url, wire: atWire{}, phone: phone, session: fmt.Sprintf("after-%d", time.Now().UnixNano()), limit: 160}
	again.dial()
	again.expect("Choose bank")
	for name, logs := range map[string]string{"A": a.logs.String(), "B": b.logs.String()} {
		if strings.Contains(logs, "pass_good") {
			t.Errorf("%s's logs carry the password", name)
		}
	}
}

// launchProcess starts the binary on a config file without waiting for it
// to listen (see listen), and kills it when the test ends.
func launchProcess(t *testing.T, bin, config string) *gatewayProcess {
	t.Helper()
	p := &gatewayProcess{logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "-config", config)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// listen waits until a launched process listens, and notes its address.
func (p *gatewayProcess) listen(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(p.logs.String()); m != nil {
			p.url = "http://" + m[1]
			return
		}
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup
			t.Fatalf("gateway exited (%v) before it listened:\n%s", err, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("gateway did not listen within %v:\n%s", within, p.logs.String())
}

func TestTwoInstancesStartingTogetherMigrateOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin := buildGateway(t)
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_process"})
	monoSrv := httptest.NewServer(sb)
	t.Cleanup(func() { monoSrv.Close(); sb.Close() })
	files, err := filepath.Glob(filepath.Join("store", "postgres", "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found (%v)", err)
	}
	db := pgtest.URL(t)
	configs := []string{clusterConfig(t, monoSrv.URL, db, "4s"), clusterConfig(t, monoSrv.URL, db, "4s")}

	// Both processes are started before either is waited for: both find
	// the fresh database unmigrated.
	launched := time.Now()
	procs := make([]*gatewayProcess, len(configs))
	for i, config := range configs {
		procs[i] = launchProcess(t, bin, config)
	}
	for i, p := range procs {
		p.listen(t, 30*time.Second)
		t.Logf("instance %d listens %v after both were started", i, time.Since(launched).Round(time.Millisecond))
	}

	for i, p := range procs {
		h := &handset{t: t, url: p.url, wire: atWire{}, phone: fmt.Sprintf("+23480720000%02d", i), session: fmt.Sprintf("together-%d-%d", i, time.Now().UnixNano()), limit: 160}
		h.dial()
		h.expect("Choose bank")
	}
	// One conversation over both, hop by hop: they share the one schema.
	h := &handset{t: t, wire: atWire{}, phone: "+2348072000099", session: fmt.Sprintf("together-both-%d", time.Now().UnixNano()), limit: 160}
	for _, p := range procs {
		h.urls = append(h.urls, p.url)
	}
	h.dial()
	h.send("1")
	h.send("user_good")
	h.send("pass_good")
	h.expect("is linked")

	if got := queryInt(t, db, `SELECT count(*) FROM ussdlink_schema_version WHERE version_id > 0`); got != len(files) {
		t.Errorf("the schema's version table records %d applied migrations, want %d (each once)", got, len(files))
	}
	if got := queryInt(t, db, `SELECT count(DISTINCT version_id) FROM ussdlink_schema_version WHERE version_id > 0`); got != len(files) {
		t.Errorf("the schema's version table records %d distinct migrations, want %d", got, len(files))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "migrate", "-config", configs[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("ussdlink migrate: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "up to date") {
		t.Errorf("ussdlink migrate after both instances started printed %q, want the schema up to date", out)
	}
}
