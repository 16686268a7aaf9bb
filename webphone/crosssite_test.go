package webphone

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The proxy adds the callback token to what it forwards, so a form on any
// web site the operator's browser opens can drive USSD sessions for any
// phone through the loopback admin listener. A cross-site request must
// not reach the callback listener.
func TestCrossSiteHopIsNotForwardedWithTheToken(t *testing.T) {
	var forwarded atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Callback-Token") == "tok" {
			forwarded.Add(1)
		}
		_, _ = w.Write([]byte("CON ok"))
	}))
	defer upstream.Close()
	h := Handler(Options{Callbacks: upstream.URL, CallbackToken: "tok", Dialects: []string{"africastalking"}})
	body := "sessionId=evil1&phoneNumber=%2B2348030000009&serviceCode=*384*123%23&text="
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8081/ussd/africastalking", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if forwarded.Load() != 0 {
		t.Errorf("a cross-site form post was forwarded with the callback token (status %d)", w.Code)
	}
	// Nor a same-site request without the page's header (a form, an
	// image): the page's own fetches carry it.
	plain := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8081/ussd/africastalking", strings.NewReader(body))
	plain.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(httptest.NewRecorder(), plain)
	page := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8081/ussd/africastalking", strings.NewReader(body))
	page.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	page.Header.Set(PageHeader, "1")
	page.Header.Set("Sec-Fetch-Site", "same-origin")
	h.ServeHTTP(httptest.NewRecorder(), page)
	if forwarded.Load() != 1 {
		t.Errorf("%d requests forwarded, want only the page's own", forwarded.Load())
	}
}
