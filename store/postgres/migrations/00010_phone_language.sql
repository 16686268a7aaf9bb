-- Each phone's chosen language (link.Change.Language, SetPhoneLanguage):
-- a code such as 'ha' or 'pcm' (kit.Language), by phone key (without its
-- "+"), set in the transaction of the session that chose it. It has no
-- retention: a choice is kept until the phone makes another or it is
-- forgotten, one short row per phone that ever chose. Keys sort byte by
-- byte (COLLATE "C"), as the bbolt store's keys do.
-- +goose Up
CREATE TABLE phone_languages (
    phone_key text COLLATE "C" PRIMARY KEY,
    language  text NOT NULL,
    updated   timestamptz NOT NULL -- when the choice last changed
);

-- +goose Down
DROP TABLE phone_languages;
