package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser phone (/phone/ on the admin listener), driven in a real
// headless Chromium: each hop the page makes goes through the gateway's
// callback routes.

// chromium finds Debian's Chromium, or skips the test without it (fails
// instead when USSDLINK_REQUIRE_CHROMIUM=1, as .ci/run sets).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("USSDLINK_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed, and USSDLINK_REQUIRE_CHROMIUM=1: apt-get install -y chromium")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium (.ci/run installs it)")
	return ""
}

// browserPage is one tab on the browser phone, with what the page did that
// a test must see: every URL it asked for, and its errors.
type browserPage struct {
	t    *testing.T
	ctx  context.Context
	base string // the admin listener
	seen *pageEvents
}

// pageEvents is what a tab did, recorded as it happened.
type pageEvents struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

// in is the same tab, failing t (a subtest) instead.
func (p *browserPage) in(t *testing.T) *browserPage {
	q := *p
	q.t = t
	return &q
}

// openBrowserPhone starts the Chromium at path on a tab of its own and
// opens the browser phone served at base/phone/ in it; both close when
// the test ends. Every step runs within deadline.
func openBrowserPhone(t *testing.T, path, base string, deadline time.Duration) *browserPage {
	t.Helper()
	resp, err := http.Get(base + "/phone/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/phone/: %d, want the browser phone", base, resp.StatusCode)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil { // starts the browser, with no deadline
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, deadline)
	t.Cleanup(cancel)

	p := &browserPage{t: t, ctx: ctx, base: base, seen: &pageEvents{}}
	if err := chromedp.Listen(tab, p.seen.record); err != nil {
		t.Fatal(err)
	}
	p.do("open the phone", chromedp.Navigate(base+"/phone/"), chromedp.WaitVisible(chromedp.CSS("#screen")))
	p.waitFor("the page's script to start", `document.getElementById('app').dataset.ready === 'true'`)
	t.Cleanup(func() { p.seen.check(t, base) })
	return p
}

// record keeps what the page asked for and what went wrong in it. It runs
// in the tab's message loop: it only appends.
func (e *pageEvents) record(ev any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		e.requests = append(e.requests, ev.Request.URL)
	case *runtime.EventExceptionThrown:
		e.errors = append(e.errors, "exception: "+ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			e.errors = append(e.errors, "console.error")
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			e.errors = append(e.errors, "log: "+ev.Entry.Text)
		}
	}
}

// check fails t for any error the page logged, and for any request that
// left the browser phone at base: the page loads nothing from outside.
func (e *pageEvents) check(t *testing.T, base string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, msg := range e.errors {
		t.Errorf("the page logged an error: %s", msg)
	}
	for _, u := range e.requests {
		if !strings.HasPrefix(u, base+"/phone/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page asked for %s, outside the browser phone", u)
		}
	}
	if len(e.requests) == 0 {
		t.Error("no request of the page was seen")
	}
}

// do runs steps in the tab, failing the test with what was being done.
func (p *browserPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v\nscreen: %q", what, err, p.screenNow())
	}
}

// waitFor waits until a JavaScript condition holds in the page.
func (p *browserPage) waitFor(what, condition string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](condition, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		p.t.Fatalf("waiting for %s: %v\nscreen: %q", what, err, p.screenNow())
	}
}

// screenNow is the phone's screen, or why it could not be read.
func (p *browserPage) screenNow() string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#screen-text")))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// hops is how many answers the phone has shown.
func (p *browserPage) hops() int {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.AttributeValue(chromedp.CSS("#app"), "data-hops"))
	if err != nil {
		p.t.Fatal(err)
	}
	n, _ := strconv.Atoi(s.Value)
	return n
}

// screenAfter waits for the answer after hop number n is on screen, open
// or ended, and returns the screen's text.
func (p *browserPage) screenAfter(n int, want ...string) string {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("answer %d", n), fmt.Sprintf(
		`(() => { const a = document.getElementById('app'); return Number(a.dataset.hops) >= %d && (a.dataset.phase === 'open' || a.dataset.phase === 'ended'); })()`, n))
	screen := p.screenNow()
	for _, w := range want {
		if !strings.Contains(screen, w) {
			p.t.Fatalf("screen %d lacks %q:\n%s", n, w, screen)
		}
	}
	return screen
}

// focusKeys types keys on the phone's screen, then Enter.
func (p *browserPage) focusKeys(keys string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{chromedp.Focus(chromedp.CSS("#screen")), chromedp.KeyEvent(keys), chromedp.KeyEvent(kb.Enter)}
}

// typeAndSend types s on the keyboard and presses Enter, and returns the
// next screen.
func (p *browserPage) typeAndSend(s string, want ...string) string {
	p.t.Helper()
	n := p.hops()
	p.do("type "+strconv.Quote(s), p.focusKeys(s)...)
	return p.screenAfter(n+1, want...)
}

// phase is the phone's state: idle, waiting, open or ended.
func (p *browserPage) phase() string {
	p.t.Helper()
	a, err := chromedp.Run(p.ctx, chromedp.AttributeValue(chromedp.CSS("#app"), "data-phase"))
	if err != nil {
		p.t.Fatal(err)
	}
	return a.Value
}

// session is the session id of the phone's last call.
func (p *browserPage) session() string {
	p.t.Helper()
	a, err := chromedp.Run(p.ctx, chromedp.AttributeValue(chromedp.CSS("#app"), "data-session"))
	if err != nil || a.Value == "" {
		p.t.Fatalf("no session id on the page: %v", err)
	}
	return a.Value
}

// line chooses the aggregator and phone number in the page's form.
func (p *browserPage) line(dialect, phone string) {
	p.t.Helper()
	p.do("choose "+dialect+" and "+phone,
		chromedp.SetValue(chromedp.CSS("#dialect"), dialect),
		chromedp.SetValue(chromedp.CSS("#msisdn"), phone),
		// as a person's edit would end
		chromedp.Evaluate[chromedp.Void](`document.getElementById('msisdn').dispatchEvent(new Event('change', {bubbles: true}))`))
}

var (
	bankOption = regexp.MustCompile(`(?m)^(\d+)\. GTBank$`)
	dialInText = regexp.MustCompile(`Dial (\*384\*123\*\d+#)`)
)

func TestBrowserPhone(t *testing.T) {
	started := time.Now()
	browser := chromium(t)
	m, _ := startGateway(t, func(c *Config) {
		c.USSD.CallbackToken = "cb-browser-token" // the page never sees it: the proxy adds it
		c.SMS.PartnerName = "Kudi Loans"
		c.Partner.APIKeys = []string{testAPIKey}
	})
	if m.AdminURL() == "" {
		t.Fatal("the admin listener is off: the browser phone is served there")
	}
	testBrowserPhone(t, m, browser, m.AdminURL())
	t.Logf("the browser phone's test took %s", time.Since(started).Round(time.Millisecond))
}

// testBrowserPhone walks the browser phone served at base/phone/ in front
// of m, in the Chromium at browser.
func testBrowserPhone(t *testing.T, m *Main, browser, base string) {

	t.Run("links an account over Africa's Talking and shows the receipt", func(t *testing.T) {
		p := openBrowserPhone(t, browser, base, 90*time.Second)
		p.line("africastalking", "+2348071000501")
		p.do("dial *384*123#", p.focusKeys("*384*123#")...)
		screen := p.screenAfter(1, "Choose bank")
		opt := bankOption.FindStringSubmatch(screen)
		if opt == nil {
			t.Fatalf("no GTBank on the bank list:\n%s", screen)
		}
		p.typeAndSend(opt[1], "GTBank")
		p.typeAndSend("user_otp")
		p.typeAndSend("pass_good", "OTP")
		p.typeAndSend("123456", "is linked")
		if got := p.phase(); got != "ended" {
			t.Errorf("phase after the link = %q, want ended", got)
		}
		p.waitFor("the receipt in the texts panel", `document.getElementById('texts').textContent.includes('is now linked to Kudi Loans')`)
		texts, err := chromedp.Run(p.ctx, chromedp.TextContent(chromedp.CSS("#texts")))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`GTBank account \*\*\*\*\d{4} is now linked`).MatchString(texts) {
			t.Errorf("texts panel = %q, want the receipt with the masked account", texts)
		}
	})

	t.Run("dials over every other aggregator and hangs up", func(t *testing.T) {
		p := openBrowserPhone(t, browser, base, 90*time.Second)
		tests := []struct {
			dialect, phone string
			keypad         bool   // dial and hang up with the phone's own keys, not the form and the keyboard
			closed         string // what the gateway records of the hang-up; "" for an aggregator that sends none
		}{
			{dialect: "hubtel", phone: "+233241000502", keypad: true, closed: "Release"},
			{dialect: "arkesel", phone: "+233241000503"},
			{dialect: "nalo", phone: "+233241000504"},
			{dialect: "hollatags", phone: "+2348071000505", closed: "End"},
		}
		for _, tt := range tests {
			t.Run(tt.dialect, func(t *testing.T) {
				p := p.in(t)
				n := p.hops()
				p.line(tt.dialect, tt.phone)
				if tt.keypad {
					var keys []chromedp.Action[chromedp.Void]
					for _, k := range "*384*123#" {
						keys = append(keys, chromedp.Click(chromedp.CSS(fmt.Sprintf(`.keypad [data-key=%q]`, string(k)))))
					}
					p.do("dial on the keypad", append(keys, chromedp.Click(chromedp.CSS("#call")))...)
				} else {
					p.do("dial from the form", chromedp.Click(chromedp.CSS("#dial")))
				}
				screen := p.screenAfter(n+1, "Choose bank", "98 More")
				if got := p.phase(); got != "open" {
					t.Fatalf("phase on the bank list = %q, want open", got)
				}
				opt := bankOption.FindStringSubmatch(screen)
				if opt == nil {
					t.Fatalf("no GTBank on the bank list:\n%s", screen)
				}
				p.typeAndSend(opt[1], "GTBank")
				id := p.session()
				if tt.keypad {
					p.do("hang up", chromedp.Click(chromedp.CSS("#hangup")))
				} else {
					p.do("hang up", chromedp.Focus(chromedp.CSS("#screen")), chromedp.KeyEvent(kb.Escape))
				}
				p.waitFor("the hang-up", `document.getElementById('screen-text').textContent === 'Call ended'`)
				if tt.closed == "" {
					return
				}
				p.waitFor("the hang-up to be answered", `(() => { const w = document.getElementById('wire').textContent; return w.includes('(the hang-up)') && w.includes('→ 200'); })()`)
				s, err := storedSession(m, id)
				if err != nil {
					t.Fatal(err)
				}
				if s.Closed != tt.closed {
					t.Errorf("session closed = %q, want %q (the page's hang-up)", s.Closed, tt.closed)
				}
			})
		}
	})

	t.Run("dials an invitation's code from its text", func(t *testing.T) {
		const phone = "+2348071000506"
		status, inv := call(t, m, "POST", "/v1/links", testAPIKey,
			map[string]any{"phone": phone, "reference": "browser-1", "institution": "5f2d08be60b92e2888287702", "auth_method": "internet_banking", "notify": "sms"}, nil)
		if status != http.StatusCreated {
			t.Fatalf("create the invitation: %d %v", status, inv)
		}
		p := openBrowserPhone(t, browser, base, 60*time.Second)
		p.line("africastalking", phone)
		p.waitFor("the invitation in the texts panel", `document.getElementById('texts').textContent.includes('invites you')`)
		texts, err := chromedp.Run(p.ctx, chromedp.TextContent(chromedp.CSS("#texts")))
		if err != nil {
			t.Fatal(err)
		}
		code := dialInText.FindStringSubmatch(texts)
		if code == nil || code[1] != inv["dial"] {
			t.Fatalf("texts panel = %q, want the invitation's code %v", texts, inv["dial"])
		}
		p.do("dial "+code[1], p.focusKeys(code[1])...)
		p.screenAfter(1, "Log in to GTBank")
		p.typeAndSend("user_good")
		p.typeAndSend("pass_good", "GTBank", "is linked")
	})
}
