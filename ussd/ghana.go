package ussd

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/ussdlink/ussdlink/link"
)

// Arkesel speaks Arkesel's USSD callback (Ghana): a JSON POST with
// sessionID, userID, newSession, msisdn, userData (the dialled string on a
// new session, else the latest input) and network; the reply echoes the
// ids with message and continueSession.
type Arkesel struct{}

var _ Dialect = Arkesel{}

// arkeselRequest is Arkesel's callback body.
type arkeselRequest struct {
	SessionID  string `json:"sessionID"`
	UserID     string `json:"userID"`
	NewSession flag   `json:"newSession"`
	MSISDN     string `json:"msisdn"`
	UserData   string `json:"userData"`
	Network    string `json:"network"`
}

// arkeselReply is the answer Arkesel expects.
type arkeselReply struct {
	SessionID       string `json:"sessionID"`
	UserID          string `json:"userID"`
	MSISDN          string `json:"msisdn"`
	Message         string `json:"message"`
	ContinueSession bool   `json:"continueSession"`
}

// Name implements Dialect.
func (Arkesel) Name() string { return "arkesel" }

// Method implements Dialect.
func (Arkesel) Method() string { return fiber.MethodPost }

// Parse implements Dialect.
func (Arkesel) Parse(c *fiber.Ctx) (link.Hop, error) {
	var r arkeselRequest
	if err := decodeJSON(c, &r); err != nil {
		return link.Hop{}, err
	}
	hop := latestInput(r.SessionID, r.MSISDN, r.Network, bool(r.NewSession), r.UserData)
	if hop.SessionID == "" || hop.Phone == "" {
		return hop, &BadRequest{Reason: "missing sessionID or msisdn"}
	}
	if hop.New {
		if err := checkDialled(r.UserData); err != nil {
			return hop, err
		}
	}
	c.Locals(echoKey, arkeselReply{SessionID: r.SessionID, UserID: r.UserID, MSISDN: r.MSISDN})
	return hop, nil
}

// Write implements Dialect, echoing the request's ids.
func (Arkesel) Write(c *fiber.Ctx, _ link.Hop, r link.Reply) error {
	out, _ := c.Locals(echoKey).(arkeselReply)
	out.Message, out.ContinueSession = r.Text, !r.End
	return c.JSON(out)
}

// Nalo speaks Nalo Solutions' USSD callback (Ghana): a JSON POST with
// USERID, MSISDN, USERDATA, MSGTYPE (true: first dial, USERDATA is the
// dialled code; false: USERDATA is the latest input), NETWORK and
// SESSIONID; the reply echoes USERID and MSISDN with MSG and MSGTYPE (true
// continues, false ends).
type Nalo struct{}

var _ Dialect = Nalo{}

// naloRequest is Nalo's callback body.
type naloRequest struct {
	UserID    string `json:"USERID"`
	MSISDN    string `json:"MSISDN"`
	UserData  string `json:"USERDATA"`
	MsgType   flag   `json:"MSGTYPE"`
	Network   string `json:"NETWORK"`
	SessionID string `json:"SESSIONID"`
}

// naloReply is the answer Nalo expects.
type naloReply struct {
	UserID  string `json:"USERID"`
	MSISDN  string `json:"MSISDN"`
	Msg     string `json:"MSG"`
	MsgType bool   `json:"MSGTYPE"`
}

// Name implements Dialect.
func (Nalo) Name() string { return "nalo" }

// Method implements Dialect.
func (Nalo) Method() string { return fiber.MethodPost }

// Parse implements Dialect.
func (Nalo) Parse(c *fiber.Ctx) (link.Hop, error) {
	var r naloRequest
	if err := decodeJSON(c, &r); err != nil {
		return link.Hop{}, err
	}
	hop := latestInput(r.SessionID, r.MSISDN, r.Network, bool(r.MsgType), r.UserData)
	if hop.SessionID == "" || hop.Phone == "" {
		return hop, &BadRequest{Reason: "missing SESSIONID or MSISDN"}
	}
	if hop.New {
		if err := checkDialled(r.UserData); err != nil {
			return hop, err
		}
	}
	c.Locals(echoKey, naloReply{UserID: r.UserID, MSISDN: r.MSISDN})
	return hop, nil
}

// Write implements Dialect, echoing USERID and MSISDN.
func (Nalo) Write(c *fiber.Ctx, _ link.Hop, r link.Reply) error {
	out, _ := c.Locals(echoKey).(naloReply)
	out.Msg, out.MsgType = r.Text, !r.End
	return c.JSON(out)
}

// flag is a boolean that some aggregators send as a string ("true", "1"):
// both forms are read, since their documents are not always to be trusted.
type flag bool

// UnmarshalJSON implements json.Unmarshaler.
func (f *flag) UnmarshalJSON(b []byte) error {
	switch strings.ToLower(strings.Trim(string(b), `"`)) {
	case "true", "1", "yes":
		*f = true
	case "false", "0", "no", "", "null":
		*f = false
	default:
		return fmt.Errorf("not a boolean: %s", b)
	}
	return nil
}

// echoKey keeps what a reply must echo between Parse and Write.
const echoKey = "ussd.echo"

// latestInput builds the hop of a dialect that sends the dialled string on
// a session's first hop and only the latest input after.
func latestInput(session, phone, network string, first bool, data string) link.Hop {
	hop := link.Hop{
		SessionID: strings.TrimSpace(session),
		Phone:     strings.TrimSpace(phone),
		Network:   strings.ToLower(strings.TrimSpace(network)),
		New:       first,
	}
	if first {
		hop.Dialled = strings.TrimSpace(data)
		hop.ServiceCode = hop.Dialled
	} else {
		hop.Input = data
	}
	return hop
}
