package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestHostileInputGetsA4xxAndChangesNothing(t *testing.T) {
	m, _ := startGateway(t, nil)
	h := walk(t, m, "+2348090000001", "1", "user_good")
	before, err := storedSession(m, h.session)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) int {
		resp, err := http.Post(m.URL()+"/ussd/africastalking", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	at := func(session, phone, text string) string {
		return url.Values{"sessionId": {session}, "serviceCode": {"*384*123#"}, "phoneNumber": {phone}, "text": {text}}.Encode()
	}
	cases := []struct {
		name string
		body string
		want int
	}{
		{"an oversized body", at(h.session, h.phone, "1*user_good*"+strings.Repeat("x", 20000)), 413},
		{"a missing session id", url.Values{"phoneNumber": {h.phone}, "serviceCode": {"*384*123#"}}.Encode(), 400},
		{"a missing phone number", url.Values{"sessionId": {h.session}, "serviceCode": {"*384*123#"}}.Encode(), 400},
		{"invalid UTF-8", at(h.session, h.phone, "1*user_good*\xff\xfe"), 400},
		{"control characters", at(h.session, h.phone, "1*user_good*pa\x00ss"), 400},
		{"an escape sequence", at(h.session, h.phone, "1*user_good*\x1b[2J"), 400},
		{"a transcript that does not extend the previous one", at(h.session, h.phone, "2*someone"), 400},
		{"a phone number that changes within the session", at(h.session, "+2348099999999", "1*user_good*pass_good"), 400},
		{"a phone number that is not one (a polite END, no session)", at("other-session", "'; DROP TABLE", ""), 200},
		{"a body that is not a form", `{"sessionId":"x"}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.body); got != tc.want {
				t.Errorf("status = %d, want %d", got, tc.want)
			}
			after, err := storedSession(m, h.session)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(after)
			b, _ := json.Marshal(before)
			if !bytes.Equal(a, b) || len(after.Answers) != len(before.Answers) {
				t.Errorf("the session changed")
			}
		})
	}
	// The session still works as a handset would use it.
	h.send("pass_good")
	h.expect("is linked")
}

func TestHostileDialledStringsAre400WithAReasonAndStoreNothing(t *testing.T) {
	m, _ := startGateway(t, nil)
	dialled := map[string]string{
		"control characters": "*384*123\x00#",
		"an escape sequence": "*384*\x1b[2J123#",
		"a newline":          "*384*123#\n",
		"invalid UTF-8":      "*384*\xff\xfe#",
		"oversized":          "*384*123*" + strings.Repeat("7", 200) + "#",
	}
	starts := map[string]func(session, dialled string) *http.Request{
		"hubtel": func(session, dialled string) *http.Request {
			return rawJSONRequest("/ussd/hubtel", map[string]any{"Type": "Initiation", "Mobile": "233244123456", "SessionId": session,
				"ServiceCode": "*384*123#", "Message": dialledMark, "Operator": "mtn", "Sequence": 1}, dialled)
		},
		"hollatags": func(session, dialled string) *http.Request {
			q := url.Values{"session_msisdn": {"2348030000001"}, "session_operation": {"begin"}, "session_msg": {dialled},
				"session_id": {session}, "session_from": {"*384*123#"}, "session_type": {"1"}, "session_mno": {"MTN"}}
			req, _ := http.NewRequest(http.MethodGet, "/ussd/hollatags?"+q.Encode(), nil)
			return req
		},
		"arkesel": func(session, dialled string) *http.Request {
			return rawJSONRequest("/ussd/arkesel", map[string]any{"sessionID": session, "userID": "u", "newSession": true,
				"msisdn": "233244123456", "userData": dialledMark, "network": "MTN"}, dialled)
		},
		"nalo": func(session, dialled string) *http.Request {
			return rawJSONRequest("/ussd/nalo", map[string]any{"USERID": "n", "MSISDN": "233244123456", "USERDATA": dialledMark,
				"MSGTYPE": true, "NETWORK": "MTN", "SESSIONID": session}, dialled)
		},
	}
	n := 0
	for dialect, start := range starts {
		for name, d := range dialled {
			t.Run(dialect+" "+name, func(t *testing.T) {
				n++
				session := fmt.Sprintf("hostile-%s-%d", dialect, n)
				status, body := edgeDo(t, m, start(session, d))
				if status != http.StatusBadRequest {
					t.Errorf("status %d (%q), want 400", status, body)
				}
				reason, ok := strings.CutPrefix(body, "bad request: ")
				if !ok || reason == "" || strings.ContainsAny(body, "\n\r") {
					t.Errorf("400 body %q, want one line: bad request: <reason>", body)
				}
				if strings.Contains(body, "384") || strings.Contains(body, "777") {
					t.Errorf("400 body %q echoes the input", body)
				}
				noSession(t, m, session)
			})
		}
	}
}

// dialledMark stands in a JSON body for a dialled string put in raw.
const dialledMark = "@DIALLED@"

// rawJSONRequest is jsonRequest with dialled in place of dialledMark as the
// network would send it: control characters escaped, other bytes as they
// are, invalid UTF-8 included (json.Marshal would replace it).
func rawJSONRequest(path string, v any, dialled string) *http.Request {
	b, _ := json.Marshal(v)
	var esc strings.Builder
	for i := 0; i < len(dialled); i++ {
		switch c := dialled[i]; {
		case c < 0x20 || c == '"' || c == '\\':
			fmt.Fprintf(&esc, "\\u%04x", c)
		default:
			esc.WriteByte(c)
		}
	}
	body := strings.Replace(string(b), dialledMark, esc.String(), 1)
	req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestEvery400ToAnAggregatorCarriesAReason(t *testing.T) {
	m, _ := startGateway(t, nil)
	form := func(v url.Values) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "/ussd/africastalking", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	cases := map[string]*http.Request{
		"a missing session id":    form(url.Values{"phoneNumber": {"+2348030000001"}, "text": {"p4ss"}}),
		"a control character":     form(url.Values{"sessionId": {"r-1"}, "phoneNumber": {"+2348030000001"}, "text": {"p4ss\x00"}}),
		"a body that is not JSON": jsonRequest("/ussd/hubtel", []int{1, 2}),
		"an unknown Hubtel Type":  jsonRequest("/ussd/hubtel", map[string]any{"Type": "p4ss", "Mobile": "233244123456", "SessionId": "r-2"}),
		"an unknown HollaTags op": func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, "/ussd/hollatags?session_operation=p4ss", nil)
			return r
		}(),
		"a session end without one": form(url.Values{"status": {"Failed"}}),
	}
	cases["a session end without one"].URL.Path = "/ussd/africastalking/events"
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			status, body := edgeDo(t, m, req)
			reason, ok := strings.CutPrefix(body, "bad request: ")
			if status != http.StatusBadRequest || !ok || reason == "" || strings.ContainsAny(reason, "\n\r") {
				t.Errorf("%d %q, want 400 with a one-line reason", status, body)
			}
			if strings.Contains(body, "p4ss") {
				t.Errorf("400 body %q echoes the input", body)
			}
		})
	}
}
