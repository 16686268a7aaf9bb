package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/ussdlink/ussdlink/phone"
)

const (
	testPhone = "+2348031234567"
	testText  = "Your Mono code is 482913. Do not share it."
	testCode  = "482913"
)

var testMessage = Message{To: testPhone, Text: testText}

// captured is one request as the fake provider saw it.
type captured struct {
	method, path string
	header       http.Header
	body         []byte
	user, pass   string
	basic        bool
}

// fakeProvider serves every request with status and body, recording it.
func fakeProvider(t *testing.T, status int, body string) (*httptest.Server, func() captured) {
	t.Helper()
	var (
		mu   sync.Mutex
		last captured
		seen bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		mu.Lock()
		last = captured{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: data, user: user, pass: pass, basic: ok}
		seen = true
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() captured {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if !seen {
			t.Fatal("the provider received no request")
		}
		return last
	}
}

func parseForm(t *testing.T, body []byte) url.Values {
	t.Helper()
	v, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatalf("body %q is not a form: %v", body, err)
	}
	return v
}

func asSendError(t *testing.T, err error) *SendError {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded; want an error")
	}
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v is not a *SendError", err, err)
	}
	return se
}

// atReply is an Africa's Talking send answer with one recipient.
func atReply(code int, status, id string) string {
	return fmt.Sprintf(`{"SMSMessageData":{"Message":"Sent to 1/1 Total Cost: NGN 2.2000","Recipients":[{"statusCode":%d,"number":"+2348031234567","status":%q,"cost":"NGN 2.2000","messageId":%q}]}}`, code, status, id)
}

func TestAfricasTalkingSendPostsTheFormWithAPIKeyAndReturnsTheMessageID(t *testing.T) {
	tests := []struct {
		name     string
		from     string
		reply    string
		wantForm url.Values
	}{
		{
			name:  "sent (101) with a sender id",
			from:  "USSDLINK",
			reply: atReply(101, "Success", "ATXid_1"),
			wantForm: url.Values{"username": {"ussdlink"}, "to": {testPhone},
				"message": {testText}, "from": {"USSDLINK"}},
		},
		{
			name:     "no from field when none is set",
			reply:    atReply(101, "Success", "ATXid_1"),
			wantForm: url.Values{"username": {"ussdlink"}, "to": {testPhone}, "message": {testText}},
		},
		{
			name:     "processed (100) is accepted",
			reply:    atReply(100, "Processed", "ATXid_1"),
			wantForm: url.Values{"username": {"ussdlink"}, "to": {testPhone}, "message": {testText}},
		},
		{
			name:     "queued (102) is accepted, statusCode as a string too",
			reply:    `{"SMSMessageData":{"Message":"Sent to 1/1","Recipients":[{"statusCode":"102","status":"UserInQueue","messageId":"ATXid_1"}]}}`,
			wantForm: url.Values{"username": {"ussdlink"}, "to": {testPhone}, "message": {testText}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := fakeProvider(t, http.StatusCreated, tt.reply)
			p := AfricasTalking{BaseURL: srv.URL + "/", Username: "ussdlink", APIKey: "at-key-9f2c", From: tt.from}
			id, err := p.Send(context.Background(), testMessage)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if id != "ATXid_1" {
				t.Errorf("providerID = %q, want ATXid_1", id)
			}
			req := got()
			if req.method != http.MethodPost || req.path != "/version1/messaging" {
				t.Errorf("request = %s %s, want POST /version1/messaging", req.method, req.path)
			}
			for h, want := range map[string]string{
				"apiKey":       "at-key-9f2c",
				"Accept":       "application/json",
				"Content-Type": "application/x-www-form-urlencoded",
			} {
				if v := req.header.Get(h); v != want {
					t.Errorf("header %s = %q, want %q", h, v, want)
				}
			}
			if form := parseForm(t, req.body); !reflect.DeepEqual(form, tt.wantForm) {
				t.Errorf("form = %v, want %v", form, tt.wantForm)
			}
		})
	}
}

func TestAfricasTalkingRejectedRecipientIsFinal(t *testing.T) {
	tests := []struct {
		name, reply, wantInMessage string
	}{
		{"invalid phone number", atReply(403, "InvalidPhoneNumber", "None"), "InvalidPhoneNumber"},
		{"insufficient balance", atReply(405, "InsufficientBalance", "None"), "InsufficientBalance"},
		{"do not disturb", atReply(409, "DoNotDisturbRejection", "None"), "DoNotDisturbRejection"},
		{"no recipients at all", `{"SMSMessageData":{"Message":"InvalidSenderId","Recipients":[]}}`, "InvalidSenderId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeProvider(t, http.StatusCreated, tt.reply)
			p := AfricasTalking{BaseURL: srv.URL, Username: "ussdlink", APIKey: "k"}
			id, err := p.Send(context.Background(), testMessage)
			se := asSendError(t, err)
			if id != "" {
				t.Errorf("providerID = %q, want none", id)
			}
			if se.Temporary {
				t.Errorf("Temporary = true, want a final error: %v", se)
			}
			if se.Provider != "africastalking" || se.Status != http.StatusCreated {
				t.Errorf("Provider, Status = %q, %d; want africastalking, 201", se.Provider, se.Status)
			}
			if !strings.Contains(se.Message, tt.wantInMessage) {
				t.Errorf("Message = %q, want it to name %q", se.Message, tt.wantInMessage)
			}
		})
	}
}

func TestTwilioSendPostsTheFormWithBasicAuthAndReturnsTheSid(t *testing.T) {
	srv, got := fakeProvider(t, http.StatusCreated,
		`{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","body":"Sent from your Twilio trial account - `+testText+`"}`)
	p := Twilio{BaseURL: srv.URL, AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "tw-token-77", From: "+15005550006"}
	id, err := p.Send(context.Background(), testMessage)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if id != "SM0123456789abcdef0123456789abcdef" {
		t.Errorf("providerID = %q", id)
	}
	req := got()
	if want := "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"; req.method != http.MethodPost || req.path != want {
		t.Errorf("request = %s %s, want POST %s", req.method, req.path, want)
	}
	if !req.basic || req.user != "AC0123456789abcdef0123456789abcdef" || req.pass != "tw-token-77" {
		t.Errorf("basic auth = %v %q:%q, want the account sid and auth token", req.basic, req.user, req.pass)
	}
	if ct := req.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := url.Values{"To": {testPhone}, "From": {"+15005550006"}, "Body": {testText}}
	if form := parseForm(t, req.body); !reflect.DeepEqual(form, want) {
		t.Errorf("form = %v, want %v", form, want)
	}
}

func TestTwilioClientErrorIsFinalAndCarriesTwilioMessage(t *testing.T) {
	tests := []struct {
		name, reply, wantMessage string
		status                   int
	}{
		{
			name:        "invalid To number",
			status:      http.StatusBadRequest,
			reply:       `{"code":21211,"message":"The 'To' number 08031234567 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
			wantMessage: "21211 The 'To' number 08031234567 is not a valid phone number.",
		},
		{
			name:        "bad credentials",
			status:      http.StatusUnauthorized,
			reply:       `{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`,
			wantMessage: "20003 Authenticate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeProvider(t, tt.status, tt.reply)
			p := Twilio{BaseURL: srv.URL, AccountSID: "AC1", AuthToken: "tok", From: "+15005550006"}
			_, err := p.Send(context.Background(), testMessage)
			se := asSendError(t, err)
			if se.Temporary {
				t.Errorf("Temporary = true, want final: %v", se)
			}
			if se.Status != tt.status || se.Message != tt.wantMessage {
				t.Errorf("Status, Message = %d, %q; want %d, %q", se.Status, se.Message, tt.status, tt.wantMessage)
			}
		})
	}
}

func TestTermiiSendPostsExactJSONAndReturnsTheMessageID(t *testing.T) {
	tests := []struct {
		name        string
		channel     string
		to          string
		reply       string
		wantChannel string
		wantTo      string
		wantID      string
	}{
		{
			name:        "default channel, + stripped, string message_id",
			to:          testPhone,
			reply:       `{"code":"ok","message_id":"9122821270554876574","message":"Successfully Sent","balance":9,"user":"Ussdlink"}`,
			wantChannel: "generic", wantTo: "2348031234567", wantID: "9122821270554876574",
		},
		{
			name:        "dnd channel, spaces dropped, numeric message_id",
			channel:     "dnd",
			to:          "+234 803 123 4567",
			reply:       `{"message_id":3017544054459493,"message":"Successfully Sent"}`,
			wantChannel: "dnd", wantTo: "2348031234567", wantID: "3017544054459493",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := fakeProvider(t, http.StatusOK, tt.reply)
			p := Termii{BaseURL: srv.URL, APIKey: "TL-key-1", From: "Ussdlink", Channel: tt.channel}
			id, err := p.Send(context.Background(), Message{To: tt.to, Text: testText})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if id != tt.wantID {
				t.Errorf("providerID = %q, want %q", id, tt.wantID)
			}
			req := got()
			if req.method != http.MethodPost || req.path != "/api/sms/send" {
				t.Errorf("request = %s %s, want POST /api/sms/send", req.method, req.path)
			}
			if ct := req.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(req.body, &body); err != nil {
				t.Fatalf("body %q: %v", req.body, err)
			}
			want := map[string]any{"api_key": "TL-key-1", "to": tt.wantTo, "from": "Ussdlink",
				"sms": testText, "type": "plain", "channel": tt.wantChannel}
			if !reflect.DeepEqual(body, want) {
				t.Errorf("body = %v, want %v", body, want)
			}
		})
	}
}

func TestTermiiFailureCarriesTermiisMessage(t *testing.T) {
	tests := []struct {
		name               string
		status             int
		reply, wantMessage string
	}{
		{"200 without message_id", http.StatusOK, `{"message":"Insufficient balance"}`, "Insufficient balance"},
		{"bad api key", http.StatusUnauthorized, `{"message":"Invalid API key"}`, "Invalid API key"},
		{"unknown sender id", http.StatusNotFound, `{"code":404,"message":"ApplicationSenderId not found"}`, "ApplicationSenderId not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeProvider(t, tt.status, tt.reply)
			p := Termii{BaseURL: srv.URL, APIKey: "k", From: "Ussdlink"}
			_, err := p.Send(context.Background(), testMessage)
			se := asSendError(t, err)
			if se.Temporary || se.Status != tt.status || se.Message != tt.wantMessage {
				t.Errorf("got Temporary=%v Status=%d Message=%q; want final, %d, %q", se.Temporary, se.Status, se.Message, tt.status, tt.wantMessage)
			}
		})
	}
}

// senders builds one of each HTTP provider pointed at base.
func senders(base string) []SMSSender {
	return []SMSSender{
		AfricasTalking{BaseURL: base, Username: "u", APIKey: "secret-api-key"},
		Twilio{BaseURL: base, AccountSID: "AC1", AuthToken: "secret-auth-token", From: "+15005550006"},
		Termii{BaseURL: base, APIKey: "secret-api-key", From: "Ussdlink"},
	}
}

func TestStatusDecidesWhetherAFailureIsTemporary(t *testing.T) {
	tests := []struct {
		status        int
		wantTemporary bool
	}{
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusTooManyRequests, true},
		{http.StatusRequestTimeout, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
	}
	for _, tt := range tests {
		srv, _ := fakeProvider(t, tt.status, `{"message":"something went wrong"}`)
		for _, s := range senders(srv.URL) {
			t.Run(fmt.Sprintf("%s/%d", s.Name(), tt.status), func(t *testing.T) {
				_, err := s.Send(context.Background(), testMessage)
				se := asSendError(t, err)
				if se.Temporary != tt.wantTemporary || se.Status != tt.status {
					t.Errorf("Temporary, Status = %v, %d; want %v, %d (%v)", se.Temporary, se.Status, tt.wantTemporary, tt.status, se)
				}
				if se.Provider != s.Name() {
					t.Errorf("Provider = %q, want %q", se.Provider, s.Name())
				}
			})
		}
	}
}

func TestNetworkErrorIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	for _, s := range senders(base) {
		t.Run(s.Name(), func(t *testing.T) {
			_, err := s.Send(context.Background(), testMessage)
			se := asSendError(t, err)
			if !se.Temporary || se.Status != 0 || se.Err == nil {
				t.Errorf("got Temporary=%v Status=%d Err=%v; want a temporary transport error", se.Temporary, se.Status, se.Err)
			}
		})
	}
}

func TestContextDeadlineIsTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // answer only once the caller has given up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	for _, s := range senders(srv.URL) {
		t.Run(s.Name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := s.Send(ctx, testMessage)
			se := asSendError(t, err)
			if !se.Temporary {
				t.Errorf("Temporary = false, want true: %v", se)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %v despite a 50ms deadline", d)
			}
		})
	}
}

func TestClientTimeoutIsTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	client := &http.Client{Timeout: 50 * time.Millisecond}
	for _, s := range []SMSSender{
		AfricasTalking{BaseURL: srv.URL, Client: client},
		Twilio{BaseURL: srv.URL, AccountSID: "AC1", Client: client},
		Termii{BaseURL: srv.URL, Client: client},
	} {
		t.Run(s.Name(), func(t *testing.T) {
			_, err := s.Send(context.Background(), testMessage)
			if se := asSendError(t, err); !se.Temporary {
				t.Errorf("Temporary = false, want true: %v", se)
			}
		})
	}
}

// echoServer answers with status and a body that repeats everything the
// request carried, in every place a provider might put it.
func echoServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var text string
		if form, err := url.ParseQuery(string(raw)); err == nil {
			text = form.Get("message") + form.Get("Body")
		}
		var j map[string]string
		if json.Unmarshal(raw, &j) == nil {
			text = j["sms"]
		}
		echo := fmt.Sprintf("rejected %s (raw %s; code %s; key %s)", text, raw, testCode, r.Header.Get("apiKey"))
		quoted, _ := json.Marshal(echo)
		w.WriteHeader(status)
		if status == http.StatusCreated && strings.Contains(r.URL.Path, "/version1/") {
			fmt.Fprintf(w, `{"SMSMessageData":{"Message":%s,"Recipients":[{"statusCode":406,"status":%s,"messageId":"None"}]}}`, quoted, quoted)
			return
		}
		fmt.Fprintf(w, `{"code":21617,"message":%s,"error":%s}`, quoted, quoted)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestErrorsNeverContainTheMessageTextOrCredentials(t *testing.T) {
	secrets := []string{testText, testCode, url.QueryEscape(testText), "secret-api-key", "secret-auth-token"}
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("Send succeeded; want an error")
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains %q", err.Error(), s)
			}
		}
	}
	for _, status := range []int{http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusInternalServerError} {
		srv := echoServer(t, status)
		for _, s := range senders(srv.URL) {
			t.Run(fmt.Sprintf("%s/echo %d", s.Name(), status), func(t *testing.T) {
				_, err := s.Send(context.Background(), testMessage)
				check(t, err)
			})
		}
	}
	t.Run("plain-text echo", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "bad request: %s / %s", raw, testText)
		}))
		t.Cleanup(srv.Close)
		for _, s := range senders(srv.URL) {
			_, err := s.Send(context.Background(), testMessage)
			check(t, err)
		}
	})
	t.Run("transport error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		for _, s := range senders(base) {
			_, err := s.Send(context.Background(), testMessage)
			check(t, err)
		}
	})
}

func TestUnusableMessageIsRefusedWithoutACall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	for _, m := range []Message{{To: "", Text: "hi"}, {To: "+", Text: "hi"}, {To: testPhone, Text: "  "}} {
		for _, s := range append(senders(srv.URL), &Sandbox{}) {
			_, err := s.Send(context.Background(), m)
			if se := asSendError(t, err); se.Temporary {
				t.Errorf("%s %+v: Temporary = true, want final", s.Name(), m)
			}
		}
	}
}

// roundTripFunc lets a test answer requests without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUnsetBaseURLUsesTheProvidersPublicHost(t *testing.T) {
	tests := []struct {
		sender  func(*http.Client) SMSSender
		wantURL string
		reply   string
		status  int
	}{
		{
			sender:  func(c *http.Client) SMSSender { return AfricasTalking{Username: "u", APIKey: "k", Client: c} },
			wantURL: "https://api.africastalking.com/version1/messaging",
			reply:   atReply(101, "Success", "ATXid_9"), status: 201,
		},
		{
			sender: func(c *http.Client) SMSSender {
				return Twilio{AccountSID: "AC9", AuthToken: "t", From: "+1", Client: c}
			},
			wantURL: "https://api.twilio.com/2010-04-01/Accounts/AC9/Messages.json",
			reply:   `{"sid":"SM9"}`, status: 201,
		},
		{
			sender:  func(c *http.Client) SMSSender { return Termii{APIKey: "k", From: "x", Client: c} },
			wantURL: "https://api.ng.termii.com/api/sms/send",
			reply:   `{"message_id":"9"}`, status: 200,
		},
	}
	for _, tt := range tests {
		var gotURL string
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			gotURL = r.URL.String()
			return &http.Response{StatusCode: tt.status, Body: io.NopCloser(strings.NewReader(tt.reply)), Header: http.Header{}}, nil
		})}
		s := tt.sender(client)
		t.Run(s.Name(), func(t *testing.T) {
			if _, err := s.Send(context.Background(), testMessage); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if gotURL != tt.wantURL {
				t.Errorf("URL = %q, want %q", gotURL, tt.wantURL)
			}
		})
	}
}

func TestEndlessResponseIsReadOnlyUpTo64KiB(t *testing.T) {
	var (
		mu      sync.Mutex
		written int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		chunk := bytes.Repeat([]byte(" "), 4096)
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			mu.Lock()
			written += n
			tooMuch := written > 64<<20
			mu.Unlock()
			if err != nil || tooMuch {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	for _, s := range senders(srv.URL) {
		t.Run(s.Name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := s.Send(ctx, testMessage)
			se := asSendError(t, err)
			if se.Temporary {
				t.Errorf("a cut-off 201 answer must not be retried (it may have been sent): %v", se)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if written > 64<<20 {
		t.Errorf("the server wrote %d bytes: the body was not cut off", written)
	}
}

func TestSendErrorReadsWell(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	tests := []struct {
		err  *SendError
		want string
	}{
		{&SendError{Provider: "twilio", Status: 400, Message: "21211 invalid To"}, "sms twilio: status 400: 21211 invalid To"},
		{&SendError{Provider: "termii", Status: 503, Message: "Service Unavailable", Temporary: true}, "sms termii: status 503: Service Unavailable (temporary)"},
		{&SendError{Provider: "africastalking", Temporary: true, Err: cause}, "sms africastalking: dial tcp: connection refused (temporary)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if !errors.Is(&SendError{Err: cause}, cause) {
		t.Error("Unwrap does not expose the cause")
	}
}

func TestSandboxKeepsAMailboxPerPhone(t *testing.T) {
	s := &Sandbox{}
	var _ SMSSender = s
	sends := []Message{
		{To: "+2348031234567", Text: "Receipt: NGN 5,000 to Ada"},
		{To: "+233241234567", Text: "You are invited"},
		{To: "+2348031234567", Text: "Please re-link your account"},
	}
	for i, m := range sends {
		id, err := s.Send(context.Background(), m)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if want := fmt.Sprintf("sandbox_%d", i+1); id != want {
			t.Errorf("id = %q, want %q", id, want)
		}
	}
	tests := []struct {
		phone string
		want  []Message
	}{
		{"+2348031234567", []Message{sends[0], sends[2]}},
		{"2348031234567", []Message{sends[0], sends[2]}},
		{"+233241234567", []Message{sends[1]}},
		{"+2348000000000", nil},
	}
	for _, tt := range tests {
		if got := s.Inbox(tt.phone); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Inbox(%q) = %v, want %v", tt.phone, got, tt.want)
		}
	}
	if got := s.Sent(); !reflect.DeepEqual(got, sends) {
		t.Errorf("Sent() = %v, want %v", got, sends)
	}
	s.Sent()[0].Text = "changed" // a copy: the mailbox must not change
	if got := s.Sent()[0].Text; got != sends[0].Text {
		t.Errorf("Sent() exposes the mailbox: first text is now %q", got)
	}
}

func TestSandboxIsSafeForConcurrentUse(t *testing.T) {
	s := &Sandbox{Log: zerolog.New(io.Discard)}
	var wg sync.WaitGroup
	ids := make(chan string, 100)
	for i := range 100 {
		wg.Go(func() {
			id, err := s.Send(context.Background(), Message{To: fmt.Sprintf("+23480312345%02d", i%10), Text: "t"})
			if err != nil {
				t.Error(err)
			}
			ids <- id
			s.Inbox("+2348031234500")
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %q given twice", id)
		}
		seen[id] = true
	}
	if n := len(s.Sent()); n != 100 {
		t.Errorf("Sent() has %d messages, want 100", n)
	}
	if n := len(s.Inbox("+2348031234500")); n != 10 {
		t.Errorf("Inbox has %d messages, want 10", n)
	}
}

func TestSandboxLogLineMasksThePhoneAndLeavesOutTheText(t *testing.T) {
	var logs bytes.Buffer
	s := &Sandbox{Log: zerolog.New(&logs)}
	if _, err := s.Send(context.Background(), Message{To: "+2348031234001", Text: "Receipt: NGN 5,000 sent"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	line := logs.String()
	var entry map[string]any
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	want := map[string]any{"level": "info", "to": "+234*******001", "units": float64(23), "id": "sandbox_1"}
	for k, v := range want {
		if entry[k] != v {
			t.Errorf("log %s = %v, want %v", k, entry[k], v)
		}
	}
	if strings.Contains(line, "8031234") {
		t.Errorf("log line %q shows the phone number", line)
	}
	if strings.Contains(line, "Receipt") {
		t.Errorf("log line %q shows the text, which may quote what its reader typed", line)
	}
}

func TestSandboxHonoursACancelledContext(t *testing.T) {
	s := &Sandbox{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Send(ctx, testMessage)
	if se := asSendError(t, err); !se.Temporary {
		t.Errorf("Temporary = false, want true")
	}
	if len(s.Sent()) != 0 {
		t.Error("a cancelled send was recorded")
	}
}

func TestMaskKeepsCountryPrefixAndLastThreeDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+2348031234001", "+234*******001"},
		{"+233241234567", "+233******567"},
		{"2348031234567", "234*******567"},
		{"+234567", "*******"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := phone.Mask(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
