package kit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// PhoneReads are the reads a link.FirstLook gathers, one by one.
type PhoneReads interface {
	LoginFailures(ctx context.Context, phone string, since time.Time) (int, error)
	PhoneLanguage(ctx context.Context, phone string) (string, error)
	Latest(ctx context.Context, phone string) (*link.SessionRecord, error)
	PendingInvite(ctx context.Context, phone string, now time.Time) (*link.Invite, error)
}

// FirstLook reads a phone's first look with r's reads, one after the
// other: for a store whose reads cost no round trip.
func FirstLook(ctx context.Context, r PhoneReads, phone string, since, now time.Time) (link.FirstLook, error) {
	var l link.FirstLook
	var err error
	if l.Failures, err = r.LoginFailures(ctx, phone, since); err != nil {
		return link.FirstLook{}, fmt.Errorf("first look: %w", err)
	}
	if l.Language, err = r.PhoneLanguage(ctx, phone); err != nil {
		return link.FirstLook{}, fmt.Errorf("first look: %w", err)
	}
	if l.Latest, err = r.Latest(ctx, phone); err != nil && !errors.Is(err, link.ErrNoSession) {
		return link.FirstLook{}, fmt.Errorf("first look: %w", err)
	}
	if l.Invite, err = r.PendingInvite(ctx, phone, now); err != nil && !errors.Is(err, link.ErrNoInvite) {
		if l.Latest != nil {
			clear(l.Latest.Secrets) // opened by its read
		}
		return link.FirstLook{}, fmt.Errorf("first look: %w", err)
	}
	return l, nil
}
