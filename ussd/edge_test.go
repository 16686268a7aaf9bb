package ussd_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/guard"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/phone"
	"github.com/ussdlink/ussdlink/ussd"
)

// edgeApp serves Africa's Talking, Hubtel and HollaTags through an Edge
// reading phones in Nigeria.
func edgeApp(conv ussd.Conversation, e ussd.Edge) *fiber.App {
	e.Conv, e.Log, e.Phones = conv, zerolog.Nop(), phone.Numbers{Region: "NG"}
	app := fiber.New()
	e.Mount(app, ussd.AfricasTalking{}, ussd.Hubtel{}, ussd.HollaTags{})
	return app
}

func atRequest(form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, atPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestTheEdgeHandsOnEveryPhoneInE164(t *testing.T) {
	for _, p := range []string{"2348031000007", "+2348031000007", "002348031000007", "08031000007"} {
		conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
		form := atForm("")
		form.Set("phoneNumber", p)
		if status, _, body := do(t, edgeApp(conv, ussd.Edge{}), atRequest(form)); status != fiber.StatusOK {
			t.Fatalf("%s: %d %q", p, status, body)
		}
		if hops := conv.calls(); len(hops) != 1 || hops[0].Phone != "+2348031000007" {
			t.Errorf("%s reached the conversation as %+v, want +2348031000007", p, hops)
		}
	}
}

func TestTheRateLimitCountsOnePhoneHoweverItIsWritten(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
	app := edgeApp(conv, ussd.Edge{PhoneRate: guard.NewLimiter(2, time.Now)})
	for i, p := range []string{"2348031000007", "08031000007", "+2348031000007"} {
		form := atForm("")
		form.Set("phoneNumber", p)
		_, _, body := do(t, app, atRequest(form))
		if over := strings.Contains(body, "Too many requests"); over != (i == 2) {
			t.Errorf("hop %d (%s): %q", i+1, p, body)
		}
	}
	if n := len(conv.calls()); n != 2 {
		t.Errorf("conversation called %d times, want 2", n)
	}
}

func TestAPhoneThatIsNotOneNeverReachesTheConversation(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "must not be sent"}}
	form := atForm("1*secret")
	form.Set("phoneNumber", "+2340000000000")
	status, _, body := do(t, edgeApp(conv, ussd.Edge{}), atRequest(form))
	if status != fiber.StatusOK || !strings.HasPrefix(body, "END ") || !strings.Contains(body, "phone number") {
		t.Errorf("%d %q, want a polite END", status, body)
	}
	form.Set("status", "Failed")
	events := httptest.NewRequest(http.MethodPost, "/ussd/africastalking/events", strings.NewReader(form.Encode()))
	events.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, _, body := do(t, edgeApp(conv, ussd.Edge{}), events); status != fiber.StatusBadRequest || !strings.HasPrefix(body, "bad request: ") {
		t.Errorf("session end: %d %q, want 400 with a reason", status, body)
	}
	if len(conv.calls()) != 0 || len(conv.closed) != 0 {
		t.Errorf("the conversation was reached: %d hops, %d closes", len(conv.calls()), len(conv.closed))
	}
}

func TestAnEmptyServiceCodeIsTheConfiguredOne(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
	form := atForm("")
	form.Set("serviceCode", "")
	status, _, body := do(t, edgeApp(conv, ussd.Edge{ServiceCode: "*384*123#"}), atRequest(form))
	if status != fiber.StatusOK {
		t.Fatalf("%d %q, want 200", status, body)
	}
	if hops := conv.calls(); len(hops) != 1 || hops[0].ServiceCode != "*384*123#" {
		t.Errorf("hops %+v, want the configured service code", hops)
	}
}

func TestHostileDialledStringsNeverReachTheConversation(t *testing.T) {
	hostile := map[string]string{
		"a NUL":         "*713*22\x00#",
		"an escape":     "*713*\x1b[2J#",
		"invalid UTF-8": "*713*\xff#",
		"oversized":     "*713*" + strings.Repeat("2", 100) + "#",
	}
	for name, d := range hostile {
		requests := map[string]*http.Request{
			"hubtel": jsonRequest(hubtelPath, `{"Type":"Initiation","Mobile":"233244123456","SessionId":"h1","ServiceCode":"*713#","Message":"`+
				strings.NewReplacer("\x00", `\u0000`, "\x1b", `\u001b`).Replace(d)+`","Sequence":1}`),
			"hollatags": httptest.NewRequest(http.MethodGet, "/ussd/hollatags?"+url.Values{"session_msisdn": {"2348030000001"},
				"session_operation": {"begin"}, "session_msg": {d}, "session_id": {"x1"}, "session_from": {"*713#"}}.Encode(), nil),
		}
		for dialect, req := range requests {
			t.Run(dialect+" "+name, func(t *testing.T) {
				conv := &fakeConversation{reply: link.Reply{Text: "must not be sent"}}
				status, _, body := do(t, edgeApp(conv, ussd.Edge{}), req)
				if status != fiber.StatusBadRequest || !strings.HasPrefix(body, "bad request: dialled string ") {
					t.Errorf("%d %q, want 400 naming the dialled string", status, body)
				}
				if n := len(conv.calls()); n != 0 {
					t.Errorf("conversation called %d times", n)
				}
			})
		}
	}
}

// edgeObserver records what the edge reports.
type edgeObserver struct {
	hops     []string // dialect/network/screen
	refusals []string
}

func (o *edgeObserver) Hop(dialect, network, screen string, _ time.Duration) {
	o.hops = append(o.hops, dialect+"/"+network+"/"+screen)
}

func (o *edgeObserver) Refused(reason string) { o.refusals = append(o.refusals, reason) }

func TestTheEdgeNamesTheDialectAndReportsEveryHop(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "Choose bank", Screen: "banks"}}
	obs := &edgeObserver{}
	app := edgeApp(conv, ussd.Edge{Observer: obs, PhoneRate: guard.NewLimiter(1, time.Now)})
	form := atForm("")
	form.Set("networkCode", "62130")
	for range 2 { // the second is over the phone's rate
		if status, _, body := do(t, app, atRequest(form)); status != fiber.StatusOK {
			t.Fatalf("%d %q", status, body)
		}
	}
	if len(conv.dialects) != 1 || conv.dialects[0] != "africastalking" {
		t.Errorf("the conversation heard dialects %v, want africastalking", conv.dialects)
	}
	if len(obs.hops) != 1 || obs.hops[0] != "africastalking/62130/banks" || len(obs.refusals) != 1 || obs.refusals[0] != "phone_rate" {
		t.Errorf("observed hops %v, refusals %v", obs.hops, obs.refusals)
	}
}
