package main

import (
	"context"

	"github.com/ussdlink/ussdlink/menus"
)

// storedSession reads a session as the gateway's store holds it, decoded.
func storedSession(m *Main, id string) (*menus.Session, error) {
	r, err := m.db.Session(context.Background(), id)
	if err != nil {
		return nil, err
	}
	return menus.Decode(r)
}

// latestSession reads a phone's latest session as the store holds it.
func latestSession(m *Main, phone string) (*menus.Session, error) {
	r, err := m.db.Latest(context.Background(), phone)
	if err != nil {
		return nil, err
	}
	return menus.Decode(r)
}
