package main

import (
	"strings"
	"testing"
)

func TestScreensAsANewcomerFindsThem(t *testing.T) {
	m, _ := startGateway(t, nil)
	tests := []struct {
		name  string
		steps []step
	}{
		{"a search that finds nothing keeps the title whole or leaves it out", []step{
			{typed: "zzz", want: []string{"No bank name starts with that. Try again.\n1. GTBank"}},
			{choose: "GTBank"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true},
		}},
		{"a search with exactly one match opens it", []step{
			{typed: "stanbic", want: []string{"Stanbic"}},
			{typed: "user_good"}, {typed: "pass_good"}, {typed: "1234", want: []string{"is linked"}, end: true},
		}},
		{"a bank with two ways in picked by mistake is left with 0 Back", []step{
			{choose: "Zenith Bank", want: []string{"How do you log in?", "0 Back"}},
			{typed: "0", want: []string{"Link your bank", "GTBank"}},
			{choose: "GTBank", want: []string{"Log in to GTBank", "0 Back"}},
			{typed: "0", want: []string{"Link your bank", "GTBank"}},
			{choose: "GTBank"}, {typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true},
		}},
		{"a method picked by mistake is left with 0 Back", []step{
			{choose: "Zenith Bank"},
			{choose: "Mobile", want: []string{"0 Back"}},
			{typed: "0", want: []string{"How do you log in?"}},
			{choose: "Internet", want: []string{"Zenith"}},
			{typed: "user_good"}, {typed: "pass_good", want: []string{"is linked"}, end: true},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandset(t, m, "+23480931000"+string(rune('1'+i))+"0")
			h.dial()
			walkSteps(t, h, m, tt.steps)
			for _, line := range strings.Split(h.screen, "\n") {
				if strings.HasSuffix(line, "...") {
					t.Errorf("a line is cut: %q", line)
				}
			}
		})
	}
}

func TestNamesFromMonoAreTransliteratedToGSM7(t *testing.T) {
	m, _ := startGateway(t, nil)
	h := walk(t, m, "+2348062000001", "lotus")
	h.expect("Lotus Bank - Islamic")
	h = walk(t, m, "+2348062000002", "microfinance") // two matches: a list
	h.expect("Ibile Microfinance Bank")
	h.choose("Ibile")
	h.expect("Log in to Ibile MFB's online banking")
}
