package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// bucketPhoneLanguage holds each phone's chosen language: phone key →
// language code (kit.Language's). It has no retention: a choice is kept
// until the phone makes another or it is forgotten (SetPhoneLanguage with
// ""), one short key per phone that ever chose. Like every bucket it is
// created at open, so files of schema 3 written before it existed take it
// without a migration.
var bucketPhoneLanguage = []byte("phone_language")

// errNoPhone refuses a language for no phone at all.
var errNoPhone = errors.New("no phone")

// PhoneLanguage returns the language a phone (with or without its "+")
// chose, in a session's commit (link.Change.Language) or through
// SetPhoneLanguage: "" when it chose none.
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

// SetPhoneLanguage remembers the language a phone (with or without its
// "+") chose, replacing an earlier choice, for the partner API and the
// shortcuts that set it outside a session; "" forgets the phone's choice.
// A language that is not a code (kit.Language) is refused, and nothing
// changes.
func (db *DB) SetPhoneLanguage(_ context.Context, phone, language string) error {
	if err := kit.Language(language); err != nil {
		return fmt.Errorf("set phone language: %w", err)
	}
	key := link.PhoneKey(phone)
	if key == "" {
		return fmt.Errorf("set phone language: %w", errNoPhone)
	}
	if err := db.writes.do(func(tx *bolt.Tx) error { return putLanguage(tx, key, language) }); err != nil {
		return fmt.Errorf("set phone language: %w", err)
	}
	return nil
}

// putLanguage makes language the choice of the phone of key in tx; ""
// deletes it. A choice already held is left as it is (its page is not
// rewritten), so running it again, as the group commit may, changes
// nothing.
func putLanguage(tx *bolt.Tx, key, language string) error {
	b, k := tx.Bucket(bucketPhoneLanguage), []byte(key)
	if language == "" {
		return b.Delete(k)
	}
	if bytes.Equal(b.Get(k), []byte(language)) {
		return nil
	}
	if err := b.Put(k, []byte(language)); err != nil {
		return fmt.Errorf("language of phone %s: %w", key, err)
	}
	return nil
}
