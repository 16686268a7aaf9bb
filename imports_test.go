package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this module's import path.
const module = "github.com/ussdlink/ussdlink"

// importRules is the package table of the README as the compiler sees it:
// each package of ours, and the packages of ours it may import. A new
// package, or a new dependency between two, is a decision: it goes into
// this table (and the README) on purpose. Test files may import more (a
// backend's tests import the store's contract suite, end-to-end tests the
// store).
var importRules = map[string][]string{
	"":                      {"*"}, // main wires everything
	"link":                  {},
	"gsm":                   {},
	"phone":                 {},
	"keyed":                 {},
	"catalog":               {},
	"guard":                 {},
	"reqid":                 {},
	"metrics":               {"link"},
	"admin":                 {},
	"webphone":              {"guard", "ussd"},
	"mono":                  {"reqid", "wirejson"},
	"mono/sandbox":          {"mono"},
	"screen":                {"gsm"},
	"seal":                  {},
	"store":                 {"link", "seal", "store/kit"},
	"store/kit":             {"link", "wirejson"},
	"store/storetest":       {"link"},
	"store/postgres":        {"link", "seal", "store/kit"},
	"store/postgres/pgtest": {},
	"outbox":                {"link"},
	"menus":                 {"link", "mono", "gsm", "phone", "screen", "catalog", "keyed", "reqid", "lang", "wirejson"},
	"ussd":                  {"link", "guard", "phone", "reqid"},
	"partner":               {"link", "mono", "outbox", "phone", "keyed", "funnel"},
	"funnel":                {"link"},
	"lang":                  {"gsm"},
	"sms":                   {"link", "outbox", "phone", "gsm", "keyed", "lang", "wirejson"},
	"wirejson":              {},
}

// thirdParty says which of our packages may import a library: the HTTP
// framework stays at the edges, the database in the store, the state
// machine in the conversation.
var thirdParty = map[string][]string{
	"github.com/gofiber/fiber/v2":                    {"", "ussd", "partner", "sms", "guard"},
	"go.etcd.io/bbolt":                               {"store"},
	"github.com/looplab/fsm":                         {"menus"},
	"github.com/jackc/pgx/v5":                        {"store/postgres", "store/postgres/pgtest"},
	"github.com/pressly/goose/v3":                    {"store/postgres"},
	"github.com/prometheus/client_golang/prometheus": {"metrics", "admin"},
	"github.com/segmentio/encoding/json":             {"wirejson"},
	"github.com/valyala/fasthttp":                    {"mono"},
}

func TestImportsFollowThePackageTable(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := ours(fields[0])
		seen[pkg] = true
		may, listed := importRules[pkg]
		if !listed {
			t.Errorf("package %q is not in the package table: give it one job and the imports it may have", fields[0])
			continue
		}
		for _, imp := range fields[1:] {
			if dep, internal := ourImport(imp); internal {
				if !slices.Contains(may, "*") && !slices.Contains(may, dep) {
					t.Errorf("%s imports %s, which the package table does not allow", fields[0], imp)
				}
				continue
			}
			for lib, allowed := range thirdParty {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !slices.Contains(allowed, pkg) {
					t.Errorf("%s imports %s, which only %v may", fields[0], imp, allowed)
				}
			}
		}
	}
	for pkg := range importRules {
		if !seen[pkg] {
			t.Errorf("the package table lists %q, which does not exist", pkg)
		}
	}
}

// ours is a package path relative to the module ("" for main).
func ours(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

// ourImport reports whether imp is a package of this module, and which.
func ourImport(imp string) (string, bool) {
	if imp != module && !strings.HasPrefix(imp, module+"/") {
		return "", false
	}
	return ours(imp), true
}
