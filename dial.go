package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Phone is a terminal handset: it dials a running gateway over Africa's
// Talking's dialect, shows each screen, and sends what is typed, keeping the
// cumulative transcript an aggregator would.
type Phone struct {
	URL     string // the gateway's base URL
	Number  string // phone number, e.g. +2348031234567
	Code    string // the short code dialled
	Network string // networkCode sent with every hop
	Client  *http.Client
}

// runDial parses the dial command's flags and runs a Phone on the terminal.
func runDial(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ussdlink dial", flag.ContinueOnError)
	fs.SetOutput(stderr)
	p := Phone{}
	fs.StringVar(&p.URL, "url", "http://127.0.0.1:8080", "gateway base URL")
	fs.StringVar(&p.Number, "phone", "+2348030000001", "phone number dialling")
	fs.StringVar(&p.Code, "code", "*384*123#", "short code to dial")
	fs.StringVar(&p.Network, "network", "99999", "network code (99999 is the aggregator sandbox)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Dialling %s from %s (type 0 to exit at any prompt)\n", p.Code, p.Number)
	return p.Dial(ctx, stdin, stdout)
}

// Dial runs one USSD session: it shows each screen and reads the next input
// from in, one line per screen, until the gateway ends the session.
func (p Phone) Dial(ctx context.Context, in io.Reader, out io.Writer) error {
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	id := make([]byte, 8)
	rand.Read(id)
	session := "ATUid_" + hex.EncodeToString(id)
	lines := bufio.NewScanner(in)
	transcript := ""
	seen := len(p.inbox(ctx, client)) // texts received before this call
	for hop := 0; ; hop++ {
		body, err := p.send(ctx, client, session, transcript)
		if err != nil {
			return err
		}
		kind, text, _ := strings.Cut(body, " ")
		fmt.Fprintf(out, "\n+------------------------------\n%s\n+------------------------------\n", indent(text))
		if kind != "CON" {
			p.showTexts(ctx, client, out, seen)
			return nil
		}
		fmt.Fprint(out, "> ")
		if !lines.Scan() {
			return errors.New("hung up")
		}
		if hop == 0 {
			transcript = lines.Text()
		} else {
			transcript += "*" + lines.Text()
		}
	}
}

// send posts one hop and returns the gateway's reply body.
func (p Phone) send(ctx context.Context, client *http.Client, session, text string) (string, error) {
	form := url.Values{
		"sessionId":   {session},
		"serviceCode": {p.Code},
		"phoneNumber": {p.Number},
		"networkCode": {p.Network},
		"text":        {text},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.URL, "/")+"/ussd/africastalking", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", p.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("gateway answered %s", resp.Status)
	}
	return string(b), nil
}

// indent prefixes each screen line for the terminal frame.
func indent(s string) string {
	return "| " + strings.ReplaceAll(s, "\n", "\n| ")
}

// inboxText is a text the sandbox SMS provider holds for a phone.
type inboxText struct{ To, Text string }

// inbox reads the texts the gateway's sandbox SMS provider sent the phone;
// nothing when the gateway sends real texts.
func (p Phone) inbox(ctx context.Context, client *http.Client) []inboxText {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(p.URL, "/")+"/sms/sandbox/inbox?phone="+url.QueryEscape(p.Number), nil)
	if err != nil {
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var texts []inboxText
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&texts) != nil {
		return nil
	}
	return texts
}

// showTexts prints the texts that arrive after the session, waiting a
// little for the sender.
func (p Phone) showTexts(ctx context.Context, client *http.Client, out io.Writer, seen int) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if texts := p.inbox(ctx, client); len(texts) > seen {
			for _, t := range texts[seen:] {
				fmt.Fprintf(out, "\n[SMS to %s] %s\n", p.Number, t.Text)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
