package webphone

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// everyDialect is every route the gateway serves.
var everyDialect = []string{"africastalking", "hubtel", "arkesel", "nalo", "hollatags"}

// seen is one request the fake callback listener received.
type seen struct {
	method, path, query, contentType, token, cookie, authorization, forwardedFor string
	body                                                                         string
}

// listener is a fake callback listener: it records each request and
// answers with a fixed reply.
type listener struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
}

// newListener serves a fake callback listener until the test ends.
func newListener(t *testing.T) *listener {
	t.Helper()
	l := &listener{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.got = append(l.got, seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, contentType: r.Header.Get("Content-Type"),
			token: r.Header.Get("X-Callback-Token"), cookie: r.Header.Get("Cookie"), authorization: r.Header.Get("Authorization"),
			forwardedFor: r.Header.Get("X-Forwarded-For"), body: string(body)})
		l.mu.Unlock()
		if r.URL.Path == "/sms/sandbox/inbox" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `[{"To":"+2348030000001","Text":"Your GTBank account ****1234 is now linked."}]`)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "CON Choose bank\n1. GTBank")
	}))
	t.Cleanup(l.srv.Close)
	return l
}

// requests returns what the listener received so far.
func (l *listener) requests() []seen {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]seen(nil), l.got...)
}

// phone serves the browser phone in front of base with o's other fields.
func phone(t *testing.T, base string, o Options) *httptest.Server {
	t.Helper()
	o.Callbacks = base
	if o.Dialects == nil {
		o.Dialects = everyDialect
	}
	if o.ServiceCode == "" {
		o.ServiceCode = "*384*123#"
	}
	srv := httptest.NewServer(Handler(o))
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request as the page does (with PageHeader, unless the test
// set it otherwise) and returns the answer with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	if _, set := req.Header[PageHeader]; !set {
		req.Header.Set(PageHeader, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(t, req)
}

func TestPageAndAssetsAreServedWithTheirContentTypes(t *testing.T) {
	srv := phone(t, newListener(t).srv.URL, Options{})
	tests := []struct {
		name, path, contentType, contains string
	}{
		{name: "the page at the root", path: "/", contentType: "text/html; charset=utf-8", contains: `<script src="app.js" defer>`},
		{name: "the page as index.html", path: "/index.html", contentType: "text/html; charset=utf-8", contains: `id="screen"`},
		{name: "the script", path: "/app.js", contentType: "text/javascript; charset=utf-8", contains: "africastalking"},
		{name: "the style sheet", path: "/style.css", contentType: "text/css; charset=utf-8", contains: ".screen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q, want one that loads nothing from outside", got)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
		})
	}
}

func TestPageLoadsNothingFromOutside(t *testing.T) {
	srv := phone(t, newListener(t).srv.URL, Options{})
	absolute := regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"(//|[a-z]+:)`)
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		_, body := get(t, srv.URL+path)
		for _, m := range absolute.FindAllString(body, -1) {
			if !strings.Contains(m, "data:") {
				t.Errorf("%s refers outside: %s", path, m)
			}
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "@import") {
			t.Errorf("%s names an absolute URL", path)
		}
	}
}

func TestPageOffersTheConfiguredLine(t *testing.T) {
	tests := []struct {
		name     string
		o        Options
		want     []string
		dontWant []string
	}{
		{
			name: "every dialect, Africa's Talking chosen, the defaults filled in",
			o:    Options{ServiceCode: "*384*777#", ScreenLimit: 182, Inbox: true},
			want: []string{`<option value="africastalking" selected>Africa&#39;s Talking</option>`, `<option value="hollatags">HollaTags</option>`,
				`value="&#43;2348030000001"`, `id="code" name="code" type="text" value="*384*777#"`, `data-limit="182"`, `data-inbox="on"`},
		},
		{
			name:     "a dialect the page does not speak is left out",
			o:        Options{Dialects: []string{"hubtel", "twilio"}},
			want:     []string{`<option value="hubtel" selected>Hubtel</option>`, `data-limit="160"`, `data-inbox="off"`, "no sandbox SMS inbox"},
			dontWant: []string{"twilio", "africastalking"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := get(t, phone(t, newListener(t).srv.URL, tt.o).URL+"/")
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(body, w) {
					t.Errorf("page shows %q", w)
				}
			}
		})
	}
}

func TestHopsAreForwardedToTheirRouteIntact(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string // on the browser phone
		contentType string
		body        string
		wantPath    string
		wantQuery   string
	}{
		{name: "Africa's Talking's form", method: "POST", path: "/ussd/africastalking", contentType: "application/x-www-form-urlencoded",
			body:     "sessionId=ATUid_1&serviceCode=%2A384%2A123%23&phoneNumber=%2B2348030000001&networkCode=62130&text=1%2Ap%2Ass+%23good",
			wantPath: "/ussd/africastalking"},
		{name: "Hubtel's JSON", method: "POST", path: "/ussd/hubtel", contentType: "application/json",
			body:     `{"Type":"Response","Mobile":"2348030000001","SessionId":"s1","ServiceCode":"384*123","Message":"pass_good","Operator":"mtn","Sequence":3,"ClientState":"seq:2"}`,
			wantPath: "/ussd/hubtel"},
		{name: "Arkesel's JSON", method: "POST", path: "/ussd/arkesel", contentType: "application/json",
			body: `{"sessionID":"a1","userID":"webphone","newSession":true,"msisdn":"2348030000001","userData":"*384*123#","network":"MTN"}`, wantPath: "/ussd/arkesel"},
		{name: "Nalo's JSON", method: "POST", path: "/ussd/nalo", contentType: "application/json",
			body: `{"USERID":"webphone","MSISDN":"2348030000001","USERDATA":"1","MSGTYPE":false,"NETWORK":"MTN","SESSIONID":"n1"}`, wantPath: "/ussd/nalo"},
		{name: "a query on a form hop is dropped", method: "POST", path: "/ussd/africastalking?token=guess", contentType: "application/x-www-form-urlencoded",
			body: "sessionId=s&phoneNumber=%2B2348030000001&text=", wantPath: "/ussd/africastalking"},
		{name: "HollaTags' query, less any token in it", method: "GET",
			path:     "/ussd/hollatags?session_msisdn=2348030000001&session_operation=continue&session_msg=p%2Ass+%23good&session_id=h1&token=guess",
			wantPath: "/ussd/hollatags", wantQuery: "session_id=h1&session_msg=p%2Ass+%23good&session_msisdn=2348030000001&session_operation=continue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListener(t)
			srv := phone(t, l.srv.URL, Options{CallbackToken: "cb-secret"})
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, body)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			req.Header.Set("Cookie", "admin_session=abc")
			req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			resp, got := do(t, req)
			if resp.StatusCode != http.StatusOK || got != "CON Choose bank\n1. GTBank" {
				t.Fatalf("answer %d %q, want the listener's 200 and body", resp.StatusCode, got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("answer's Content-Type = %q, want the listener's", ct)
			}
			reqs := l.requests()
			if len(reqs) != 1 {
				t.Fatalf("listener got %d requests, want 1", len(reqs))
			}
			s := reqs[0]
			want := seen{method: tt.method, path: tt.wantPath, query: tt.wantQuery, contentType: tt.contentType, token: "cb-secret", body: tt.body}
			if s != want {
				t.Errorf("listener got\n%+v\nwant\n%+v", s, want)
			}
		})
	}
}

func TestNoTokenIsSentWhenNoneIsConfigured(t *testing.T) {
	l := newListener(t)
	srv := phone(t, l.srv.URL, Options{})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ussd/africastalking", strings.NewReader("sessionId=s"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Callback-Token", "from-the-browser")
	do(t, req)
	if reqs := l.requests(); len(reqs) != 1 || reqs[0].token != "" {
		t.Errorf("listener got %+v, want one hop without a token", reqs)
	}
}

func TestCallbacksUnderAPathPrefixAreReached(t *testing.T) {
	l := newListener(t)
	srv := phone(t, l.srv.URL+"/gateway/", Options{})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ussd/nalo", strings.NewReader("{}"))
	do(t, req)
	if reqs := l.requests(); len(reqs) != 1 || reqs[0].path != "/gateway/ussd/nalo" {
		t.Errorf("listener got %+v, want /gateway/ussd/nalo", reqs)
	}
}

func TestRoutesThePhoneDoesNotServeAre404(t *testing.T) {
	tests := []struct {
		name, method, path string
		o                  Options
	}{
		{name: "an unknown dialect", method: "POST", path: "/ussd/twilio"},
		{name: "a dialect not configured", method: "POST", path: "/ussd/hubtel", o: Options{Dialects: []string{"africastalking"}}},
		{name: "the session-end notification route", method: "POST", path: "/ussd/africastalking/events"},
		{name: "the inbox when there is none", method: "GET", path: "/inbox?phone=%2B2348030000001"},
		{name: "an unknown asset", method: "GET", path: "/nope.js"},
		{name: "the embedded directory itself", method: "GET", path: "/static/app.js"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListener(t)
			srv := phone(t, l.srv.URL, tt.o)
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("{}"))
			if resp, _ := do(t, req); resp.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404", resp.StatusCode)
			}
			if n := len(l.requests()); n != 0 {
				t.Errorf("listener got %d requests, want none", n)
			}
		})
	}
}

func TestHopsInAnotherMethodThanTheAggregatorsAreRefused(t *testing.T) {
	tests := []struct{ name, method, path, allow string }{
		{name: "a GET to a POST aggregator", method: "GET", path: "/ussd/africastalking", allow: "POST"},
		{name: "a POST to HollaTags, which calls with GET", method: "POST", path: "/ussd/hollatags", allow: "GET"},
		{name: "a PUT", method: "PUT", path: "/ussd/hubtel", allow: "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListener(t)
			req, _ := http.NewRequest(tt.method, phone(t, l.srv.URL, Options{}).URL+tt.path, nil)
			resp, _ := do(t, req)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tt.allow {
				t.Errorf("status %d, Allow %q; want 405, %q", resp.StatusCode, resp.Header.Get("Allow"), tt.allow)
			}
			if n := len(l.requests()); n != 0 {
				t.Errorf("listener got %d requests, want none", n)
			}
		})
	}
}

func TestOversizedHopsAreRefusedBeforeTheGateway(t *testing.T) {
	tests := []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{name: "a body over the bound", method: "POST", path: "/ussd/hubtel", body: bytes.Repeat([]byte("x"), MaxBody+1), want: http.StatusRequestEntityTooLarge},
		{name: "a query over the bound", method: "GET", path: "/ussd/hollatags?session_msg=" + strings.Repeat("x", MaxBody), want: http.StatusRequestURITooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListener(t)
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, phone(t, l.srv.URL, Options{}).URL+tt.path, body)
			if resp, _ := do(t, req); resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if n := len(l.requests()); n != 0 {
				t.Errorf("listener got %d requests, want none", n)
			}
		})
	}
	t.Run("a body at the bound goes through", func(t *testing.T) {
		l := newListener(t)
		req, _ := http.NewRequest(http.MethodPost, phone(t, l.srv.URL, Options{}).URL+"/ussd/hubtel", bytes.NewReader(bytes.Repeat([]byte("x"), MaxBody)))
		if resp, _ := do(t, req); resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
		if reqs := l.requests(); len(reqs) != 1 || len(reqs[0].body) != MaxBody {
			t.Errorf("listener did not get the whole body")
		}
	})
}

func TestInboxIsForwardedForOnlyThePhone(t *testing.T) {
	l := newListener(t)
	srv := phone(t, l.srv.URL, Options{Inbox: true, CallbackToken: "cb-secret"})
	resp, body := get(t, srv.URL+"/inbox?phone=%2B2348030000001&other=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "is now linked") {
		t.Fatalf("answer %d %q, want the inbox", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	reqs := l.requests()
	if len(reqs) != 1 {
		t.Fatalf("listener got %d requests, want 1", len(reqs))
	}
	if got, want := reqs[0], (seen{method: "GET", path: "/sms/sandbox/inbox", query: "phone=%2B2348030000001"}); got != want {
		t.Errorf("listener got %+v, want %+v", got, want)
	}
}

func TestAnUnreachableGatewayIs502AndLogsNothingTyped(t *testing.T) {
	l := newListener(t)
	base := l.srv.URL
	l.srv.Close()
	var logs bytes.Buffer
	srv := phone(t, base, Options{Log: zerolog.New(&logs)})
	tests := []struct{ name, method, path, body string }{
		{name: "a query-string hop", method: "GET", path: "/ussd/hollatags?session_msg=hunter2secret&session_id=h1&session_operation=continue"},
		{name: "a body hop", method: "POST", path: "/ussd/hubtel", body: `{"Message":"hunter2secret"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			resp, body := do(t, req)
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
			if strings.Contains(body, "hunter2secret") {
				t.Errorf("answer %q repeats what was typed", body)
			}
		})
	}
	if !strings.Contains(logs.String(), "did not answer") {
		t.Errorf("logs lack the failure: %s", logs.String())
	}
	if strings.Contains(logs.String(), "hunter2secret") {
		t.Errorf("logs carry what was typed: %s", logs.String())
	}
}

func TestAMisconfiguredGatewayAddressFailsHopsNotThePage(t *testing.T) {
	srv := phone(t, "not a url", Options{Inbox: true})
	if resp, _ := get(t, srv.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("page status %d, want 200", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ussd/africastalking", strings.NewReader("sessionId=s"))
	if resp, _ := do(t, req); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("hop status %d, want 502", resp.StatusCode)
	}
}
