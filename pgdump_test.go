package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// stanbicPassword is typed at Stanbic's password prompt and left there,
// the PIN never typed: it is only ever held sealed, between screens.
const stanbicPassword = "St4nb1c-unsent-Pw!"

func TestNothingTypedReachesPostgreSQLInPlainText(t *testing.T) {
	c := startCluster(t, 2, 0, nil)
	secrets := append([]string{stanbicPassword}, typedSecrets...)
	flows := []struct {
		name   string
		wire   wire
		phone  string
		inputs []string
		want   string // on the last screen
		sealed bool   // the session still holds typed values, sealed
	}{
		{"linked", atWire{}, "+2348051000001", []string{"1", "user_good", "pass_good"}, "is linked", false},
		{"linked with a star and a hash", hubtelWire{}, "+2348051000002", []string{"1", "user_star", "p*ss #good"}, "is linked", false},
		{"linked after an OTP", atWire{}, "+2348051000003", []string{"1", "user_otp", "pass_good", "123456"}, "is linked", false},
		{"linked after a question", hubtelWire{}, "+2348051000004", []string{"1", "user_question", "pass_good", "lagos-city-secret", "lagos"}, "is linked", false},
		{"linked after a refused password", atWire{}, "+2348051000005", []string{"1", "user_good", "Wr0ng-P@ss*#", "user_good", "pass_good"}, "is linked", false},
		{"left at the PIN prompt", atWire{}, "+2348051000006", []string{"stanbic", "user_good", stanbicPassword}, "PIN", true},
		{"left with the OTP pending", hubtelWire{}, "+2348051000007", []string{"1", "user_otp", "pass_good"}, "OTP", true},
		{"left at the question", atWire{}, "+2348051000008", []string{"1", "user_question", "pass_good"}, "?", true},
	}
	var sessions, sealedSessions []string
	for _, f := range flows {
		h := c.handset(t, f.wire, f.phone)
		h.dial()
		for _, in := range f.inputs {
			h.send(in)
		}
		if !strings.Contains(h.screen, f.want) {
			t.Fatalf("%s: the last screen lacks %q:\n%s", f.name, f.want, h.screen)
		}
		sessions = append(sessions, h.session)
		if f.sealed {
			sealedSessions = append(sealedSessions, h.session)
		}
	}

	// The dump is taken with the sessions left mid-form still live, as an
	// operator's backup would be.
	dump := pgtest.Dump(t, c.url)
	for _, want := range append([]string{"COPY public.sessions", "COPY public.links", flows[0].phone}, sessions...) {
		if !bytes.Contains(dump, []byte(want)) {
			t.Fatalf("the dump lacks %q, so scanning it proves nothing:\n%.2000s", want, dump)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(context.Background())
	for _, id := range sealedSessions {
		var sealed bool
		if err := conn.QueryRow(ctx, `SELECT sealed IS NOT NULL FROM sessions WHERE id = $1`, id).Scan(&sealed); err != nil {
			t.Fatalf("session %s: %v", id, err)
		}
		if !sealed {
			t.Fatalf("session %s holds no sealed values, so the dump cannot show whether they leak", id)
		}
	}
	var links int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM links`).Scan(&links); err != nil {
		t.Fatalf("count links: %v", err)
	}
	if links == 0 {
		t.Fatalf("no link stored, so the dump holds less than the flows made")
	}

	if found := leaks(dump, secrets); len(found) > 0 {
		t.Errorf("the PostgreSQL dump holds typed secrets: %v", found)
	}
	for _, transcript := range []string{"1*user_good*pass_good", "user_otp*pass_good", "user_good*" + stanbicPassword} {
		if bytes.Contains(dump, []byte(transcript)) {
			t.Errorf("the PostgreSQL dump holds a transcript %q", transcript)
		}
	}
	key, err := base64.StdEncoding.DecodeString(sealKey(0x5A))
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{sealKey(0x5A), hex.EncodeToString(key), string(key)} {
		if bytes.Contains(dump, []byte(form)) {
			t.Errorf("the PostgreSQL dump holds the seal key (as %s)", fmt.Sprintf("%.16s…", form))
		}
	}
}
