package ussd_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/ussd"
)

// checkingConversation fails the fuzz run when a parsed hop breaks what
// every dialect promises the conversation.
type checkingConversation struct{ t *testing.T }

func (c checkingConversation) Close(context.Context, link.Hop, string) error { return nil }

func (c checkingConversation) Handle(_ context.Context, h link.Hop) (link.Reply, error) {
	if h.SessionID == "" || h.Phone == "" {
		c.t.Errorf("hop without ids reached the conversation: %+v", h)
	}
	if h.Cumulative && h.Input != "" {
		c.t.Errorf("a cumulative hop carries a latest input too: %+v", h)
	}
	text := h.Transcript + h.Input
	if strings.HasPrefix(text, "boom") {
		return link.Reply{}, errors.New("conversation failed")
	}
	if strings.HasPrefix(text, "bad") {
		return link.Reply{}, &link.HopError{Reason: "refused"}
	}
	return link.Reply{Text: "ok " + h.SessionID, End: len(text)%2 == 0}, nil
}

// FuzzDialectCallbacks sends arbitrary callbacks to every dialect's route
// (the fuzzer picks the dialect): no panic, only 200, 400 or 413, and a 200
// is a reply in that dialect's format.
func FuzzDialectCallbacks(f *testing.F) {
	seeds := []struct {
		which       uint8
		ctype, body string
	}{
		{0, "application/x-www-form-urlencoded", "sessionId=ATUid_1&serviceCode=%2A384%2A123%23&phoneNumber=%2B2348030000001&networkCode=62130&text="},
		{0, "application/x-www-form-urlencoded", "sessionId=s&serviceCode=*384*123#&phoneNumber=%2B234803&text=1*user*p%2Ass%20%23x"},
		{0, "application/x-www-form-urlencoded", "sessionId=s&serviceCode=x&phoneNumber=1&text=boom"},
		{0, "application/x-www-form-urlencoded", "sessionId=%ff%fe&serviceCode=%00&phoneNumber=%2B&text=%e2%82"},
		{1, "application/json", `{"Type":"Initiation","Mobile":"233244000001","SessionId":"h1","ServiceCode":"713","Message":"*713*22#","Operator":"mtn","Sequence":1}`},
		{1, "application/json", `{"Type":"Response","Mobile":"233244000001","SessionId":"h1","Message":"bad","Sequence":"2"}`},
		{1, "application/json", `{"Type":"Timeout","Mobile":"233244000001","SessionId":"h1"}`},
		{2, "application/json", `{"sessionID":"a1","userID":"u","newSession":true,"msisdn":"233200000001","userData":"*928*1#","network":"MTN"}`},
		{2, "application/json", `{"sessionID":"a1","userID":"u","newSession":"false","msisdn":"233200000001","userData":"boom"}`},
		{3, "application/json", `{"USERID":"n","MSISDN":"233200000001","USERDATA":"*920*22#","MSGTYPE":true,"NETWORK":"MTN","SESSIONID":"n1"}`},
		{4, "", "session_msisdn=2348030000001&session_operation=begin&session_msg=%2A384%2A123%23&session_id=x1&session_from=%2A384%2A123%23&session_mno=MTN"},
		{4, "", "session_msisdn=2348030000001&session_operation=end&session_id=x1"},
		{1, "application/json", `[1,2,3]`},
		{3, "application/json", `{"MSGTYPE":"maybe"}`},
	}
	for _, s := range seeds {
		f.Add(s.which, s.ctype, s.body)
	}
	dialects := ussd.Dialects()
	f.Fuzz(func(t *testing.T, which uint8, ctype, body string) {
		d := dialects[int(which)%len(dialects)]
		app := fiber.New(fiber.Config{BodyLimit: 16 * 1024})
		ussd.Mount(app, checkingConversation{t}, zerolog.Nop(), d)
		path := "/ussd/" + d.Name()
		var req *http.Request
		if d.Method() == http.MethodGet {
			req = httptest.NewRequest(http.MethodGet, "/", nil)
			if strings.IndexFunc(body, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '#' }) >= 0 {
				// No request line carries such bytes raw: send them encoded.
				body = "session_msg=" + url.QueryEscape(body)
			}
			req.URL.Path, req.URL.RawQuery = path, body
			req.RequestURI = req.URL.RequestURI()
		} else {
			req = httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		}
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
			if _, isAT := d.(ussd.AfricasTalking); isAT {
				if !strings.HasPrefix(string(got), "CON ") && !strings.HasPrefix(string(got), "END ") {
					t.Errorf("200 reply %q is not CON/END", got)
				}
			} else if !json.Valid(got) {
				t.Errorf("%s: 200 reply %q is not JSON", d.Name(), got)
			}
		case 400, 413:
		default:
			t.Errorf("%s: status %d for %q", d.Name(), resp.StatusCode, body)
		}
	})
}
