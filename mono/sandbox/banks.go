package sandbox

import (
	"fmt"
	"slices"

	"github.com/ussdlink/ussdlink/mono"
)

// Institution types as Mono reports them.
const (
	personalBanking = "PERSONAL_BANKING"
	businessBanking = "BUSINESS_BANKING"
)

// bank is one catalogue entry: the institution as GET /v1/institutions shows
// it, plus the CBN/NIP bank code that only account details reveal.
type bank struct {
	inst mono.Institution
	code string
}

// Banks returns the sandbox's institution catalogue, in the order
// GET /v1/institutions lists it. Each call builds a fresh copy, so callers may
// modify what they get.
func Banks() []mono.Institution {
	cat := catalogue()
	out := make([]mono.Institution, len(cat))
	for i, b := range cat {
		out[i] = b.inst
	}
	return out
}

// catalogue builds the bank list. It is a function rather than a package
// variable so that nothing shared is ever mutable.
func catalogue() []bank {
	methodSeq := 0
	methodID := func() string {
		methodSeq++
		return fmt.Sprintf("60d071adf73e6468062a%04x", methodSeq)
	}
	input := func(name, hint, contentType string, maxLength int) mono.Element {
		return mono.Element{Type: "elements.input", Name: name, Hint: hint, ContentType: contentType, MaxLength: maxLength}
	}
	note := func(text string) mono.Element {
		return mono.Element{Type: "elements.text", Name: "notice", Hint: text, ContentType: "string"}
	}
	// internet banking: user ID and password.
	ib := func(name string, extra ...mono.Element) mono.AuthMethod {
		form := []mono.Element{
			input("username", "UserID or Account Number", "string", 0),
			input("password", "Password", "password", 0),
		}
		return mono.AuthMethod{
			ID:   methodID(),
			Type: mono.InternetBanking,
			Name: "Internet Banking",
			UI:   mono.UI{Title: "Log in to " + name, Form: append(form, extra...)},
		}
	}
	// internet banking with a hardware or soft token: three fields.
	ibToken := func(name string) mono.AuthMethod {
		m := ib(name, input("pin", "Token PIN", "number", 4))
		return m
	}
	// mobile banking: phone number and app PIN; app is the app's name.
	mb := func(app string) mono.AuthMethod {
		return mono.AuthMethod{
			ID:   methodID(),
			Type: mono.MobileBanking,
			Name: "Mobile Banking",
			UI: mono.UI{Title: "Log in to " + app, Form: []mono.Element{
				input("username", "Phone number", "string", 0),
				input("pin", "Mobile app PIN", "number", 4),
			}},
		}
	}
	// withNoteFirst puts an informational element before the inputs.
	withNoteFirst := func(m mono.AuthMethod, text string) mono.AuthMethod {
		m.UI.Form = append([]mono.Element{note(text)}, m.UI.Form...)
		return m
	}
	inst := func(id, name, kind, slug, color, code string, methods ...mono.AuthMethod) bank {
		first := methods[0].UI
		return bank{
			inst: mono.Institution{
				ID:          id,
				Name:        name,
				Type:        kind,
				AuthMethods: methods,
				Identifier:  "mono.connections." + slug,
				Color:       color,
				Country:     "ng",
				Icon:        "https://mono-public-bucket.s3.eu-west-2.amazonaws.com/images/" + slug + "-icon.png",
				UI:          &mono.UI{Title: first.Title, Form: slices.Clone(first.Form)},
			},
			code: code,
		}
	}
	id := func(n int) string { return fmt.Sprintf("5f2d08c060b92e28882877%02x", n) }

	gtb := ib("GTBank")
	gtb.ID = "60d071acf73e6468062ae8de" // as in Mono's documentation

	return []bank{
		inst("5f2d08be60b92e2888287702", "GTBank", personalBanking, "gtbank", "#E24407", "058", gtb),
		inst(id(1), "Access Bank", personalBanking, "access", "#F47B20", "044", ib("Access Bank"), mb("Access Bank Mobile")),
		inst(id(2), "Zenith Bank", personalBanking, "zenith", "#E30613", "057", ib("Zenith Bank"), mb("Zenith Bank Mobile")),
		inst(id(3), "First Bank of Nigeria", personalBanking, "firstbank", "#003B65", "011", ib("First Bank"), mb("FirstMobile")),
		inst(id(4), "UBA", personalBanking, "uba", "#D42E12", "033", ib("UBA")),
		inst(id(5), "Fidelity Bank", personalBanking, "fidelity", "#1B1464", "070", ib("Fidelity Bank")),
		inst(id(6), "FCMB", personalBanking, "fcmb", "#5C2D91", "214", ib("FCMB")),
		inst(id(7), "Stanbic IBTC", personalBanking, "stanbic", "#0033A1", "221", ibToken("Stanbic IBTC")),
		inst(id(8), "Sterling Bank", personalBanking, "sterling", "#DB353A", "232", ib("Sterling Bank")),
		inst(id(9), "Union Bank", personalBanking, "unionbank", "#00AEEF", "032", ib("Union Bank")),
		inst(id(10), "Wema Bank", personalBanking, "wema", "#990D81", "035", ib("Wema Bank"), mb("ALAT by Wema")),
		inst(id(11), "Polaris Bank", personalBanking, "polaris", "#7A2A90", "076", ib("Polaris Bank")),
		inst(id(12), "Ecobank", personalBanking, "ecobank", "#005B82", "050", ib("Ecobank")),
		inst(id(13), "Keystone Bank", personalBanking, "keystone", "#004C97", "082", ib("Keystone Bank")),
		inst("5f2d08bf60b92e2888287704", "Kuda Bank", personalBanking, "kuda", "#40196D", "50211", ib("Kuda Bank")),
		inst(id(14), "Opay", personalBanking, "opay", "#1DCF9F", "999992", mb("Opay")),
		inst(id(15), "Moniepoint", personalBanking, "moniepoint", "#0357EE", "50515", mb("Moniepoint")),
		inst(id(16), "PalmPay", personalBanking, "palmpay", "#6F2DBD", "999991", mb("PalmPay")),
		inst(id(17), "Providus Bank", personalBanking, "providus", "#FDB913", "101", ib("Providus Bank")),
		inst(id(18), "Jaiz Bank", personalBanking, "jaiz", "#0E4C2F", "301", ib("Jaiz Bank")),
		inst(id(19), "Unity Bank", personalBanking, "unity", "#8DC63F", "215", ib("Unity Bank")),
		inst(id(20), "Standard Chartered", personalBanking, "standardchartered", "#0072AA", "068", ibToken("Standard Chartered")),
		inst(id(21), "Citibank", businessBanking, "citibank", "#003B70", "023",
			withNoteFirst(ib("Citibank"), "Use your CitiDirect BE login details")),
		inst(id(22), "Globus Bank", personalBanking, "globus", "#C8102E", "00103", ib("Globus Bank")),
		inst(id(23), "SunTrust Bank", personalBanking, "suntrust", "#F7941D", "100", ib("SunTrust Bank")),
		inst(id(24), "Titan Trust Bank", personalBanking, "titantrust", "#0B2B5B", "102", ib("Titan Trust Bank")),
		inst(id(25), "VFD Microfinance Bank", personalBanking, "vfd", "#E4032E", "566", mb("VBank"), ib("VFD Microfinance Bank")),
		inst(id(26), "Heritage Bank", personalBanking, "heritage", "#00A651", "030",
			ib("Heritage Bank", note("Forgot your password? Reset it on the Heritage app"))),
		inst(id(27), "Lotus Bank – Islamic", personalBanking, "lotus", "#6B2C91", "303", ib("Lotus Bank – Islamic")),
		inst(id(28), "Parallex Bank", personalBanking, "parallex", "#1C3F94", "526", ib("Parallex Bank")),
		inst(id(29), "Ìbílè Microfinance Bank", personalBanking, "ibile", "#0A7E3E", "090118", ib("Ìbílè MFB’s online banking")),
		inst(id(30), "GTBank Business", businessBanking, "gtbank.business", "#E24407", "058", ibToken("GTBank Business")),
		inst(id(31), "Access Bank Business", businessBanking, "access.business", "#F47B20", "044", ib("Access Bank Business")),
	}
}
