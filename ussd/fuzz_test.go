package ussd_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/ussd"
)

// checkingConversation fails the fuzz run when a parsed hop breaks what
// every dialect promises the conversation.
type checkingConversation struct{ t *testing.T }

func (c checkingConversation) Close(context.Context, menus.Hop, string) error { return nil }

func (c checkingConversation) Handle(_ context.Context, h menus.Hop) (menus.Reply, error) {
	if h.SessionID == "" || h.Phone == "" {
		c.t.Errorf("hop without ids reached the conversation: %+v", h)
	}
	if !h.Cumulative {
		c.t.Errorf("Africa's Talking hop not marked cumulative")
	}
	if strings.HasPrefix(h.Transcript, "boom") {
		return menus.Reply{}, errors.New("conversation failed")
	}
	if strings.HasPrefix(h.Transcript, "bad") {
		return menus.Reply{}, &menus.HopError{Reason: "refused"}
	}
	return menus.Reply{Text: "ok " + h.SessionID, End: len(h.Transcript)%2 == 0}, nil
}

// FuzzAfricasTalkingCallback posts arbitrary bodies to the Africa's Talking
// route: it never panics, answers only 200, 400 or 413, and a 200 is always
// a CON or END reply.
func FuzzAfricasTalkingCallback(f *testing.F) {
	seeds := []struct{ ctype, body string }{
		{"application/x-www-form-urlencoded", "sessionId=ATUid_1&serviceCode=%2A384%2A123%23&phoneNumber=%2B2348030000001&networkCode=62130&text="},
		{"application/x-www-form-urlencoded", "sessionId=s&serviceCode=*384*123#&phoneNumber=%2B234803&text=1*user*p%2Ass%20%23x"},
		{"application/x-www-form-urlencoded", "sessionId=s&serviceCode=x&phoneNumber=1&text=boom"},
		{"application/x-www-form-urlencoded", "sessionId=s&serviceCode=x&phoneNumber=1&text=bad"},
		{"application/x-www-form-urlencoded", "sessionId=%ff%fe&serviceCode=%00&phoneNumber=%2B&text=%e2%82"},
		{"application/json", `{"sessionId":"s"}`},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"sessionId\"\r\n\r\ns\r\n--x--"},
		{"", "&&&===%%%"},
	}
	for _, s := range seeds {
		f.Add(s.ctype, s.body)
	}
	f.Fuzz(func(t *testing.T, ctype, body string) {
		app := fiber.New(fiber.Config{BodyLimit: 16 * 1024})
		ussd.Mount(app, checkingConversation{t}, zerolog.Nop(), ussd.AfricasTalking{})
		req := httptest.NewRequest(http.MethodPost, "/ussd/africastalking", strings.NewReader(body))
		if utf8.ValidString(ctype) && !strings.ContainsAny(ctype, "\r\n\x00") {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			return // the request itself could not be written: nothing reached the handler
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case 200:
			if !strings.HasPrefix(string(got), "CON ") && !strings.HasPrefix(string(got), "END ") {
				t.Errorf("200 reply %q is not CON/END", got)
			}
		case 400, 413:
		default:
			t.Errorf("status %d for %q", resp.StatusCode, body)
		}
	})
}
