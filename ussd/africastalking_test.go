package ussd_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/ussd"
)

// fakeConversation records the hops it is given and answers with a
// configured reply or error.
type fakeConversation struct {
	mu       sync.Mutex
	hops     []link.Hop // as handled, without their dialect (kept in dialects)
	dialects []string
	closed   []link.Hop
	detail   []string
	reply    link.Reply
	err      error
}

func (f *fakeConversation) Close(_ context.Context, hop link.Hop, detail string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, hop)
	f.detail = append(f.detail, detail)
	return f.err
}

func (f *fakeConversation) Handle(_ context.Context, hop link.Hop) (link.Reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dialects = append(f.dialects, hop.Dialect)
	hop.Dialect = ""
	f.hops = append(f.hops, hop)
	return f.reply, f.err
}

func (f *fakeConversation) calls() []link.Hop {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]link.Hop(nil), f.hops...)
}

const atPath = "/ussd/africastalking"

func newATApp(conv ussd.Conversation) *fiber.App {
	app := fiber.New()
	ussd.Mount(app, conv, zerolog.Nop(), ussd.AfricasTalking{})
	return app
}

// atForm is a well-formed Africa's Talking callback.
func atForm(text string) url.Values {
	return url.Values{
		"sessionId":   {"ATUid_9f8e7d6c5b4a"},
		"serviceCode": {"*384*123#"},
		"phoneNumber": {"+2348030000001"},
		"networkCode": {"62130"},
		"text":        {text},
	}
}

// post sends a form body as Africa's Talking does and returns status,
// content type and body.
func post(t *testing.T, app *fiber.App, body string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, atPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, app, req)
}

func do(t *testing.T, app *fiber.App, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatalf("app.Test: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestATFormPostParsesIntoHop(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "Pick your bank"}}
	app := newATApp(conv)

	// Encoded by hand as Africa's Talking sends it: "+" as %2B.
	body := "sessionId=ATUid_9f8e7d6c5b4a&serviceCode=%2A384%2A123%23&phoneNumber=%2B2348030000001&networkCode=62130&text=1%2A3"
	status, _, _ := post(t, app, body)
	if got, want := status, fiber.StatusOK; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	hops := conv.calls()
	if got, want := len(hops), 1; got != want {
		t.Fatalf("conversation called %d times, want %d", got, want)
	}
	want := link.Hop{
		SessionID:   "ATUid_9f8e7d6c5b4a",
		Phone:       "+2348030000001",
		ServiceCode: "*384*123#",
		Network:     "62130",
		Transcript:  "1*3",
		Cumulative:  true,
	}
	if got := hops[0]; got != want {
		t.Errorf("hop = %+v, want %+v", got, want)
	}
}

func TestATFirstHopHasEmptyTranscript(t *testing.T) {
	for name, body := range map[string]string{
		"text empty":   atForm("").Encode(),
		"text missing": "sessionId=s1&serviceCode=%2A384%2A123%23&phoneNumber=%2B2348030000001&networkCode=99999",
	} {
		t.Run(name, func(t *testing.T) {
			conv := &fakeConversation{reply: link.Reply{Text: "Welcome"}}
			status, _, _ := post(t, newATApp(conv), body)
			if got, want := status, fiber.StatusOK; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			hops := conv.calls()
			if len(hops) != 1 {
				t.Fatalf("conversation called %d times, want 1", len(hops))
			}
			if got, want := hops[0].Transcript, ""; got != want {
				t.Errorf("Transcript = %q, want %q", got, want)
			}
			if !hops[0].Cumulative {
				t.Error("Cumulative = false, want true")
			}
		})
	}
}

func TestATTranscriptArrivesByteExact(t *testing.T) {
	tests := []struct {
		name string
		body string // the text field as encoded on the wire
		want string
	}{
		{"stars, hash and spaces", url.Values{"text": {"1*3*my user*p@ss#w*rd"}}.Encode(), "1*3*my user*p@ss#w*rd"},
		{"leading and trailing spaces kept", url.Values{"text": {"  1*3* pass "}}.Encode(), "  1*3* pass "},
		{"percent-encoded spaces", "text=1%2A3%2Amy%20pass%20%23", "1*3*my pass #"},
		{"plus as space", "text=1*3*my+pass", "1*3*my pass"},
		{"raw stars and encoded hash", "text=1*2*%23*%2A", "1*2*#**"},
		{"empty inputs between stars", "text=1**3", "1**3"},
		{"non-ASCII", url.Values{"text": {"1*Ọlá*ß"}}.Encode(), "1*Ọlá*ß"},
		{"percent sign", url.Values{"text": {"100%*50%25"}}.Encode(), "100%*50%25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
			body := "sessionId=s1&serviceCode=%2A384%2A123%23&phoneNumber=%2B2348030000001&networkCode=62130&" + tt.body
			status, _, _ := post(t, newATApp(conv), body)
			if got, want := status, fiber.StatusOK; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			hops := conv.calls()
			if len(hops) != 1 {
				t.Fatalf("conversation called %d times, want 1", len(hops))
			}
			if got, want := hops[0].Transcript, tt.want; got != want {
				t.Errorf("Transcript = %q, want %q", got, want)
			}
		})
	}
}

func TestATReplyStartsWithCONOrEND(t *testing.T) {
	tests := []struct {
		name  string
		reply link.Reply
		want  string
	}{
		{"continues", link.Reply{Text: "1. GTBank\n2. Access"}, "CON 1. GTBank\n2. Access"},
		{"ends", link.Reply{Text: "Linked GTBank ******7890", End: true}, "END Linked GTBank ******7890"},
		{"empty continue", link.Reply{}, "CON "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConversation{reply: tt.reply}
			status, ctype, body := post(t, newATApp(conv), atForm("1").Encode())
			if got, want := status, fiber.StatusOK; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if !strings.HasPrefix(ctype, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ctype)
			}
			if got, want := body, tt.want; got != want {
				t.Errorf("body = %q, want %q", got, want)
			}
		})
	}
}

func TestATMissingFieldIs400AndNeverReachesConversation(t *testing.T) {
	const typed = "S3cr3t-P@ss*#"
	for _, missing := range []string{"sessionId", "phoneNumber"} {
		for _, how := range []string{"absent", "empty", "blank"} {
			t.Run(missing+" "+how, func(t *testing.T) {
				form := atForm("1*3*" + typed)
				switch how {
				case "absent":
					form.Del(missing)
				case "empty":
					form.Set(missing, "")
				case "blank":
					form.Set(missing, "  ")
				}
				conv := &fakeConversation{reply: link.Reply{Text: "should not be sent"}}
				status, _, body := post(t, newATApp(conv), form.Encode())
				if got, want := status, fiber.StatusBadRequest; got != want {
					t.Errorf("status = %d, want %d", got, want)
				}
				if n := len(conv.calls()); n != 0 {
					t.Errorf("conversation called %d times for a malformed callback", n)
				}
				for _, leak := range []string{typed, "S3cr3t", url.QueryEscape(typed)} {
					if strings.Contains(body, leak) {
						t.Errorf("400 body %q contains typed text %q", body, leak)
					}
				}
			})
		}
	}
}

func TestATNonFormBodyIs400(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "no"}}
	req := httptest.NewRequest(http.MethodPost, atPath,
		strings.NewReader(`{"sessionId":"s1","phoneNumber":"+2348030000001","serviceCode":"*384*123#","text":"S3cr3t-P@ss*#"}`))
	req.Header.Set("Content-Type", "application/json")
	status, _, body := do(t, newATApp(conv), req)
	if got, want := status, fiber.StatusBadRequest; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if n := len(conv.calls()); n != 0 {
		t.Errorf("conversation called %d times", n)
	}
	if strings.Contains(body, "S3cr3t") {
		t.Errorf("body %q contains typed text", body)
	}
}

func TestATHopErrorIs400(t *testing.T) {
	const typed = "otp-918273"
	conv := &fakeConversation{err: &link.HopError{Reason: "transcript does not extend the previous one"}}
	status, _, body := post(t, newATApp(conv), atForm("1*"+typed).Encode())
	if got, want := status, fiber.StatusBadRequest; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if strings.Contains(body, typed) {
		t.Errorf("body %q contains typed text", body)
	}
	if strings.HasPrefix(body, "CON ") {
		t.Errorf("body %q continues the session", body)
	}
}

func TestATWrappedHopErrorIs400(t *testing.T) {
	conv := &fakeConversation{err: errorsJoin(&link.HopError{Reason: "phone differs"})}
	status, _, _ := post(t, newATApp(conv), atForm("1").Encode())
	if got, want := status, fiber.StatusBadRequest; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
}

func errorsJoin(err error) error { return errors.Join(errors.New("handle"), err) }

func TestATInternalErrorIsPoliteENDWithoutDetails(t *testing.T) {
	const detail = "bolt: commit session ATUid_x: disk quota exceeded at /var/lib/ussdlink"
	conv := &fakeConversation{err: errors.New(detail)}
	status, ctype, body := post(t, newATApp(conv), atForm("1*3").Encode())
	if got, want := status, fiber.StatusOK; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if !strings.HasPrefix(ctype, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ctype)
	}
	if !strings.HasPrefix(body, "END ") || len(strings.TrimSpace(strings.TrimPrefix(body, "END "))) == 0 {
		t.Errorf("body = %q, want a polite END screen", body)
	}
	for _, leak := range []string{detail, "bolt", "disk quota", "/var/lib"} {
		if strings.Contains(body, leak) {
			t.Errorf("body %q reveals the error (%q)", body, leak)
		}
	}
}

func TestATGETIsNotServed(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "no"}}
	req := httptest.NewRequest(http.MethodGet, atPath+"?"+atForm("1").Encode(), nil)
	status, _, body := do(t, newATApp(conv), req)
	if status != fiber.StatusMethodNotAllowed && status != fiber.StatusNotFound {
		t.Errorf("GET status = %d (%q), want 405 or 404", status, body)
	}
	if n := len(conv.calls()); n != 0 {
		t.Errorf("conversation called %d times for a GET", n)
	}
}

func TestATHopStringsSurviveLaterRequests(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
	app := newATApp(conv)

	first := url.Values{
		"sessionId":   {"ATUid_first_aaaaaaaa"},
		"serviceCode": {"*384*123#"},
		"phoneNumber": {"+2348030000001"},
		"networkCode": {"62130"},
		"text":        {"1*3*first-pass*#"},
	}
	// Same lengths, different bytes: a reused buffer would overwrite in place.
	second := url.Values{
		"sessionId":   {"ATUid_other_bbbbbbbb"[:len("ATUid_first_aaaaaaaa")]},
		"serviceCode": {"*999*456#"},
		"phoneNumber": {"+2348099990009"},
		"networkCode": {"63902"},
		"text":        {"2*9*zzzzz-zzzz*#"},
	}
	for _, form := range []url.Values{first, second, second} {
		if status, _, _ := post(t, app, form.Encode()); status != fiber.StatusOK {
			t.Fatalf("status = %d, want 200", status)
		}
	}
	hops := conv.calls()
	if len(hops) != 3 {
		t.Fatalf("conversation called %d times, want 3", len(hops))
	}
	want := link.Hop{
		SessionID:   "ATUid_first_aaaaaaaa",
		Phone:       "+2348030000001",
		ServiceCode: "*384*123#",
		Network:     "62130",
		Transcript:  "1*3*first-pass*#",
		Cumulative:  true,
	}
	if got := hops[0]; got != want {
		t.Errorf("first hop after later requests = %+v, want %+v", got, want)
	}
	if got, want := hops[1].Transcript, "2*9*zzzzz-zzzz*#"; got != want {
		t.Errorf("second hop Transcript = %q, want %q", got, want)
	}
}
