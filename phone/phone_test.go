package phone_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/phone"
)

func TestEveryWayOfWritingANumberGivesOneE164(t *testing.T) {
	tests := []struct {
		name, region, raw, want string
	}{
		{"international with +", "NG", "+2348031000007", "+2348031000007"},
		{"international without + (as aggregators send it)", "NG", "2348031000007", "+2348031000007"},
		{"international with the 00 prefix", "NG", "002348031000007", "+2348031000007"},
		{"national in the home country", "NG", "08031000007", "+2348031000007"},
		{"national written with spaces and dashes", "NG", "0803 100-0007", "+2348031000007"},
		{"international written with brackets and dots", "NG", "+234 (803) 100.0007", "+2348031000007"},
		{"surrounding white space", "NG", "  +2348031000007\t", "+2348031000007"},
		{"a Ghana number without + is read as international, not national", "NG", "233244123456", "+233244123456"},
		{"a Ghana number with +", "NG", "+233244123456", "+233244123456"},
		{"a Ghana national number in a Ghana gateway", "GH", "0244123456", "+233244123456"},
		{"a Nigerian number without + in a Ghana gateway", "GH", "2348031000007", "+2348031000007"},
		{"a Kenyan number", "NG", "+254711000009", "+254711000009"},
		{"no home country: international still read", "", "2348031000007", "+2348031000007"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := phone.Numbers{Region: tt.region}.Normalize(tt.raw)
			if err != nil {
				t.Fatalf("Normalize(%q) in %q: %v", tt.raw, tt.region, err)
			}
			if got != tt.want {
				t.Errorf("Normalize(%q) in %q = %q, want %q", tt.raw, tt.region, got, tt.want)
			}
		})
	}
}

func TestWhatIsNotAValidPhoneNumberIsRefused(t *testing.T) {
	tests := []struct {
		name, region, raw string
	}{
		{"empty", "NG", ""},
		{"blank", "NG", "   "},
		{"a bare +", "NG", "+"},
		{"too short", "NG", "+234803"},
		{"too long", "NG", "+23480310000071234"},
		{"an unassigned range", "NG", "+2340000000000"},
		{"a national number of another length", "NG", "0803100000"},
		{"an unknown country code", "NG", "+9991234567"},
		{"letters", "NG", "+234803CALLME"},
		{"SQL", "NG", "'; DROP TABLE"},
		{"a + in the middle", "NG", "234+8031000007"},
		{"an extension", "NG", "+2348031000007 ext 12"},
		{"control characters", "NG", "+234803\x001000007"},
		{"invalid UTF-8", "NG", "+234803\xff1000007"},
		{"oversized", "NG", "+234" + strings.Repeat("8", 100)},
		{"a national number with no home country", "", "08031000007"},
		{"a Ghana national number in a Nigeria gateway", "NG", "0244123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := phone.Numbers{Region: tt.region}.Normalize(tt.raw)
			if !errors.Is(err, phone.ErrInvalid) {
				t.Fatalf("Normalize(%q) = %q, %v; want ErrInvalid", tt.raw, got, err)
			}
			if got != "" {
				t.Errorf("Normalize(%q) returned %q with its error", tt.raw, got)
			}
			if raw := strings.TrimSpace(tt.raw); raw != "" && strings.Contains(err.Error(), raw) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}

func TestNewTakesOnlyKnownCountries(t *testing.T) {
	for _, region := range []string{"NG", "GH", "ke", " za "} {
		if _, err := phone.New(region); err != nil {
			t.Errorf("New(%q): %v", region, err)
		}
	}
	for _, region := range []string{"", "XX", "ZZ", "NGA", "Nigeria", "234"} {
		if _, err := phone.New(region); err == nil {
			t.Errorf("New(%q) accepted an unknown country", region)
		}
	}
	n, err := phone.New("gh")
	if err != nil || n.Region != "GH" {
		t.Errorf("New(\"gh\") = %+v, %v; want region GH", n, err)
	}
}

func TestANumberTheNetworkSendsIsTakenInARangeTheMetadataLacks(t *testing.T) {
	ng := phone.Numbers{Region: "NG"}
	cases := []struct {
		name, raw, want string
	}{
		{"a valid number", "+2348031000007", "+2348031000007"},
		{"a range not yet in the metadata", "+2348853752239", "+2348853752239"},
		{"the same without +", "2348853752239", "+2348853752239"},
		{"a national number", "08031000007", "+2348031000007"},
		{"significant digits starting with the trunk prefix", "+2340000000000", ""},
		{"too short", "+234803", ""},
		{"longer than any number", "+2348031000007123456", ""},
		{"an unknown country code", "+9991234567", ""},
		{"letters", "+234803CALLME", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ng.FromNetwork(c.raw)
			if c.want == "" {
				if err == nil || !errors.Is(err, phone.ErrInvalid) {
					t.Fatalf("FromNetwork(%q) = %q, %v; want ErrInvalid", c.raw, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("FromNetwork(%q) = %q, %v; want %q", c.raw, got, err, c.want)
			}
			if _, err := ng.Normalize(c.raw); c.name == "a range not yet in the metadata" && err == nil {
				t.Errorf("Normalize took %q: a typed number must be in an assigned range", c.raw)
			}
		})
	}
}

func TestARememberedNumberReadsAsTheFirstTime(t *testing.T) {
	n, err := phone.New("NG")
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"2348031000007", "+2340000000000", "08031000007", "junk"} {
		first, firstErr := n.FromNetwork(raw)
		again, againErr := n.FromNetwork(raw)
		if first != again || (firstErr == nil) != (againErr == nil) {
			t.Errorf("%q read %q, %v then %q, %v", raw, first, firstErr, again, againErr)
		}
		if againErr != nil && !errors.Is(againErr, phone.ErrInvalid) {
			t.Errorf("%q remembered as refused: %v, want ErrInvalid", raw, againErr)
		}
	}
}
