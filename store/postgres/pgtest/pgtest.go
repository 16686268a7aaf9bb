// Package pgtest runs a real PostgreSQL server for tests: initdb into a
// temporary directory and pg_ctl on a free loopback port, once per test
// process, with a fresh database for each test that asks. Without the
// server's binaries the tests that need it are skipped with a clear
// message, unless USSDLINK_REQUIRE_POSTGRES is set (as .ci/run sets it),
// when they fail instead.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv, when set, makes a missing PostgreSQL a failure, not a skip.
const RequireEnv = "USSDLINK_REQUIRE_POSTGRES"

// server is the one PostgreSQL of this test process.
var server struct {
	once sync.Once
	dir  string // data directory and socket, removed by Stop
	url  string // of the maintenance database
	err  error
}

// URL returns the address of a new, empty database on the process's
// PostgreSQL server, starting the server on first use. The database is
// dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	server.once.Do(start)
	if server.err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("PostgreSQL is required (%s is set) but cannot be started: %v", RequireEnv, server.err)
		}
		t.Skipf("PostgreSQL not available, skipping (install Debian's postgresql package to run this test): %v", server.err)
	}
	name := "t_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec1(ctx, server.url, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec1(ctx, server.url, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return strings.Replace(server.url, "/postgres?", "/"+name+"?", 1)
}

// Dump returns a whole plain-text dump (schema and data) of the database
// at url, made by the server's own pg_dump, so that a test can look at
// everything the database holds as an operator's backup would.
func Dump(t testing.TB, url string) []byte {
	t.Helper()
	bin, err := clientBinary("pg_dump")
	if err != nil {
		t.Fatalf("dump the test database: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--no-password", "--dbname", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dump the test database: %s: %v: %s", bin, err, stderr.Bytes())
	}
	return out
}

// Main runs a package's tests and stops the server afterwards; call it from
// TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the server, if this process started one, and removes its
// files.
func Stop() {
	if server.dir == "" {
		return
	}
	if bin, err := binary("pg_ctl"); err == nil {
		exec.Command(bin, "stop", "-D", filepath.Join(server.dir, "data"), "-m", "immediate", "-w").Run()
	}
	os.RemoveAll(server.dir)
	server.dir = ""
}

// start initialises and starts the server.
func start() {
	initdb, err := binary("initdb")
	if err != nil {
		server.err = err
		return
	}
	pgctl, err := binary("pg_ctl")
	if err != nil {
		server.err = err
		return
	}
	dir, err := os.MkdirTemp("", "ussdlink-pg-")
	if err != nil {
		server.err = err
		return
	}
	server.dir = dir
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	if out, err := asPostgresUser(cmd).CombinedOutput(); err != nil {
		server.err = fmt.Errorf("initdb: %v: %s", err, out)
		return
	}
	port, err := freePort()
	if err != nil {
		server.err = err
		return
	}
	opts := fmt.Sprintf("-p %d -k %s -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
		port, dir)
	cmd = exec.Command(pgctl, "start", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts)
	if out, err := asPostgresUser(cmd).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		server.err = fmt.Errorf("pg_ctl start: %v: %s %s", err, out, log)
		return
	}
	server.url = "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
}

// binary finds a PostgreSQL server program: on PATH, or where Debian's
// postgresql package puts it.
func binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", errors.New(name + " not found")
}

// clientBinary finds a PostgreSQL client program of the server's own
// version, next to the server's pg_ctl (pg_dump refuses a server newer
// than itself), or else as binary does.
func clientBinary(name string) (string, error) {
	if ctl, err := binary("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(ctl); err == nil {
			p := filepath.Join(filepath.Dir(real), name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return binary(name)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// exec1 runs one statement on a database.
func exec1(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
