package ussd_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/ussd"
)

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHandlerLogsNothingTyped(t *testing.T) {
	const typed = "S3cr3t-P@ss*#"
	tests := []struct {
		name       string
		form       func() string
		err        error
		wantStatus int
	}{
		{
			name: "malformed callback",
			form: func() string {
				f := atForm("1*3*" + typed)
				f.Del("sessionId")
				return f.Encode()
			},
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "refused hop",
			form:       func() string { return atForm("1*3*" + typed).Encode() },
			err:        &link.HopError{Reason: "transcript does not extend the previous one"},
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "internal failure",
			form:       func() string { return atForm("1*3*" + typed).Encode() },
			err:        errors.New("commit session: disk full"),
			wantStatus: fiber.StatusOK,
		},
		{
			name:       "answered",
			form:       func() string { return atForm("1*3*" + typed).Encode() },
			wantStatus: fiber.StatusOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			conv := &fakeConversation{reply: link.Reply{Text: "Enter OTP"}, err: tt.err}
			app := fiber.New()
			ussd.Mount(app, conv, zerolog.New(&logs).Level(zerolog.DebugLevel), ussd.AfricasTalking{})

			status, _, body := post(t, app, tt.form())
			if got, want := status, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			out := logs.String()
			for _, leak := range []string{typed, "S3cr3t", "1*3*"} {
				if strings.Contains(out, leak) {
					t.Errorf("log contains typed text %q:\n%s", leak, out)
				}
				if strings.Contains(body, leak) {
					t.Errorf("body %q contains typed text %q", body, leak)
				}
			}
		})
	}
}

func TestBadRequestNamesTheFieldNotItsValue(t *testing.T) {
	err := error(&ussd.BadRequest{Reason: "missing sessionId"})
	if got, want := err.Error(), "bad callback: missing sessionId"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestATParseReportsBadRequest(t *testing.T) {
	var parseErr error
	app := fiber.New()
	app.Post("/", func(c *fiber.Ctx) error {
		_, parseErr = ussd.AfricasTalking{}.Parse(c)
		return nil
	})
	form := atForm("1")
	form.Del("phoneNumber")
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := app.Test(req, -1); err != nil {
		t.Fatal(err)
	}
	var bad *ussd.BadRequest
	if !errors.As(parseErr, &bad) {
		t.Fatalf("Parse error = %v, want a *ussd.BadRequest", parseErr)
	}
	if got, want := bad.Reason, "missing phoneNumber"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
}

func TestMountServesEachDialectAtItsName(t *testing.T) {
	d := ussd.AfricasTalking{}
	if got, want := d.Name(), "africastalking"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if got, want := d.Method(), http.MethodPost; got != want {
		t.Errorf("Method() = %q, want %q", got, want)
	}
	conv := &fakeConversation{reply: link.Reply{Text: "hi"}}
	app := newATApp(conv)
	for path, want := range map[string]int{
		"/ussd/africastalking": fiber.StatusOK,
		"/ussd/hubtel":         fiber.StatusNotFound,
		"/africastalking":      fiber.StatusNotFound,
	} {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(atForm("").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got, _, _ := do(t, app, req); got != want {
			t.Errorf("POST %s = %d, want %d", path, got, want)
		}
	}
}
