package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ussdlink/ussdlink/link"
)

// Idempotent returns the answer stored under an idempotency key, if any.
func (db *DB) Idempotent(ctx context.Context, key string) (*link.Answer, bool, error) {
	var a link.Answer
	err := db.pool.QueryRow(ctx, `SELECT status, body, created, request_hash FROM idempotency WHERE key = $1`, key).
		Scan(&a.Status, &a.Body, &a.Created, &a.RequestHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read idempotency key: %w", err)
	}
	a.Created = a.Created.UTC()
	return &a, true, nil
}

// SaveAnswer stores an API answer under an idempotency key, replacing one
// (an expired key used again is aged from its new answer).
func (db *DB) SaveAnswer(ctx context.Context, key string, a link.Answer) error {
	if err := putAnswer(ctx, db.pool, key, a); err != nil {
		return fmt.Errorf("save idempotency answer: %w", err)
	}
	return nil
}

// putAnswer stores an answer under a key, replacing one.
func putAnswer(ctx context.Context, q querier, key string, a link.Answer) error {
	body := a.Body
	if body == nil {
		body = []byte{}
	}
	_, err := q.Exec(ctx, `INSERT INTO idempotency (key, status, body, created, request_hash) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body, created = EXCLUDED.created,
			request_hash = EXCLUDED.request_hash`, key, a.Status, body, a.Created, a.RequestHash)
	if err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}
