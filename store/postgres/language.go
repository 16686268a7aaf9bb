package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
)

// setLanguageSQL makes $2 the language of the phone of key $1, chosen at
// $3 (the database's clock when it is NULL). A choice already held keeps
// its row, and its time, unwritten.
const setLanguageSQL = `INSERT INTO phone_languages (phone_key, language, updated)
	VALUES ($1, $2, coalesce($3::timestamptz, now()))
	ON CONFLICT (phone_key) DO UPDATE SET language = EXCLUDED.language, updated = EXCLUDED.updated
	WHERE phone_languages.language <> EXCLUDED.language`

// queueLanguage adds to b the statement that makes language the choice of
// the phone of key, chosen at at (the database's clock when zero): the
// commit's, in its batch of writes.
func queueLanguage(b *pgx.Batch, key, language string, at time.Time) {
	b.Queue(setLanguageSQL, key, language, nullTime(at))
}

// PhoneLanguage returns the language a phone (with or without its "+")
// chose in a session's commit (link.Change.Language): "" when it chose
// none.
func (db *DB) PhoneLanguage(ctx context.Context, phone string) (string, error) {
	var language string
	err := db.pool.QueryRow(ctx, phoneLanguageSQL, link.PhoneKey(phone)).Scan(&language)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read phone language: %w", err)
	}
	return language, nil
}

// phoneLanguageSQL reads phone $1's chosen language.
const phoneLanguageSQL = `SELECT language FROM phone_languages WHERE phone_key = $1`
