package main

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// builtGateway is the real binary, compiled by the first test that needs it
// into a directory of its own, and shared by every later one of this test
// process; TestMain removes the directory.
var builtGateway struct {
	once sync.Once
	dir  string // the directory made for it, "" until then
	bin  string
	err  error
}

// TestMain runs the tests, then removes the binary they built, if any.
// It stops the PostgreSQL server the cluster tests started, if any.
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if builtGateway.dir != "" {
		os.RemoveAll(builtGateway.dir)
	}
	os.Exit(code)
}

// buildGateway returns the real binary, compiling it once per test process.
func buildGateway(t *testing.T) string {
	t.Helper()
	builtGateway.once.Do(func() {
		dir, err := os.MkdirTemp("", "ussdlink-test-")
		if err != nil {
			builtGateway.err = fmt.Errorf("a directory for the binary: %w", err)
			return
		}
		builtGateway.dir = dir
		bin := filepath.Join(dir, "ussdlink")
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			builtGateway.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		builtGateway.bin = bin
	})
	if builtGateway.err != nil {
		t.Fatal(builtGateway.err)
	}
	return builtGateway.bin
}

// gatewayProcess is the gateway running as its own process.
type gatewayProcess struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

var listening = regexp.MustCompile(`"addr":"([^"]+)"[^\n]*"message":"ussdlink listening"`)

// startProcess runs the binary on a config file and waits until it listens.
func startProcess(t *testing.T, bin, config string) *gatewayProcess {
	t.Helper()
	p := launchProcess(t, bin, config)
	p.listen(t, 15*time.Second)
	return p
}

// stop signals the process and waits for it to exit.
func (p *gatewayProcess) stop(t *testing.T, sig syscall.Signal, within time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("gateway did not exit within %v after %v:\n%s", within, sig, p.logs.String())
		return nil
	}
}

// processConfig writes a config for a gateway process using an external
// Mono (so Mono's state outlives the gateway, as the real one does).
func processConfig(t *testing.T, monoURL, hopBudget string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf(`[http]
addr = "127.0.0.1:0"
[admin]
addr = ""
[store]
path = %q
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
`, filepath.Join(dir, "data", "ussdlink.db"), monoURL, hopBudget)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKilledGatewayContinuesTheSameSessionAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin := buildGateway(t)
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_process"})
	monoSrv := httptest.NewServer(sb)
	defer monoSrv.Close()

	// The flow: dial, GTBank, user name, password (OTP asked), OTP.
	inputs := []string{"1", "user_otp", "pass_good", "123456"}
	for killAfter := 0; killAfter <= len(inputs)-1; killAfter++ {
		t.Run(fmt.Sprintf("SIGKILL after hop %d", killAfter+1), func(t *testing.T) {
			config := processConfig(t, monoSrv.URL, "4s")
			p := startProcess(t, bin, config)
			h := &handset{t: t, url: p.url, wire: atWire{}, phone: fmt.Sprintf("+23480700000%02d", killAfter), session: fmt.Sprintf("kill-%d-%d", killAfter, time.Now().UnixNano()), limit: 160}
			h.dial()
			for i, in := range inputs {
				if i == killAfter {
					before := h.screen
					p.stop(t, syscall.SIGKILL, 5*time.Second)
					p = startProcess(t, bin, config)
					h.url = p.url
					// The aggregator resends the last hop: the same screen comes back.
					h.post()
					if h.screen != before {
						t.Fatalf("after restart the last hop shows\n%s\nwant\n%s", h.screen, before)
					}
				}
				h.send(in)
			}
			h.expect("is linked")
			if !h.ended {
				t.Fatalf("session did not end: %s", h.screen)
			}
		})
	}
	if got, want := sb.Calls("login"), len(inputs); got != want {
		t.Errorf("logins = %d, want %d (one per flow: a restart repeats nothing)", got, want)
	}
}

func TestTerminatedGatewayDrainsBackgroundWorkThenClosesCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin := buildGateway(t)
	sb := sandbox.New(sandbox.Options{SecretKey: "test_sk_process", SlowDelay: 1500 * time.Millisecond})
	monoSrv := httptest.NewServer(sb)
	defer monoSrv.Close()
	config := processConfig(t, monoSrv.URL, "300ms")

	p := startProcess(t, bin, config)
	h := &handset{t: t, url: p.url, wire: atWire{}, phone: "+2348070009999", session: fmt.Sprintf("term-%d", time.Now().UnixNano()), limit: 160}
	h.dial()
	h.send("1")
	h.send("user_slow")
	h.send("pass_good")
	h.expect("still answering", "Check again")

	if err := p.stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("gateway exited with %v after SIGTERM:\n%s", err, p.logs.String())
		}
	}
	logs := p.logs.String()
	if !strings.Contains(logs, "background step settled") {
		t.Fatalf("the slow login was not drained before exit:\n%s", logs)
	}
	if strings.Contains(logs, "pass_good") {
		t.Errorf("logs carry the password")
	}

	p = startProcess(t, bin, config)
	h.url = p.url
	h.send("1")
	h.expect("is linked")
	if got := sb.Calls("login"); got != 1 {
		t.Errorf("logins = %d, want 1", got)
	}
}
