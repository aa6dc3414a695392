package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is what an event asks for.
type Type string

// The event types of CONTRACT.md.
const (
	TypeMessage Type = "message" // a chat message (the default)
	TypeMute    Type = "mute"    // mute the chat, optionally until a time
	TypeUnmute  Type = "unmute"  // unmute the chat
)

// Role says who wrote a message.
type Role string

// The roles of CONTRACT.md.
const (
	RoleUser      Role = "user" // the default
	RoleAssistant Role = "assistant"
)

// Limits of the contract.
const (
	MaxIDLen     = 128   // event_id and chat_id, in characters
	MaxTextBytes = 16384 // text, in bytes of UTF-8
)

// Event is one validated chat event.
type Event struct {
	EventID   string     `json:"event_id"`
	Type      Type       `json:"type"`
	ChatID    string     `json:"chat_id"`
	Role      Role       `json:"role,omitempty"`
	Text      string     `json:"text,omitempty"`
	SentAt    time.Time  `json:"sent_at,omitzero"` // required for messages; zero when a mute or unmute has none
	UserID    string     `json:"user_id,omitempty"`
	Channel   string     `json:"channel,omitempty"`
	RouteHint string     `json:"route_hint,omitempty"`
	Until     *time.Time `json:"until,omitempty"`
	// Tokens is the text's length in TOKEN_ENCODING tokens when the worker
	// has counted it already (the pipeline does, for the result), so that
	// storing it does not count again; 0: not counted. Never on the wire.
	Tokens int `json:"-"`
}

// Error codes carried by Invalid.Code (and the dead-letter queue's
// `error_code` attribute).
const (
	CodeNotUTF8      = "invalid_encoding" // the body is not valid UTF-8
	CodeNotJSON      = "invalid_json"     // the body is not one JSON object
	CodeMissingField = "missing_field"    // a required field is absent or empty
	CodeInvalidField = "invalid_field"    // a field has the wrong type or breaks its rule
	CodeTextTooLong  = "text_too_long"    // text is longer than MaxTextBytes
)

// Invalid is the error Decode returns for an event that breaks the contract.
//
// Its text goes to logs, spans and the dead-letter queue's error
// attribute, so it never holds more of the body than MaxQuoted characters
// of a field's value (see Quote): the text of a message is never quoted,
// other values at most that far. Bodies are personal data.
type Invalid struct {
	Code   string // one of the Code* constants
	Field  string // the offending field, empty when the whole body is at fault
	Reason string // what is wrong, for people
}

// MaxQuoted is the most characters of a producer's value an Invalid
// reason quotes: enough to see a typo in a type, role or time, too few
// for a sentence.
const MaxQuoted = 20

// Quote is v quoted (Go syntax, so control characters show), at most its
// first MaxQuoted characters, then "…" and its length in bytes when it is
// longer.
func Quote(v string) string {
	if utf8.RuneCountInString(v) <= MaxQuoted {
		return strconv.Quote(v)
	}
	cut := 0
	for range MaxQuoted {
		_, n := utf8.DecodeRuneInString(v[cut:])
		cut += n
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(v[:cut]), len(v))
}

func (e *Invalid) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// wire is the JSON shape before validation. Pointers tell absent from empty.
type wire struct {
	EventID   *string `json:"event_id"`
	Type      *string `json:"type"`
	ChatID    *string `json:"chat_id"`
	Role      *string `json:"role"`
	Text      *string `json:"text"`
	SentAt    *string `json:"sent_at"`
	UserID    *string `json:"user_id"`
	Channel   *string `json:"channel"`
	RouteHint *string `json:"route_hint"`
	Until     *string `json:"until"`
}

// Decode parses and validates one event body. Unknown fields are ignored.
// A body that breaks the contract gives an *Invalid error.
func Decode(body []byte) (Event, error) {
	if !utf8.Valid(body) {
		return Event{}, &Invalid{Code: CodeNotUTF8, Reason: "body is not valid UTF-8"}
	}
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return Event{}, &Invalid{Code: CodeInvalidField, Field: typeErr.Field,
				// Value is "number 5551234": the kind only, not the number.
				Reason: fmt.Sprintf("must be a %s, not a JSON %s", typeErr.Type, strings.Fields(typeErr.Value + " ?")[0])}
		}
		return Event{}, &Invalid{Code: CodeNotJSON, Reason: "body is not a JSON object: " + jsonReason(err)}
	}
	return w.validate()
}

func jsonReason(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	}
	return err.Error()
}

func (w *wire) validate() (Event, error) {
	ev := Event{
		Type:      TypeMessage,
		UserID:    deref(w.UserID),
		Channel:   deref(w.Channel),
		RouteHint: deref(w.RouteHint),
	}
	var err error
	if ev.EventID, err = id("event_id", w.EventID, isEventIDChar); err != nil {
		return Event{}, err
	}
	if ev.ChatID, err = id("chat_id", w.ChatID, isChatIDChar); err != nil {
		return Event{}, err
	}
	if w.Type != nil {
		switch t := Type(*w.Type); t {
		case TypeMessage, TypeMute, TypeUnmute:
			ev.Type = t
		default:
			return Event{}, &Invalid{Code: CodeInvalidField, Field: "type",
				Reason: Quote(*w.Type) + " is not one of message, mute, unmute"}
		}
	}
	if ev.Type == TypeMessage {
		return w.validateMessage(ev)
	}
	// mute and unmute: sent_at is optional (absent, the time SQS received
	// the event counts; see the pipeline), and orders them.
	if w.SentAt != nil && *w.SentAt != "" {
		if ev.SentAt, err = timestamp("sent_at", *w.SentAt); err != nil {
			return Event{}, err
		}
	}
	if ev.Type == TypeMute && w.Until != nil {
		until, err := timestamp("until", *w.Until)
		if err != nil {
			return Event{}, err
		}
		ev.Until = &until
	}
	return ev, nil
}

func (w *wire) validateMessage(ev Event) (Event, error) {
	ev.Role = RoleUser
	if w.Role != nil {
		switch r := Role(*w.Role); r {
		case RoleUser, RoleAssistant:
			ev.Role = r
		default:
			return Event{}, &Invalid{Code: CodeInvalidField, Field: "role",
				Reason: Quote(*w.Role) + " is not one of user, assistant"}
		}
	}
	switch {
	case w.Text == nil || *w.Text == "":
		return Event{}, &Invalid{Code: CodeMissingField, Field: "text", Reason: "required for a message"}
	case len(*w.Text) > MaxTextBytes:
		return Event{}, &Invalid{Code: CodeTextTooLong, Field: "text",
			Reason: fmt.Sprintf("%d bytes, at most %d allowed", len(*w.Text), MaxTextBytes)}
	}
	ev.Text = *w.Text
	if w.SentAt == nil || *w.SentAt == "" {
		return Event{}, &Invalid{Code: CodeMissingField, Field: "sent_at", Reason: "required for a message"}
	}
	sentAt, err := timestamp("sent_at", *w.SentAt)
	if err != nil {
		return Event{}, err
	}
	ev.SentAt = sentAt
	return ev, nil
}

func id(field string, v *string, ok func(rune) bool) (string, error) {
	if v == nil || *v == "" {
		return "", &Invalid{Code: CodeMissingField, Field: field, Reason: "required"}
	}
	s := *v
	if n := utf8.RuneCountInString(s); n > MaxIDLen {
		return "", &Invalid{Code: CodeInvalidField, Field: field,
			Reason: fmt.Sprintf("%d characters, at most %d allowed", n, MaxIDLen)}
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !ok(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return "", &Invalid{Code: CodeInvalidField, Field: field,
			Reason: fmt.Sprintf("character %q at byte %d is not allowed", r, i)}
	}
	return s, nil
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func isEventIDChar(r rune) bool {
	return isAlnum(r) || r == '.' || r == '_' || r == ':' || r == '-'
}

func isChatIDChar(r rune) bool {
	return isEventIDChar(r) || r == '@' || r == '+'
}

func timestamp(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &Invalid{Code: CodeInvalidField, Field: field,
			Reason: Quote(v) + " is not an RFC 3339 time"}
	}
	if t.IsZero() { // 0001-01-01T00:00:00Z: Event could not tell it from an absent time
		return time.Time{}, &Invalid{Code: CodeInvalidField, Field: field,
			Reason: Quote(v) + " is the zero time"}
	}
	return t, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
