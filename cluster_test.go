package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/mono/sandbox"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// cluster is several gateways on one PostgreSQL and one Mono, as behind a
// round-robin load balancer.
type cluster struct {
	gws []*Main
	sb  *sandbox.Sandbox
	url string // the database
}

// startCluster starts n gateways sharing a fresh database, a seal key and
// a Mono sandbox (whose user_slow takes slow to log in).
func startCluster(t *testing.T, n int, slow time.Duration, configure func(*Config)) *cluster {
	t.Helper()
	c := &cluster{url: pgtest.URL(t)}
	c.sb = sandbox.New(sandbox.Options{SecretKey: "test_sk_cluster", SlowDelay: slow})
	srv := httptest.NewServer(c.sb)
	t.Cleanup(func() { srv.Close(); c.sb.Close() })
	for i := range n {
		m := NewMain(&syncBuffer{})
		m.Config.USSD.Languages = []string{"en"}
		m.Config.HTTP.Addr, m.Config.Admin.Addr = "127.0.0.1:0", ""
		m.Config.Store.URL = c.url
		m.Config.Store.Path = filepath.Join(t.TempDir(), fmt.Sprintf("unused-%d.db", i))
		m.Config.Security.SealKey = sealKey(0x5A)
		m.Config.Mono.BaseURL, m.Config.Mono.SecretKey, m.Config.Mono.AppID = srv.URL, "test_sk_cluster", "app"
		m.Config.Log = LogConfig{Level: "debug", Format: "json", Phone: "masked"}
		if configure != nil {
			configure(&m.Config)
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		t.Cleanup(func() { m.Close() })
		c.gws = append(c.gws, m)
	}
	return c
}

// handset is a phone whose every hop goes to the next gateway.
func (c *cluster) handset(t *testing.T, w wire, phone string) *handset {
	h := newHandsetOn(t, c.gws[0], w, phone)
	for _, m := range c.gws {
		h.urls = append(h.urls, m.URL())
	}
	return h
}

func TestEveryHopOnAnotherInstance(t *testing.T) {
	c := startCluster(t, 3, 0, nil)
	for wi, w := range []wire{atWire{}, hubtelWire{}} {
		for _, tc := range linkFlows {
			t.Run(w.name()+"/"+tc.name, func(t *testing.T) {
				phone := fmt.Sprintf("%s%d", tc.phone[:len(tc.phone)-3], wi+5) + tc.phone[len(tc.phone)-2:]
				walkSteps(t, c.handset(t, w, phone), c.gws[0], tc.steps)
			})
		}
	}
}

func TestOneCallbackOnTwoInstancesAtOnceIsOneLogin(t *testing.T) {
	c := startCluster(t, 2, 0, nil)
	for i := range 5 {
		h := c.handset(t, atWire{}, fmt.Sprintf("+23480350000%02d", i))
		h.dial()
		h.send("1")
		h.send("user_good")
		before := c.sb.Calls("login")
		// The aggregator delivers the password hop to both instances at the
		// same moment (a retry racing the original).
		h.transcript += "*pass_good"
		replies := make([]string, 2)
		var wg sync.WaitGroup
		for k, m := range c.gws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				twin := *h
				twin.urls, twin.url = nil, m.URL()
				replies[k] = twin.post()
			}()
		}
		wg.Wait()
		if replies[0] != replies[1] || !strings.Contains(replies[0], "is linked") {
			t.Fatalf("replies differ or did not link:\n%s\n---\n%s", replies[0], replies[1])
		}
		if n := c.sb.Calls("login") - before; n != 1 {
			t.Errorf("the same hop on two instances reached Mono's login %d times, want 1", n)
		}
	}
}

func TestASlowBankIsCheckedOnAnotherInstance(t *testing.T) {
	c := startCluster(t, 2, 1200*time.Millisecond, func(c *Config) {
		c.USSD.HopBudget = Duration{300 * time.Millisecond}
	})
	h := c.handset(t, atWire{}, "+2348036000001")
	h.dial()                   // instance 0
	h.send("1")                // 1
	h.send("user_slow")        // 0
	got := h.send("pass_good") // 1: the bank outlives the hop budget
	if !strings.Contains(got, "still") && !strings.Contains(strings.ToLower(got), "wait") {
		t.Fatalf("slow login = %q, want the waiting screen", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.screen, "is linked") { // check again, on the other instance each time
		if time.Now().After(deadline) {
			t.Fatalf("the outcome never reached the other instance: %q", h.screen)
		}
		h.send("1")
	}
	if n := c.sb.Calls("login"); n != 1 {
		t.Errorf("logins = %d, want 1 (the other instance waited, never ran it again)", n)
	}
}

func TestTheLockoutHoldsAcrossInstances(t *testing.T) {
	const limit = 3
	c := startCluster(t, 3, 0, func(c *Config) {
		c.Security.MaxLoginFailures = limit
		c.Security.PhoneRate = 0
	})
	const phone = "+2348037000001"
	var wg sync.WaitGroup
	for i := range 20 { // twenty wrong passwords, from sessions spread over the instances
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := c.handset(t, atWire{}, phone)
			h.urls = h.urls[i%3:] // each session starts on another instance
			h.urls = append(h.urls, c.gws[0].URL(), c.gws[1].URL())[:3]
			h.dial()
			if !h.ended {
				h.send("1")
			}
			if !h.ended {
				h.send("user_good")
			}
			if !h.ended {
				h.send(fmt.Sprintf("wrong-%d", i))
			}
		}()
	}
	wg.Wait()
	if n := c.sb.Calls("login"); n > limit {
		t.Errorf("Mono saw %d logins of one phone over three instances, want at most %d", n, limit)
	}
}

func TestWebhooksLeaveOnceWhenTwoInstancesDeliver(t *testing.T) {
	rcv := newReceiver(t)
	c := startCluster(t, 2, 0, func(c *Config) {
		c.Partner.WebhookURL, c.Partner.WebhookSecret = rcv.srv.URL, rcv.secret
	})
	const flows = 12
	for i := range flows {
		h := c.handset(t, atWire{}, fmt.Sprintf("+23480380000%02d", i))
		h.dial()
		h.send("1")
		h.send("user_good")
		h.send("pass_good")
		h.expect("is linked")
	}
	deadline := time.Now().Add(20 * time.Second)
	for rcv.count("ACCOUNT_LINKED") < flows {
		if time.Now().After(deadline) {
			t.Fatalf("ACCOUNT_LINKED delivered %d times, want %d", rcv.count("ACCOUNT_LINKED"), flows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, m := range c.gws { // every instance's share of the outbox is sent
		settled(t, m)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, n := range rcv.ids {
		if n != 1 {
			t.Errorf("webhook %s delivered %d times, want once", id, n)
		}
	}
	if n := len(rcv.ids); n < flows*3 { // OPENED, INSTITUTION_SELECTED, …, ACCOUNT_LINKED per flow
		t.Errorf("%d webhooks for %d flows: events were lost", n, flows)
	}
}

func TestADroppedSessionResumesOnAnotherInstance(t *testing.T) {
	c := startCluster(t, 2, 0, nil)
	const phone = "+2348039000001"
	first := newHandsetOn(t, c.gws[0], atWire{}, phone) // every hop on instance 0
	first.dial()
	first.send("1")
	first.send("user_good")                              // then the network drops the session
	second := newHandsetOn(t, c.gws[1], atWire{}, phone) // the new dial lands on instance 1
	second.dial()
	second.expect("Continue")
	second.choose("Continue")
	second.expect("Password")
	second.send("pass_good")
	second.expect("is linked")
	s, err := storedSession(c.gws[0], first.session)
	if err != nil || s.Reason != "resumed" {
		t.Errorf("the dropped session = %+v, %v; want it ended as resumed", s, err)
	}
}

func TestAnIdempotencyKeySentToTwoInstancesAtOnceMakesOneInvitation(t *testing.T) {
	c := startCluster(t, 2, 0, func(c *Config) { c.Partner.APIKeys = []string{testAPIKey} })
	for i := range 8 {
		key := fmt.Sprintf("cluster-key-%d", i)
		body := map[string]any{"phone": fmt.Sprintf("+23480400000%02d", i), "reference": key}
		answers := make([]apiAnswer, len(c.gws))
		var wg sync.WaitGroup
		for k, m := range c.gws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[k] = postLink(t, m, key, body)
			}()
		}
		wg.Wait()
		if answers[0].status != 201 || answers[1].status != 201 {
			t.Fatalf("statuses = %d, %d; want 201 twice", answers[0].status, answers[1].status)
		}
		if answers[0].body["id"] != answers[1].body["id"] || answers[0].replayed == answers[1].replayed {
			t.Errorf("key %s made %v and %v (replayed %v, %v): want one invitation, the other answer its replay",
				key, answers[0].body["id"], answers[1].body["id"], answers[0].replayed, answers[1].replayed)
		}
	}
}
