package ussd_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/ussd"
)

// Tests of the Ghanaian and Nigerian dialects (Hubtel, Arkesel, Nalo,
// HollaTags), Africa's Talking's session-end notification, and what every
// dialect must do with a reply, a conversation error and a refused hop. The
// wire formats are those of docs/telco-dialects.md.

// dialectApp mounts dialects on a fresh Fiber app with no auth or rate limit.
func dialectApp(conv ussd.Conversation, dialects ...ussd.Dialect) *fiber.App {
	app := fiber.New()
	ussd.Mount(app, conv, zerolog.Nop(), dialects...)
	return app
}

// jsonRequest is a JSON POST as Hubtel, Arkesel and Nalo send it.
func jsonRequest(path, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// formRequest is a form POST as Africa's Talking sends it.
func formRequest(path, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// hollaTagsRequest is a GET with a query encoded by hand, as HollaTags sends it.
func hollaTagsRequest(rawQuery string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "/ussd/hollatags?"+rawQuery, nil)
}

// closedCalls returns what the conversation's Close was given.
func closedCalls(f *fakeConversation) ([]link.Hop, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]link.Hop(nil), f.closed...), append([]string(nil), f.detail...)
}

// decodeObject reads a JSON object reply into a map.
func decodeObject(t *testing.T, ctype, body string) map[string]any {
	t.Helper()
	if !strings.HasPrefix(ctype, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ctype)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("reply %q is not a JSON object: %v", body, err)
	}
	return out
}

// checkCalls compares what Handle and Close received with what a case wants;
// a nil want means the method must not have been called.
func checkCalls(t *testing.T, conv *fakeConversation, handled, closed *link.Hop) {
	t.Helper()
	hops := conv.calls()
	switch {
	case handled == nil && len(hops) != 0:
		t.Errorf("Handle called %d times (%+v), want never", len(hops), hops)
	case handled != nil && len(hops) != 1:
		t.Errorf("Handle called %d times, want once", len(hops))
	case handled != nil && hops[0] != *handled:
		t.Errorf("Handle got hop\n  %+v\nwant\n  %+v", hops[0], *handled)
	}
	got, details := closedCalls(conv)
	switch {
	case closed == nil && len(got) != 0:
		t.Errorf("Close called %d times (%+v), want never", len(got), got)
	case closed != nil && len(got) != 1:
		t.Errorf("Close called %d times, want once", len(got))
	case closed != nil:
		h := got[0]
		if h.SessionID != closed.SessionID || h.Phone != closed.Phone || h.Closing != closed.Closing {
			t.Errorf("Close got SessionID %q Phone %q Closing %q, want %q %q %q",
				h.SessionID, h.Phone, h.Closing, closed.SessionID, closed.Phone, closed.Closing)
		}
		if details[0] != "" {
			t.Errorf("Close got detail %q, want none from the aggregator", details[0])
		}
	}
}

// ---------------------------------------------------------------- Hubtel

const (
	hubtelPath    = "/ussd/hubtel"
	hubtelSession = "3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6"
	hubtelMobile  = "233244123456"
)

func TestHubtelDialect(t *testing.T) {
	const continues = "Welcome to LinkUp\n1. Link a bank\n2. Help"
	tests := []struct {
		name       string
		body       string
		reply      link.Reply
		wantStatus int
		handled    *link.Hop      // what Handle must get; nil: not called
		closed     *link.Hop      // what Close must get; nil: not called
		wantOut    map[string]any // the reply without ClientState
	}{
		{
			name:       "Initiation is a new hop carrying the dialled string, Sequence 1 and the phone in E.164",
			body:       `{"Type":"Initiation","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"*713*22#","Operator":"MTN","Sequence":1,"ClientState":""}`,
			reply:      link.Reply{Text: continues},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, ServiceCode: "*713#",
				Network: "mtn", New: true, Dialled: "*713*22#", Seq: 1},
			wantOut: map[string]any{"Type": "Response", "Message": continues},
		},
		{
			name:       "Response carries only the latest input and the Sequence number",
			body:       `{"Type":"Response","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"2","Operator":"Vodafone","Sequence":2,"ClientState":"seq:1"}`,
			reply:      link.Reply{Text: "Enter your username"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, ServiceCode: "*713#",
				Network: "vodafone", Input: "2", Seq: 2},
			wantOut: map[string]any{"Type": "Response", "Message": "Enter your username"},
		},
		{
			name:       "Sequence sent as a string is read as a number",
			body:       `{"Type":"Response","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"2","Operator":"AirtelTigo","Sequence":"3"}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, ServiceCode: "*713#",
				Network: "airteltigo", Input: "2", Seq: 3},
			wantOut: map[string]any{"Type": "Response", "Message": "ok"},
		},
		{
			name:       "Type is compared case-insensitively: initiation",
			body:       `{"Type":"initiation","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"*713*22#","Operator":"MTN","Sequence":1}`,
			reply:      link.Reply{Text: continues},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, ServiceCode: "*713#",
				Network: "mtn", New: true, Dialled: "*713*22#", Seq: 1},
			wantOut: map[string]any{"Type": "Response", "Message": continues},
		},
		{
			name:       "Type is compared case-insensitively: RESPONSE",
			body:       `{"Type":"RESPONSE","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"2","Operator":"MTN","Sequence":2}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, ServiceCode: "*713#",
				Network: "mtn", Input: "2", Seq: 2},
			wantOut: map[string]any{"Type": "Response", "Message": "ok"},
		},
		{
			name:       "Response input arrives byte-exact: spaces, stars and hashes kept",
			body:       `{"Type":"Response","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":" p@ss*w#rd ","Operator":"MTN","Sequence":4}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, ServiceCode: "*713#",
				Network: "mtn", Input: " p@ss*w#rd ", Seq: 4},
			wantOut: map[string]any{"Type": "Response", "Message": "ok"},
		},
		{
			name:       "an End reply answers Release with the reply's text",
			body:       `{"Type":"Response","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"1","Operator":"MTN","Sequence":5}`,
			reply:      link.Reply{Text: "Linked GTBank ******7890. Thank you.", End: true},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, ServiceCode: "*713#",
				Network: "mtn", Input: "1", Seq: 5},
			wantOut: map[string]any{"Type": "Release", "Message": "Linked GTBank ******7890. Thank you."},
		},
		{
			name:       "Release closes the session as Release without handling a hop",
			body:       `{"Type":"Release","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"","Operator":"MTN","Sequence":3}`,
			reply:      link.Reply{Text: "must not be sent"},
			wantStatus: fiber.StatusOK,
			closed:     &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, Closing: "Release"},
			wantOut:    map[string]any{"Type": "Release", "Message": ""},
		},
		{
			name:       "Timeout closes the session as Timeout without handling a hop",
			body:       `{"Type":"Timeout","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"","Operator":"MTN","Sequence":3}`,
			reply:      link.Reply{Text: "must not be sent"},
			wantStatus: fiber.StatusOK,
			closed:     &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, Closing: "Timeout"},
			wantOut:    map[string]any{"Type": "Release", "Message": ""},
		},
		{
			name:       "release in lower case also closes the session",
			body:       `{"Type":"release","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"","Operator":"MTN","Sequence":3}`,
			reply:      link.Reply{Text: "must not be sent"},
			wantStatus: fiber.StatusOK,
			closed:     &link.Hop{SessionID: hubtelSession, Phone: "+" + hubtelMobile, Closing: "Release"},
			wantOut:    map[string]any{"Type": "Release", "Message": ""},
		},
		{
			name:       "unknown Type is 400",
			body:       `{"Type":"Ping","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"2","Sequence":2}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing Type is 400",
			body:       `{"Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"2","Sequence":2}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing SessionId is 400",
			body:       `{"Type":"Response","Mobile":"233244123456","ServiceCode":"*713#","Message":"2","Sequence":2}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "blank SessionId is 400",
			body:       `{"Type":"Response","Mobile":"233244123456","SessionId":"  ","ServiceCode":"*713#","Message":"2","Sequence":2}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing Mobile is 400",
			body:       `{"Type":"Initiation","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"*713*22#","Sequence":1}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "Release without a SessionId is 400 and closes nothing",
			body:       `{"Type":"Release","Mobile":"233244123456","ServiceCode":"*713#","Sequence":3}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "a form body is not JSON and is 400",
			body:       `Type=Initiation&Mobile=233244123456&SessionId=3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6&Message=%2A713%2A22%23`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "truncated JSON is 400",
			body:       `{"Type":"Initiation","Mobile":"233244123456","SessionId":"3c8d`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "a JSON array is 400",
			body:       `[{"Type":"Initiation"}]`,
			wantStatus: fiber.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConversation{reply: tt.reply}
			status, ctype, body := do(t, dialectApp(conv, ussd.Hubtel{}), jsonRequest(hubtelPath, tt.body))
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, body, tt.wantStatus)
			}
			checkCalls(t, conv, tt.handled, tt.closed)
			if status != fiber.StatusOK {
				return
			}
			out := decodeObject(t, ctype, body)
			if cs, ok := out["ClientState"].(string); !ok || cs == "" {
				t.Errorf("ClientState = %#v, want a non-empty string", out["ClientState"])
			}
			delete(out, "ClientState")
			if !reflect.DeepEqual(out, tt.wantOut) {
				t.Errorf("reply = %v, want %v", out, tt.wantOut)
			}
		})
	}
}

// ---------------------------------------------------------------- Arkesel

const arkeselPath = "/ussd/arkesel"

func TestArkeselDialect(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		reply      link.Reply
		wantStatus int
		handled    *link.Hop
		wantOut    map[string]any
	}{
		{
			name:       "newSession true is a new hop carrying the dialled string",
			body:       `{"sessionID":"16590115252429751","userID":"USSD_ARKESEL","newSession":true,"msisdn":"233244123456","userData":"*928*1#","network":"MTN"}`,
			reply:      link.Reply{Text: "Welcome\n1. Link a bank"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456", ServiceCode: "*928*1#",
				Network: "mtn", New: true, Dialled: "*928*1#"},
			wantOut: map[string]any{"sessionID": "16590115252429751", "userID": "USSD_ARKESEL",
				"msisdn": "233244123456", "message": "Welcome\n1. Link a bank", "continueSession": true},
		},
		{
			name:       "newSession false carries only the latest input",
			body:       `{"sessionID":"16590115252429751","userID":"USSD_ARKESEL","newSession":false,"msisdn":"233244123456","userData":"1","network":"Vodafone"}`,
			reply:      link.Reply{Text: "Enter your username"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456",
				Network: "vodafone", Input: "1"},
			wantOut: map[string]any{"sessionID": "16590115252429751", "userID": "USSD_ARKESEL",
				"msisdn": "233244123456", "message": "Enter your username", "continueSession": true},
		},
		{
			name:       "input arrives byte-exact: spaces, stars and hashes kept",
			body:       `{"sessionID":"16590115252429751","userID":"USSD_ARKESEL","newSession":false,"msisdn":"233244123456","userData":" p@ss*w#rd ","network":"MTN"}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456",
				Network: "mtn", Input: " p@ss*w#rd "},
			wantOut: map[string]any{"sessionID": "16590115252429751", "userID": "USSD_ARKESEL",
				"msisdn": "233244123456", "message": "ok", "continueSession": true},
		},
		{
			name:       "an End reply sets continueSession false",
			body:       `{"sessionID":"16590115252429751","userID":"USSD_ARKESEL","newSession":false,"msisdn":"233244123456","userData":"1","network":"MTN"}`,
			reply:      link.Reply{Text: "Linked. Thank you.", End: true},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456",
				Network: "mtn", Input: "1"},
			wantOut: map[string]any{"sessionID": "16590115252429751", "userID": "USSD_ARKESEL",
				"msisdn": "233244123456", "message": "Linked. Thank you.", "continueSession": false},
		},
		{
			name:       "the reply echoes sessionID, userID and msisdn exactly as sent",
			body:       `{"sessionID":"0007-Ab_cd","userID":"Arkesel App 7","newSession":false,"msisdn":"+233244123456","userData":"2","network":"MTN"}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "0007-Ab_cd", Phone: "+233244123456",
				Network: "mtn", Input: "2"},
			wantOut: map[string]any{"sessionID": "0007-Ab_cd", "userID": "Arkesel App 7",
				"msisdn": "+233244123456", "message": "ok", "continueSession": true},
		},
		{
			name:       "the echo keeps surrounding spaces the hop trims",
			body:       `{"sessionID":" 16590115252429751 ","userID":" USSD_ARKESEL","newSession":false,"msisdn":"233244123456 ","userData":"2","network":"MTN"}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456",
				Network: "mtn", Input: "2"},
			wantOut: map[string]any{"sessionID": " 16590115252429751 ", "userID": " USSD_ARKESEL",
				"msisdn": "233244123456 ", "message": "ok", "continueSession": true},
		},
		{
			name:       "missing msisdn is 400",
			body:       `{"sessionID":"16590115252429751","userID":"USSD_ARKESEL","newSession":true,"userData":"*928*1#","network":"MTN"}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "blank msisdn is 400",
			body:       `{"sessionID":"16590115252429751","userID":"USSD_ARKESEL","newSession":true,"msisdn":" ","userData":"*928*1#","network":"MTN"}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing sessionID is 400",
			body:       `{"userID":"USSD_ARKESEL","newSession":true,"msisdn":"233244123456","userData":"*928*1#","network":"MTN"}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "a body that is not JSON is 400",
			body:       `sessionID=1&msisdn=233244123456`,
			wantStatus: fiber.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConversation{reply: tt.reply}
			status, ctype, body := do(t, dialectApp(conv, ussd.Arkesel{}), jsonRequest(arkeselPath, tt.body))
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, body, tt.wantStatus)
			}
			checkCalls(t, conv, tt.handled, nil)
			if status != fiber.StatusOK {
				return
			}
			if out := decodeObject(t, ctype, body); !reflect.DeepEqual(out, tt.wantOut) {
				t.Errorf("reply = %v, want %v", out, tt.wantOut)
			}
		})
	}
}

// ---------------------------------------------------------------- Nalo

const naloPath = "/ussd/nalo"

func TestNaloDialect(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		reply      link.Reply
		wantStatus int
		handled    *link.Hop
		wantOut    map[string]any
	}{
		{
			name:       "MSGTYPE true is a new hop carrying the dialled string",
			body:       `{"USERID":"NALOTest","MSISDN":"233244123456","USERDATA":"*920*22#","MSGTYPE":true,"NETWORK":"MTN","SESSIONID":"16590115252429751"}`,
			reply:      link.Reply{Text: "Welcome\n1. Link a bank"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456", ServiceCode: "*920*22#",
				Network: "mtn", New: true, Dialled: "*920*22#"},
			wantOut: map[string]any{"USERID": "NALOTest", "MSISDN": "233244123456",
				"MSG": "Welcome\n1. Link a bank", "MSGTYPE": true},
		},
		{
			name:       "MSGTYPE false carries only the latest input",
			body:       `{"USERID":"NALOTest","MSISDN":"233244123456","USERDATA":"3","MSGTYPE":false,"NETWORK":"VODAFONE","SESSIONID":"16590115252429751"}`,
			reply:      link.Reply{Text: "Enter your username"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456",
				Network: "vodafone", Input: "3"},
			wantOut: map[string]any{"USERID": "NALOTest", "MSISDN": "233244123456",
				"MSG": "Enter your username", "MSGTYPE": true},
		},
		{
			name:       "input arrives byte-exact: spaces, stars and hashes kept",
			body:       `{"USERID":"NALOTest","MSISDN":"233244123456","USERDATA":" p@ss*w#rd ","MSGTYPE":false,"NETWORK":"MTN","SESSIONID":"16590115252429751"}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456",
				Network: "mtn", Input: " p@ss*w#rd "},
			wantOut: map[string]any{"USERID": "NALOTest", "MSISDN": "233244123456", "MSG": "ok", "MSGTYPE": true},
		},
		{
			name:       "an End reply sets MSGTYPE false",
			body:       `{"USERID":"NALOTest","MSISDN":"233244123456","USERDATA":"1","MSGTYPE":false,"NETWORK":"MTN","SESSIONID":"16590115252429751"}`,
			reply:      link.Reply{Text: "Linked. Thank you.", End: true},
			wantStatus: fiber.StatusOK,
			handled: &link.Hop{SessionID: "16590115252429751", Phone: "+233244123456",
				Network: "mtn", Input: "1"},
			wantOut: map[string]any{"USERID": "NALOTest", "MSISDN": "233244123456",
				"MSG": "Linked. Thank you.", "MSGTYPE": false},
		},
		{
			name:       "the reply echoes USERID and MSISDN exactly as sent",
			body:       `{"USERID":"Nalo Integration 42","MSISDN":"+233244123456","USERDATA":"1","MSGTYPE":false,"NETWORK":"MTN","SESSIONID":"s-1"}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled:    &link.Hop{SessionID: "s-1", Phone: "+233244123456", Network: "mtn", Input: "1"},
			wantOut: map[string]any{"USERID": "Nalo Integration 42", "MSISDN": "+233244123456",
				"MSG": "ok", "MSGTYPE": true},
		},
		{
			name:       "the echo keeps surrounding spaces the hop trims",
			body:       `{"USERID":" NALOTest ","MSISDN":" 233244123456","USERDATA":"1","MSGTYPE":false,"NETWORK":"MTN","SESSIONID":"s-1"}`,
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled:    &link.Hop{SessionID: "s-1", Phone: "+233244123456", Network: "mtn", Input: "1"},
			wantOut: map[string]any{"USERID": " NALOTest ", "MSISDN": " 233244123456",
				"MSG": "ok", "MSGTYPE": true},
		},
		{
			name:       "missing SESSIONID is 400",
			body:       `{"USERID":"NALOTest","MSISDN":"233244123456","USERDATA":"*920*22#","MSGTYPE":true,"NETWORK":"MTN"}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing MSISDN is 400",
			body:       `{"USERID":"NALOTest","USERDATA":"*920*22#","MSGTYPE":true,"NETWORK":"MTN","SESSIONID":"16590115252429751"}`,
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "a body that is not JSON is 400",
			body:       `<USSD><SESSIONID>1</SESSIONID></USSD>`,
			wantStatus: fiber.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConversation{reply: tt.reply}
			status, ctype, body := do(t, dialectApp(conv, ussd.Nalo{}), jsonRequest(naloPath, tt.body))
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, body, tt.wantStatus)
			}
			checkCalls(t, conv, tt.handled, nil)
			if status != fiber.StatusOK {
				return
			}
			if out := decodeObject(t, ctype, body); !reflect.DeepEqual(out, tt.wantOut) {
				t.Errorf("reply = %v, want %v", out, tt.wantOut)
			}
		})
	}
}

// ---------------------------------------------------------------- HollaTags

func TestHollaTagsDialect(t *testing.T) {
	const base = "session_msisdn=2348030000001&session_id=HT-5e1f0a&session_from=*347*22%23&session_type=1&session_mno=MTN"
	hop := func(h link.Hop) *link.Hop {
		h.SessionID, h.Phone, h.ServiceCode, h.Network = "HT-5e1f0a", "+2348030000001", "*347*22#", "mtn"
		return &h
	}
	tests := []struct {
		name       string
		query      string
		reply      link.Reply
		wantStatus int
		handled    *link.Hop
		closed     *link.Hop
		wantOut    map[string]any
	}{
		{
			name:       "begin is a new hop; a session_msg starting with * is the dialled string",
			query:      base + "&session_operation=begin&session_msg=*347*22*7%23",
			reply:      link.Reply{Text: "Welcome\n1. Link a bank"},
			wantStatus: fiber.StatusOK,
			handled:    hop(link.Hop{New: true, Dialled: "*347*22*7#"}),
			wantOut: map[string]any{"session_operation": "continue", "session_type": float64(1),
				"session_id": "HT-5e1f0a", "session_msg": "Welcome\n1. Link a bank"},
		},
		{
			name:       "begin with a session_msg that is not a code leaves Dialled empty",
			query:      base + "&session_operation=begin&session_msg=hello",
			reply:      link.Reply{Text: "Welcome"},
			wantStatus: fiber.StatusOK,
			handled:    hop(link.Hop{New: true}),
			wantOut: map[string]any{"session_operation": "continue", "session_type": float64(1),
				"session_id": "HT-5e1f0a", "session_msg": "Welcome"},
		},
		{
			name:       "continue carries session_msg as the input",
			query:      base + "&session_operation=continue&session_msg=2",
			reply:      link.Reply{Text: "Enter your username"},
			wantStatus: fiber.StatusOK,
			handled:    hop(link.Hop{Input: "2"}),
			wantOut: map[string]any{"session_operation": "continue", "session_type": float64(1),
				"session_id": "HT-5e1f0a", "session_msg": "Enter your username"},
		},
		{
			name:       "continue input is byte-exact: percent-encoded spaces, stars and hashes",
			query:      base + "&session_operation=continue&session_msg=%20p%40ss%2Aw%23rd%20x%20",
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled:    hop(link.Hop{Input: " p@ss*w#rd x "}),
			wantOut: map[string]any{"session_operation": "continue", "session_type": float64(1),
				"session_id": "HT-5e1f0a", "session_msg": "ok"},
		},
		{
			name:       "continue input is byte-exact: raw stars and + as space",
			query:      base + "&session_operation=continue&session_msg=my+pa*ss%23",
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled:    hop(link.Hop{Input: "my pa*ss#"}),
			wantOut: map[string]any{"session_operation": "continue", "session_type": float64(1),
				"session_id": "HT-5e1f0a", "session_msg": "ok"},
		},
		{
			name:       "continue input keeps an encoded plus and percent sign",
			query:      base + "&session_operation=continue&session_msg=a%2Bb%25c",
			reply:      link.Reply{Text: "ok"},
			wantStatus: fiber.StatusOK,
			handled:    hop(link.Hop{Input: "a+b%c"}),
			wantOut: map[string]any{"session_operation": "continue", "session_type": float64(1),
				"session_id": "HT-5e1f0a", "session_msg": "ok"},
		},
		{
			name:       "an End reply answers end with session_type 4",
			query:      base + "&session_operation=continue&session_msg=1",
			reply:      link.Reply{Text: "Linked. Thank you.", End: true},
			wantStatus: fiber.StatusOK,
			handled:    hop(link.Hop{Input: "1"}),
			wantOut: map[string]any{"session_operation": "end", "session_type": float64(4),
				"session_id": "HT-5e1f0a", "session_msg": "Linked. Thank you."},
		},
		{
			name:       "end closes the session as End without handling a hop",
			query:      base + "&session_operation=end&session_msg=",
			reply:      link.Reply{Text: "must not be sent"},
			wantStatus: fiber.StatusOK,
			closed:     &link.Hop{SessionID: "HT-5e1f0a", Phone: "+2348030000001", Closing: "End"},
			wantOut: map[string]any{"session_operation": "end", "session_type": float64(4),
				"session_id": "HT-5e1f0a", "session_msg": ""},
		},
		{
			name:       "unknown session_operation is 400",
			query:      base + "&session_operation=pause&session_msg=1",
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing session_operation is 400",
			query:      base + "&session_msg=1",
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing session_id is 400",
			query:      "session_msisdn=2348030000001&session_operation=continue&session_msg=1",
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "missing session_msisdn is 400",
			query:      "session_id=HT-5e1f0a&session_operation=continue&session_msg=1",
			wantStatus: fiber.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConversation{reply: tt.reply}
			status, ctype, body := do(t, dialectApp(conv, ussd.HollaTags{}), hollaTagsRequest(tt.query))
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, body, tt.wantStatus)
			}
			checkCalls(t, conv, tt.handled, tt.closed)
			if status != fiber.StatusOK {
				return
			}
			if out := decodeObject(t, ctype, body); !reflect.DeepEqual(out, tt.wantOut) {
				t.Errorf("reply = %v, want %v", out, tt.wantOut)
			}
		})
	}
}

func TestHollaTagsPOSTIsNotServed(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "no"}}
	q := "session_msisdn=2348030000001&session_id=HT-5e1f0a&session_operation=continue&session_msg=1"
	for name, req := range map[string]*http.Request{
		"query":     httptest.NewRequest(http.MethodPost, "/ussd/hollatags?"+q, nil),
		"form body": formRequest("/ussd/hollatags", q),
	} {
		t.Run(name, func(t *testing.T) {
			if status, _, body := do(t, dialectApp(conv, ussd.HollaTags{}), req); status == fiber.StatusOK {
				t.Errorf("POST status = 200 (%q), want refused", body)
			}
		})
	}
	checkCalls(t, conv, nil, nil)
}

// ------------------------------------- Africa's Talking session-end events

func TestATSessionEndNotification(t *testing.T) {
	const (
		secret   = "1*user*S3cr3t!"
		eventsAt = "/ussd/africastalking/events"
	)
	form := func(edit func(url.Values)) string {
		v := url.Values{
			"sessionId":        {"ATUid_9f8e7d6c5b4a"},
			"serviceCode":      {"*384*123#"},
			"networkCode":      {"62130"},
			"phoneNumber":      {"+2348030000001"},
			"status":           {"Incomplete"},
			"input":            {secret},
			"lastAppResponse":  {"CON Enter your password"},
			"durationInMillis": {"48210"},
			"hopsCount":        {"4"},
			"errorMessage":     {"USER_TIMEOUT"},
			"date":             {"2024-05-14 10:21:09.123"},
		}
		if edit != nil {
			edit(v)
		}
		return v.Encode()
	}
	tests := []struct {
		name        string
		body        string
		wantStatus  int
		wantClosing string // "" when Close must not be called
		wantDetail  string
	}{
		{
			name:        "Incomplete closes the session with its status and errorMessage",
			body:        form(nil),
			wantStatus:  fiber.StatusOK,
			wantClosing: "Incomplete",
			wantDetail:  "USER_TIMEOUT",
		},
		{
			name:        "Success closes the session as Success",
			body:        form(func(v url.Values) { v.Set("status", "Success"); v.Set("errorMessage", "") }),
			wantStatus:  fiber.StatusOK,
			wantClosing: "Success",
			wantDetail:  "",
		},
		{
			name:        "Failed closes the session as Failed",
			body:        form(func(v url.Values) { v.Set("status", "Failed"); v.Set("errorMessage", "Network error") }),
			wantStatus:  fiber.StatusOK,
			wantClosing: "Failed",
			wantDetail:  "Network error",
		},
		{
			name:       "missing sessionId is 400 and closes nothing",
			body:       form(func(v url.Values) { v.Del("sessionId") }),
			wantStatus: fiber.StatusBadRequest,
		},
		{
			name:       "blank sessionId is 400 and closes nothing",
			body:       form(func(v url.Values) { v.Set("sessionId", "  ") }),
			wantStatus: fiber.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConversation{reply: link.Reply{Text: "must not be sent"}}
			app := dialectApp(conv, ussd.AfricasTalking{})
			status, _, body := do(t, app, formRequest(eventsAt, tt.body))
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, body, tt.wantStatus)
			}
			if strings.Contains(body, "S3cr3t") {
				t.Errorf("answer %q contains the typed input", body)
			}
			if n := len(conv.calls()); n != 0 {
				t.Errorf("Handle called %d times for a notification", n)
			}
			closed, details := closedCalls(conv)
			if tt.wantClosing == "" {
				if len(closed) != 0 {
					t.Errorf("Close called %d times (%+v), want never", len(closed), closed)
				}
				return
			}
			if len(closed) != 1 {
				t.Fatalf("Close called %d times, want once", len(closed))
			}
			h := closed[0]
			if h.SessionID != "ATUid_9f8e7d6c5b4a" || h.Phone != "+2348030000001" || h.Closing != tt.wantClosing {
				t.Errorf("Close got SessionID %q Phone %q Closing %q, want %q %q %q",
					h.SessionID, h.Phone, h.Closing, "ATUid_9f8e7d6c5b4a", "+2348030000001", tt.wantClosing)
			}
			if details[0] != tt.wantDetail {
				t.Errorf("Close got detail %q, want %q", details[0], tt.wantDetail)
			}
			// Nothing the user typed may reach Close: not whole, not in part.
			seen := []string{details[0]}
			v := reflect.ValueOf(h)
			for i := range v.NumField() {
				if f := v.Field(i); f.Kind() == reflect.String {
					seen = append(seen, v.Type().Field(i).Name+"="+f.String())
				}
			}
			for _, s := range seen {
				for _, leak := range []string{secret, "S3cr3t", "user*S3"} {
					if strings.Contains(s, leak) {
						t.Errorf("Close received %q, which contains the typed input %q", s, leak)
					}
				}
			}
		})
	}
}

// ---------------------------------------------------------------- every dialect

// wireDialect is one dialect as the cross-dialect tests drive it: a
// well-formed continuation callback, and a reader of its reply.
type wireDialect struct {
	dialect ussd.Dialect
	request func() *http.Request
	// read returns the screen text and whether the reply ends the session.
	read func(t *testing.T, ctype, body string) (text string, end bool)
}

func wireDialects() []wireDialect {
	str := func(t *testing.T, out map[string]any, key string) string {
		t.Helper()
		s, ok := out[key].(string)
		if !ok {
			t.Errorf("reply field %s = %#v, want a string", key, out[key])
		}
		return s
	}
	boolean := func(t *testing.T, out map[string]any, key string) bool {
		t.Helper()
		b, ok := out[key].(bool)
		if !ok {
			t.Errorf("reply field %s = %#v, want a bool", key, out[key])
		}
		return b
	}
	return []wireDialect{
		{
			dialect: ussd.AfricasTalking{},
			request: func() *http.Request { return formRequest(atPath, atForm("1*3").Encode()) },
			read: func(t *testing.T, ctype, body string) (string, bool) {
				t.Helper()
				if !strings.HasPrefix(ctype, "text/plain") {
					t.Errorf("Content-Type = %q, want text/plain", ctype)
				}
				if text, ok := strings.CutPrefix(body, "END "); ok {
					return text, true
				}
				text, ok := strings.CutPrefix(body, "CON ")
				if !ok {
					t.Errorf("body %q starts with neither CON nor END", body)
				}
				return text, false
			},
		},
		{
			dialect: ussd.Hubtel{},
			request: func() *http.Request {
				return jsonRequest(hubtelPath, `{"Type":"Response","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"1","Operator":"MTN","Sequence":2}`)
			},
			read: func(t *testing.T, ctype, body string) (string, bool) {
				t.Helper()
				out := decodeObject(t, ctype, body)
				kind := str(t, out, "Type")
				if kind != "Response" && kind != "Release" {
					t.Errorf("Type = %q, want Response or Release", kind)
				}
				return str(t, out, "Message"), kind == "Release"
			},
		},
		{
			dialect: ussd.Arkesel{},
			request: func() *http.Request {
				return jsonRequest(arkeselPath, `{"sessionID":"16590115252429751","userID":"USSD_ARKESEL","newSession":false,"msisdn":"233244123456","userData":"1","network":"MTN"}`)
			},
			read: func(t *testing.T, ctype, body string) (string, bool) {
				t.Helper()
				out := decodeObject(t, ctype, body)
				return str(t, out, "message"), !boolean(t, out, "continueSession")
			},
		},
		{
			dialect: ussd.Nalo{},
			request: func() *http.Request {
				return jsonRequest(naloPath, `{"USERID":"NALOTest","MSISDN":"233244123456","USERDATA":"1","MSGTYPE":false,"NETWORK":"MTN","SESSIONID":"16590115252429751"}`)
			},
			read: func(t *testing.T, ctype, body string) (string, bool) {
				t.Helper()
				out := decodeObject(t, ctype, body)
				return str(t, out, "MSG"), !boolean(t, out, "MSGTYPE")
			},
		},
		{
			dialect: ussd.HollaTags{},
			request: func() *http.Request {
				return hollaTagsRequest("session_msisdn=2348030000001&session_operation=continue&session_msg=1&session_id=HT-5e1f0a&session_from=*347*22%23&session_type=1&session_mno=MTN")
			},
			read: func(t *testing.T, ctype, body string) (string, bool) {
				t.Helper()
				out := decodeObject(t, ctype, body)
				op := str(t, out, "session_operation")
				typ, _ := out["session_type"].(float64)
				switch {
				case op == "continue" && typ == 1:
				case op == "end" && typ == 4:
				default:
					t.Errorf("session_operation %q with session_type %v, want continue/1 or end/4", op, out["session_type"])
				}
				return str(t, out, "session_msg"), op == "end"
			},
		},
	}
}

func TestEveryDialectSendsReplyTextUnchanged(t *testing.T) {
	replies := map[string]link.Reply{
		"menu continues": {Text: "Choose your bank:\n1. GTBank\n2. Access & Co <Ltd>\n3. \"First\" Bank\n0. Back"},
		"final screen":   {Text: "Linked GTBank ******7890 — ₦0 fees. Ọ ṣé!", End: true},
		"edge spaces":    {Text: "  Enter PIN:  "},
		"escapes":        {Text: `C:\path\n is not a newline; 100% {"json"}`},
	}
	for _, d := range wireDialects() {
		for name, reply := range replies {
			t.Run(d.dialect.Name()+" "+name, func(t *testing.T) {
				conv := &fakeConversation{reply: reply}
				status, ctype, body := do(t, dialectApp(conv, d.dialect), d.request())
				if status != fiber.StatusOK {
					t.Fatalf("status = %d (%q), want 200", status, body)
				}
				text, end := d.read(t, ctype, body)
				if text != reply.Text {
					t.Errorf("text on the wire = %q, want %q", text, reply.Text)
				}
				if end != reply.End {
					t.Errorf("ends the session = %v, want %v", end, reply.End)
				}
			})
		}
	}
}

func TestEveryDialectAnswersConversationErrorWithPoliteEnd(t *testing.T) {
	const detail = "bolt: commit session 3c8dd2b1: disk quota exceeded at /var/lib/ussdlink"
	for _, d := range wireDialects() {
		for name, err := range map[string]error{
			"plain error":   errors.New(detail),
			"wrapped error": errors.Join(errors.New("handle hop"), errors.New(detail)),
		} {
			t.Run(d.dialect.Name()+" "+name, func(t *testing.T) {
				conv := &fakeConversation{reply: link.Reply{Text: "must not be sent"}, err: err}
				status, ctype, body := do(t, dialectApp(conv, d.dialect), d.request())
				if status != fiber.StatusOK {
					t.Fatalf("status = %d (%q), want 200 with a polite end screen", status, body)
				}
				text, end := d.read(t, ctype, body)
				if !end {
					t.Errorf("reply %q continues the session, want it ended", body)
				}
				if strings.TrimSpace(text) == "" {
					t.Errorf("reply %q has no text, want a polite message", body)
				}
				for _, leak := range []string{detail, "bolt", "disk quota", "/var/lib", "handle hop", "must not be sent"} {
					if strings.Contains(body, leak) {
						t.Errorf("reply %q reveals %q", body, leak)
					}
				}
			})
		}
	}
}

// A refused hop's 400 carries the refusal's one-line reason (which names a
// field, never a value), never the screen or the error's own text.
func TestEveryDialectAnswersHopErrorWith400(t *testing.T) {
	for _, d := range wireDialects() {
		for name, tc := range map[string]struct {
			err    error
			reason string
		}{
			"HopError":         {&link.HopError{Reason: "phone number differs from the session's"}, "phone number differs from the session's"},
			"wrapped HopError": {errorsJoin(&link.HopError{Reason: "missing or oversized session id"}), "missing or oversized session id"},
		} {
			t.Run(d.dialect.Name()+" "+name, func(t *testing.T) {
				conv := &fakeConversation{reply: link.Reply{Text: "must not be sent"}, err: tc.err}
				status, _, body := do(t, dialectApp(conv, d.dialect), d.request())
				if status != fiber.StatusBadRequest {
					t.Errorf("status = %d (%q), want 400", status, body)
				}
				if got, want := body, "bad request: "+tc.reason; got != want {
					t.Errorf("400 body = %q, want %q", got, want)
				}
				if strings.Contains(body, "must not be sent") || strings.Contains(body, "bad hop") {
					t.Errorf("400 body %q carries a screen or the error", body)
				}
			})
		}
	}
}

// A session end the conversation refuses (an id no session can have) is a
// 400 with its reason, not the polite end of a session that was closed.
func TestASessionEndRefusedByTheConversationIs400(t *testing.T) {
	conv := &fakeConversation{err: &link.HopError{Reason: "missing or oversized session id"}}
	body := `{"Type":"Release","Mobile":"233244123456","SessionId":"3c8dd2b1e5d44b3d9c1c0c1f3bd4e5a6","ServiceCode":"*713#","Message":"","Operator":"MTN","Sequence":3}`
	status, _, got := do(t, dialectApp(conv, ussd.Hubtel{}), jsonRequest(hubtelPath, body))
	if status != fiber.StatusBadRequest || got != "bad request: missing or oversized session id" {
		t.Errorf("refused session end: %d %q, want 400 with its reason", status, got)
	}
}

// ---------------------------------------------------------------- buffer reuse

// A hop kept after its request must not change when Fiber reuses its
// buffers for the next one: the second request has fields of the same
// lengths and different bytes, so a string still pointing into a reused
// buffer would be overwritten in place.
func TestHubtelHopStringsSurviveLaterRequests(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
	app := dialectApp(conv, ussd.Hubtel{})
	first := `{"Type":"Initiation","Mobile":"233244123456","SessionId":"aaaaaaaa-first-session","ServiceCode":"*713#","Message":"*713*22#","Operator":"MTN","Sequence":1}`
	second := `{"Type":"Response","Mobile":"233509999999","SessionId":"zzzzzzzz-other-session","ServiceCode":"*999#","Message":"p@ss*w#r","Operator":"GLO","Sequence":7}`
	for _, body := range []string{first, second, second} {
		if status, _, b := do(t, app, jsonRequest(hubtelPath, body)); status != fiber.StatusOK {
			t.Fatalf("status = %d (%q), want 200", status, b)
		}
	}
	hops := conv.calls()
	if len(hops) != 3 {
		t.Fatalf("Handle called %d times, want 3", len(hops))
	}
	want := link.Hop{SessionID: "aaaaaaaa-first-session", Phone: "+233244123456", ServiceCode: "*713#",
		Network: "mtn", New: true, Dialled: "*713*22#", Seq: 1}
	if hops[0] != want {
		t.Errorf("first hop after later requests = %+v, want %+v", hops[0], want)
	}
	if got, want := hops[1].Input, "p@ss*w#r"; got != want {
		t.Errorf("second hop Input = %q, want %q", got, want)
	}
}

func TestHollaTagsHopStringsSurviveLaterRequests(t *testing.T) {
	conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
	app := dialectApp(conv, ussd.HollaTags{})
	first := "session_msisdn=2348030000001&session_operation=continue&session_msg=first%2Apass&session_id=HT-aaaaaa&session_from=*347*22%23&session_mno=MTN"
	second := "session_msisdn=2349099999999&session_operation=continue&session_msg=zzzzz%2Azzzz&session_id=HT-zzzzzz&session_from=*999*11%23&session_mno=GLO"
	for _, q := range []string{first, second, second} {
		if status, _, b := do(t, app, hollaTagsRequest(q)); status != fiber.StatusOK {
			t.Fatalf("status = %d (%q), want 200", status, b)
		}
	}
	hops := conv.calls()
	if len(hops) != 3 {
		t.Fatalf("Handle called %d times, want 3", len(hops))
	}
	want := link.Hop{SessionID: "HT-aaaaaa", Phone: "+2348030000001", ServiceCode: "*347*22#",
		Network: "mtn", Input: "first*pass"}
	if hops[0] != want {
		t.Errorf("first hop after later requests = %+v, want %+v", hops[0], want)
	}
}

func TestNewSessionFlagsMayComeAsStrings(t *testing.T) {
	cases := []struct {
		name string
		d    ussd.Dialect
		body string
		want bool
	}{
		{"Arkesel newSession \"true\"", ussd.Arkesel{}, `{"sessionID":"s","userID":"u","newSession":"true","msisdn":"233200000001","userData":"*928*1#"}`, true},
		{"Arkesel newSession \"0\"", ussd.Arkesel{}, `{"sessionID":"s","userID":"u","newSession":"0","msisdn":"233200000001","userData":"1"}`, false},
		{"Nalo MSGTYPE \"1\"", ussd.Nalo{}, `{"USERID":"u","MSISDN":"233200000001","USERDATA":"*920*22#","MSGTYPE":"1","SESSIONID":"s"}`, true},
		{"Nalo MSGTYPE \"false\"", ussd.Nalo{}, `{"USERID":"u","MSISDN":"233200000001","USERDATA":"2","MSGTYPE":"false","SESSIONID":"s"}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conv := &fakeConversation{reply: link.Reply{Text: "ok"}}
			app := fiber.New()
			ussd.Mount(app, conv, zerolog.Nop(), tc.d)
			req := httptest.NewRequest(http.MethodPost, "/ussd/"+tc.d.Name(), strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || len(conv.hops) != 1 {
				t.Fatalf("status %d, hops %d", resp.StatusCode, len(conv.hops))
			}
			if got := conv.hops[0].New; got != tc.want {
				t.Errorf("New = %v, want %v", got, tc.want)
			}
		})
	}
}
