package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
)

// bucketPhoneLanguage holds each phone's chosen language: phone key →
// language code (kit.Language's). It has no retention: a choice is kept
// until the phone makes another, one short key per phone that ever chose. Like every bucket it is
// created at open, so files of schema 3 written before it existed take it
// without a migration.
var bucketPhoneLanguage = []byte("phone_language")

// PhoneLanguage returns the language a phone (with or without its "+")
// chose in a session's commit (link.Change.Language): "" when it chose
// none.
func (db *DB) PhoneLanguage(_ context.Context, phone string) (string, error) {
	var language string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		language = string(tx.Bucket(bucketPhoneLanguage).Get([]byte(link.PhoneKey(phone)))) // string() copies
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read phone language: %w", err)
	}
	return language, nil
}

// putLanguage makes language the choice of the phone of key in tx. A
// choice already held is left as it is (its page is not rewritten), so
// running it again, as the group commit may, changes nothing.
func putLanguage(tx *bolt.Tx, key, language string) error {
	b, k := tx.Bucket(bucketPhoneLanguage), []byte(key)
	if bytes.Equal(b.Get(k), []byte(language)) {
		return nil
	}
	if err := b.Put(k, []byte(language)); err != nil {
		return fmt.Errorf("language of phone %s: %w", key, err)
	}
	return nil
}
