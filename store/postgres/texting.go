package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
)

// OptOut records that a phone texted STOP (out true) or START (out false).
func (db *DB) OptOut(ctx context.Context, phone string, out bool, at time.Time) error {
	var err error
	if out {
		_, err = db.pool.Exec(ctx, `INSERT INTO opt_outs (phone_key, at) VALUES ($1, $2)
			ON CONFLICT (phone_key) DO UPDATE SET at = EXCLUDED.at`, link.PhoneKey(phone), at)
	} else {
		_, err = db.pool.Exec(ctx, `DELETE FROM opt_outs WHERE phone_key = $1`, link.PhoneKey(phone))
	}
	if err != nil {
		return fmt.Errorf("record opt-out: %w", err)
	}
	return nil
}

// OptedOut reports whether a phone asked for no more messages.
func (db *DB) OptedOut(ctx context.Context, phone string) (bool, error) {
	var out bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM opt_outs WHERE phone_key = $1)`, link.PhoneKey(phone)).Scan(&out)
	if err != nil {
		return false, fmt.Errorf("read opt-out: %w", err)
	}
	return out, nil
}

// Conversation returns a phone's current text conversation, or false.
func (db *DB) Conversation(ctx context.Context, phone string) (link.Conversation, bool, error) {
	var c link.Conversation
	err := db.pool.QueryRow(ctx, `SELECT session, seq, expires FROM conversations WHERE phone_key = $1`,
		link.PhoneKey(phone)).Scan(&c.Session, &c.Seq, &c.Expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return link.Conversation{}, false, nil
	case err != nil:
		return link.Conversation{}, false, fmt.Errorf("read text conversation: %w", err)
	}
	c.Expires = c.Expires.UTC()
	return c, true, nil
}

// SetConversation records (or, with an empty session, ends) a phone's
// text conversation; SweepConversations finds it by its expiry once
// abandoned.
func (db *DB) SetConversation(ctx context.Context, phone string, c link.Conversation) error {
	var err error
	if c.Session == "" {
		_, err = db.pool.Exec(ctx, `DELETE FROM conversations WHERE phone_key = $1`, link.PhoneKey(phone))
	} else {
		_, err = db.pool.Exec(ctx, `INSERT INTO conversations (phone_key, session, seq, expires) VALUES ($1, $2, $3, $4)
			ON CONFLICT (phone_key) DO UPDATE SET session = EXCLUDED.session, seq = EXCLUDED.seq, expires = EXCLUDED.expires`,
			link.PhoneKey(phone), c.Session, c.Seq, c.Expires)
	}
	if err != nil {
		return fmt.Errorf("record text conversation: %w", err)
	}
	return nil
}

// SweepConversations deletes the text conversations that expired before
// now (abandoned: the texter never wrote again), the longest expired
// first, at most max of them. It returns how many it deleted. A
// conversation that went on meanwhile is kept: its row is re-checked once
// locked.
func (db *DB) SweepConversations(ctx context.Context, now time.Time, max int) (int, error) {
	n, err := db.sweep(ctx, `DELETE FROM conversations c USING (
			SELECT phone_key FROM conversations WHERE expires < $1
			ORDER BY expires LIMIT $2 FOR UPDATE SKIP LOCKED) old
		WHERE c.phone_key = old.phone_key`, now, max)
	if err != nil {
		return 0, fmt.Errorf("sweep text conversations: %w", err)
	}
	return n, nil
}

// FirstDelivery records an inbound message id and reports whether this is
// the first time it arrives (providers retry until they get a 200). Of
// several instances taking one id at once, one is first.
func (db *DB) FirstDelivery(ctx context.Context, provider, id string, at time.Time) (bool, error) {
	tag, err := db.pool.Exec(ctx, `INSERT INTO inbound_seen (provider, id, seen) VALUES ($1, $2, $3)
		ON CONFLICT (provider, id) DO NOTHING`, provider, id, at)
	if err != nil {
		return false, fmt.Errorf("record inbound message: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ForgetDelivery forgets an inbound message id, so that the provider's
// retry of a message whose processing failed is taken again. The time it
// was seen goes with it: taken again, the id is kept from then.
func (db *DB) ForgetDelivery(ctx context.Context, provider, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM inbound_seen WHERE provider = $1 AND id = $2`, provider, id); err != nil {
		return fmt.Errorf("forget inbound message: %w", err)
	}
	return nil
}

// SweepInbound forgets inbound message ids seen before a time, the oldest
// first, at most max of them, and returns how many it forgot.
func (db *DB) SweepInbound(ctx context.Context, before time.Time, max int) (int, error) {
	n, err := db.sweep(ctx, `DELETE FROM inbound_seen s USING (
			SELECT provider, id FROM inbound_seen WHERE seen < $1
			ORDER BY seen LIMIT $2 FOR UPDATE SKIP LOCKED) old
		WHERE s.provider = old.provider AND s.id = old.id`, before, max)
	if err != nil {
		return 0, fmt.Errorf("sweep inbound message ids: %w", err)
	}
	return n, nil
}

// sweep runs a bounded DELETE taking a cut-off ($1) and a most ($2), and
// returns how many rows it deleted.
func (db *DB) sweep(ctx context.Context, sql string, cutoff time.Time, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	tag, err := db.pool.Exec(ctx, sql, cutoff, max)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// uncounted are the tables BucketSizes leaves out: the database's own
// facts (the seal key check) and the schema version, a few rows that never
// grow, so that every table listed empties once what it holds has passed
// its retention.
var uncounted = map[string]bool{"meta": true, "ussdlink_schema_version": true}

// BucketSizes counts the rows of every table of the store, by table name
// (a bucket of the bbolt store is a table here): what an operator watches
// to see that storage stays bounded. The counts are exact, read in one
// snapshot. Two tables listed never empty: the funnel's daily counters,
// which outlive their sessions and have no retention yet, and
// phone_languages, each phone's chosen language, kept until changed.
func (db *DB) BucketSizes(ctx context.Context) (map[string]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`)
	if err != nil {
		return nil, fmt.Errorf("count table rows: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("count table rows: %w", err)
	}
	var counts []string
	var args []any
	for _, name := range names {
		if uncounted[name] {
			continue
		}
		args = append(args, name)
		counts = append(counts, fmt.Sprintf("SELECT $%d::text, count(*) FROM %s", len(args), pgx.Identifier{name}.Sanitize()))
	}
	out := make(map[string]int, len(counts))
	if len(counts) == 0 {
		return out, nil
	}
	rows, err = db.pool.Query(ctx, strings.Join(counts, " UNION ALL "), args...)
	if err != nil {
		return nil, fmt.Errorf("count table rows: %w", err)
	}
	var name string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		out[name] = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count table rows: %w", err)
	}
	return out, nil
}
