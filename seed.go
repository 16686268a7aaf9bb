package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/mono"
)

// Seed fills a store with finished link sessions and their links, as a
// busy gateway leaves them, to measure the gateway on a full store. The
// phones are numbers of one made-up range (+234 810 …), the accounts
// made-up ids; nothing is sent to Mono or to a partner.
type Seed struct {
	Sessions    int           // sessions to write, each with its link
	Concurrency int           // commits at once
	Keep        time.Duration // how long the sessions are kept before the sweeper deletes them
	Now         func() time.Time
}

// seedPhone is the first number of the seeded range.
const seedPhone = 2348100000000

// Run writes the sessions through st and reports how many it wrote.
func (sd Seed) Run(ctx context.Context, st menus.Store) (int, error) {
	now := sd.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, sd.Concurrency)
	for range max(sd.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(sd.Sessions) || ctx.Err() != nil {
					return
				}
				if err := st.Commit(ctx, seedChange(int(i), now, sd.Keep)); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	err := errors.Join(<-errs, ctx.Err())
	return int(done.Load()), err
}

// seedChange is the last commit of seeded session i: the session linked,
// with the link.
func seedChange(i int, now time.Time, keep time.Duration) link.Change {
	phone := fmt.Sprintf("+%d", seedPhone+i)
	account := mono.Account{AccountNumber: fmt.Sprintf("%010d", i), Name: "SEED HOLDER", Type: "SAVINGS_ACCOUNT",
		Currency: "NGN", Status: "active", Balance: 14457}
	l := &link.Link{AccountID: fmt.Sprintf("seed%020d", i), Phone: phone, Institution: "5f2d08be60b92e2888287706",
		Bank: "GTBank", AuthMethod: mono.InternetBanking, Masked: "****" + account.AccountNumber[6:], Currency: "NGN",
		SessionID: fmt.Sprintf("seed_%d", i), Linked: now}
	login := mono.UI{Title: "Log in to GTBank", Form: []mono.Element{
		{Type: "elements.input", Name: "username", Hint: "UserID or Account Number", ContentType: "string"},
		{Type: "elements.input", Name: "password", Hint: "Password", ContentType: "password"},
	}}
	s := &menus.Session{
		ID: l.SessionID, Phone: phone, ServiceCode: "*384*123#", Network: "62130", State: menus.StateLinked,
		Created: now, Updated: now, Expires: now.Add(keep), Purge: now.Add(keep), HopAt: now, Hops: 5,
		Mark:  menus.Mark{Len: 23, Sum: make([]byte, 32), Key: "139497ca"},
		Reply: link.Reply{Text: "Done! GTBank account " + l.Masked + " is linked. Thank you.", End: true},
		Bank: &menus.Bank{ID: l.Institution, Name: l.Bank, Methods: []mono.AuthMethod{
			{ID: "60d071acf73e6468062ae806", Type: mono.InternetBanking, Name: "Internet Banking", UI: login}}},
		Method: mono.InternetBanking, Form: menus.Flatten(login), FormKind: "login", Field: 2,
		MonoSession: fmt.Sprintf("session_seed%012d", i), MonoExpires: now.Add(30 * time.Minute),
		Accounts: []mono.Account{account}, Chosen: &account, Reason: menus.ReasonLinked, Link: l,
	}
	r, err := menus.Record(s)
	if err != nil {
		panic(err) // a fixed session always encodes
	}
	return link.Change{Session: r, Link: l}
}

// runSeed is the seed command: it fills the configured store and exits.
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ussdlink seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	m := NewMain(stderr)
	sd := Seed{Now: time.Now}
	fs.StringVar(&m.ConfigPath, "config", m.ConfigPath, "configuration file (TOML) naming the store")
	fs.IntVar(&sd.Sessions, "sessions", 100000, "finished sessions to write, each with its link")
	fs.IntVar(&sd.Concurrency, "concurrency", 256, "commits at once")
	fs.DurationVar(&sd.Keep, "keep", 30*24*time.Hour, "how long the sweeper keeps the seeded sessions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := LoadConfig(m.ConfigPath, true)
	if err != nil {
		return err
	}
	m.Config = cfg
	m.Log, _ = newLogger(stderr, cfg.Log)
	if _, err := m.openStore(ctx, cfg); err != nil {
		return err
	}
	start := time.Now()
	n, err := sd.Run(ctx, m.db)
	elapsed := time.Since(start)
	if cerr := m.db.Close(); err == nil {
		err = cerr
	}
	fmt.Fprintf(stdout, "seed: wrote %d sessions and their links in %s (%.0f a second)\n", n, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds())
	return err
}
