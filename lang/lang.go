// Package lang is the one catalogue of the words users read, in every
// language the gateway speaks: English (en), Nigerian Pidgin (pcm), Hausa
// (ha), Yoruba (yo) and Igbo (ig). Each language is an embedded TOML file
// of messages keyed by name, with named placeholders ({bank}); an operator
// overrides any of them from a file of the same shape, per language.
//
// TOML files, rather than golang.org/x/text/message catalogues, because
// the people who correct them are translators and operators, not Go
// programmers: a flat file per language reads and diffs like a glossary,
// the override file has the same shape, and named placeholders say what
// goes where where printf verbs would not.
//
// Every message is GSM-7 once it leaves here: letters outside the
// alphabet (ẹ ọ ṣ, tone marks, ɓ ɗ ƙ ƴ, ị ụ ṅ) are transliterated the way
// these languages are written in SMS (package gsm).
package lang

import (
	"embed"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/ussdlink/ussdlink/gsm"
)

// The languages, by their codes (ISO 639).
const (
	English = "en"
	Pidgin  = "pcm"
	Hausa   = "ha"
	Yoruba  = "yo"
	Igbo    = "ig"
)

// All lists every language the catalogue holds, in the order a language
// choice offers them by default.
var All = []string{English, Pidgin, Hausa, Yoruba, Igbo}

//go:embed messages/*.toml
var files embed.FS

// placeholder finds a message's named placeholders.
var placeholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// Catalogue holds every message in every language. It is read-only once
// loaded (and overridden): safe for concurrent use.
type Catalogue struct {
	msgs map[string]map[string]string // language → key → message, in GSM-7 (gsm.Transliterate)
}

// Load reads the embedded catalogue and checks it: every message of English
// exists in every language, with the same placeholders, and no language has
// a message English lacks.
func Load() (*Catalogue, error) {
	c := &Catalogue{msgs: map[string]map[string]string{}}
	for _, code := range All {
		data, err := files.ReadFile("messages/" + code + ".toml")
		if err != nil {
			return nil, fmt.Errorf("lang: %s: %w", code, err)
		}
		m := map[string]string{}
		if err := toml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("lang: messages/%s.toml: %w", code, err)
		}
		for key, msg := range m {
			m[key] = gsm.Transliterate(msg) // once, not at every Text
		}
		c.msgs[code] = m
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// embedded is the catalogue as built in, read once.
var embedded = sync.OnceValues(Load)

// Embedded is the built-in catalogue, read once and shared: for packages
// whose caller gave them none. It must not be overridden (Load a fresh one
// for that). Its error, which the package's tests rule out, leaves an
// empty catalogue that says message keys.
func Embedded() *Catalogue {
	c, err := embedded()
	if err != nil {
		return &Catalogue{}
	}
	return c
}

// Check reports the first message missing from a language, extra in one,
// or whose placeholders differ from English's.
func (c *Catalogue) Check() error {
	en := c.msgs[English]
	for _, code := range All {
		m := c.msgs[code]
		for _, key := range slices.Sorted(maps.Keys(en)) {
			msg, ok := m[key]
			switch {
			case !ok:
				return fmt.Errorf("lang: %s lacks %q", code, key)
			case strings.TrimSpace(msg) == "":
				return fmt.Errorf("lang: %s's %q is empty", code, key)
			case !slices.Equal(Placeholders(msg), Placeholders(en[key])):
				return fmt.Errorf("lang: %s's %q has placeholders %v, English's %v", code, key, Placeholders(msg), Placeholders(en[key]))
			}
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if _, ok := en[key]; !ok {
				return fmt.Errorf("lang: %s has %q, which English lacks", code, key)
			}
		}
	}
	return nil
}

// Placeholders lists a message's placeholder names, sorted.
func Placeholders(msg string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(msg, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

// Override replaces messages from an operator's TOML file: a table per
// language ([ha]) of key = message. An unknown language, an unknown key or
// a placeholder the message does not take is refused, naming it; nothing is
// replaced then.
func (c *Catalogue) Override(data []byte) error {
	var o map[string]map[string]string
	if err := toml.Unmarshal(data, &o); err != nil {
		return fmt.Errorf("texts: %w", err)
	}
	next := make(map[string]map[string]string, len(c.msgs))
	for code, m := range c.msgs {
		next[code] = maps.Clone(m)
	}
	for _, code := range slices.Sorted(maps.Keys(o)) {
		m, ok := next[code]
		if !ok {
			return fmt.Errorf("texts: [%s]: not a language (%s)", code, strings.Join(All, ", "))
		}
		for _, key := range slices.Sorted(maps.Keys(o[code])) {
			msg := o[code][key]
			want, ok := m[key]
			switch {
			case !ok:
				return fmt.Errorf("texts: [%s] %s: no such message", code, key)
			case strings.TrimSpace(msg) == "":
				return fmt.Errorf("texts: [%s] %s: empty", code, key)
			case !slices.Equal(Placeholders(msg), Placeholders(want)):
				return fmt.Errorf("texts: [%s] %s: placeholders %v, want %v", code, key, Placeholders(msg), Placeholders(want))
			}
			m[key] = gsm.Transliterate(msg)
		}
	}
	c.msgs = next
	return nil
}

// Has reports whether code is a language of the catalogue.
func (c *Catalogue) Has(code string) bool {
	_, ok := c.msgs[code]
	return ok
}

// Text is the message key in language code (English when code is not one),
// with its placeholders filled from args (name, value pairs), in GSM-7. A
// key the catalogue lacks is a bug: it comes back as the key itself.
func (c *Catalogue) Text(code, key string, args ...string) string {
	m, ok := c.msgs[code]
	if !ok {
		m = c.msgs[English]
	}
	msg, ok := m[key]
	if !ok {
		return key
	}
	if len(args) > 1 && strings.IndexByte(msg, '{') >= 0 {
		return gsm.Transliterate(fill(msg, args)) // the message is already: its values may not be
	}
	return msg
}

// fill puts args (name, value pairs) into msg's placeholders, in one pass;
// a placeholder with no value is left as it is.
func fill(msg string, args []string) string {
	var b strings.Builder
	b.Grow(len(msg) + 32)
	for {
		open := strings.IndexByte(msg, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(msg[open:], '}')
		if end < 0 {
			break
		}
		name, value, found := msg[open+1:open+end], "", false
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == name {
				value, found = args[i+1], true
				break
			}
		}
		b.WriteString(msg[:open])
		if found {
			b.WriteString(value)
		} else {
			b.WriteString(msg[open : open+end+1])
		}
		msg = msg[open+end+1:]
	}
	b.WriteString(msg)
	return b.String()
}

// Spoken is the language spoken until a phone chooses one: preferred when
// it is offered, else English when it is, else the first offered; with
// none offered, preferred or English. Every part of the gateway that
// speaks before a phone has chosen asks this one rule.
func Spoken(offered []string, preferred string) string {
	switch {
	case len(offered) == 0 && preferred != "":
		return preferred
	case len(offered) == 0:
		return English
	case preferred != "" && slices.Contains(offered, preferred):
		return preferred
	case slices.Contains(offered, English):
		return English
	}
	return offered[0]
}

// Name is a language's name in itself ("Hausa", "Yoruba"), as a choice of
// language lists it.
func (c *Catalogue) Name(code string) string { return c.Text(code, "language_name") }

// Keys lists every message key, sorted.
func (c *Catalogue) Keys() []string { return slices.Sorted(maps.Keys(c.msgs[English])) }
