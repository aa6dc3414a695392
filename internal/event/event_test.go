package event_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/event"
)

const sentAt = `"sent_at":"2026-11-28T10:00:00Z"`

func TestDecodeValid(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.FixedZone("", 3600))
	for _, tc := range []struct {
		name, body string
		want       event.Event
	}{
		{"message with defaults",
			`{"event_id":"e-1","chat_id":"c-1","text":"hi",` + sentAt + `}`,
			event.Event{EventID: "e-1", Type: event.TypeMessage, ChatID: "c-1", Role: event.RoleUser, Text: "hi", SentAt: at}},
		{"assistant message with optional fields and unknown ones",
			`{"event_id":"a.b_c:d-1","type":"message","chat_id":"x@y+z","role":"assistant","text":"¿sí? 👍",` + sentAt +
				`,"user_id":"u","channel":"web","route_hint":"odoo_erp","extra":{"nested":[1,2]}}`,
			event.Event{EventID: "a.b_c:d-1", Type: event.TypeMessage, ChatID: "x@y+z", Role: event.RoleAssistant,
				Text: "¿sí? 👍", SentAt: at, UserID: "u", Channel: "web", RouteHint: "odoo_erp"}},
		{"mute until", `{"event_id":"e","type":"mute","chat_id":"c","until":"2026-12-01T00:00:00+01:00"}`,
			event.Event{EventID: "e", Type: event.TypeMute, ChatID: "c", Until: &until}},
		{"mute forever, text ignored", `{"event_id":"e","type":"mute","chat_id":"c","text":"ignored"}`,
			event.Event{EventID: "e", Type: event.TypeMute, ChatID: "c"}},
		{"unmute", `{"event_id":"e","type":"unmute","chat_id":"c"}`,
			event.Event{EventID: "e", Type: event.TypeUnmute, ChatID: "c"}},
		{"mute with sent_at", `{"event_id":"e","type":"mute","chat_id":"c",` + sentAt + `}`,
			event.Event{EventID: "e", Type: event.TypeMute, ChatID: "c", SentAt: at}},
		{"unmute with sent_at, until ignored", `{"event_id":"e","type":"unmute","chat_id":"c",` + sentAt + `,"until":"never"}`,
			event.Event{EventID: "e", Type: event.TypeUnmute, ChatID: "c", SentAt: at}},
		{"unmute with an empty sent_at (absent)", `{"event_id":"e","type":"unmute","chat_id":"c","sent_at":""}`,
			event.Event{EventID: "e", Type: event.TypeUnmute, ChatID: "c"}},
		{"null optional fields", `{"event_id":"e","chat_id":"c","text":"t",` + sentAt + `,"type":null,"role":null,"user_id":null}`,
			event.Event{EventID: "e", Type: event.TypeMessage, ChatID: "c", Role: event.RoleUser, Text: "t", SentAt: at}},
		{"text of exactly the limit", `{"event_id":"e","chat_id":"c","text":"` + strings.Repeat("é", event.MaxTextBytes/2) + `",` + sentAt + `}`,
			event.Event{EventID: "e", Type: event.TypeMessage, ChatID: "c", Role: event.RoleUser, Text: strings.Repeat("é", event.MaxTextBytes/2), SentAt: at}},
		{"ids of exactly the limit", `{"event_id":"` + strings.Repeat("e", event.MaxIDLen) + `","type":"unmute","chat_id":"` + strings.Repeat("c", event.MaxIDLen) + `"}`,
			event.Event{EventID: strings.Repeat("e", event.MaxIDLen), Type: event.TypeUnmute, ChatID: strings.Repeat("c", event.MaxIDLen)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := event.Decode([]byte(tc.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !same(got, tc.want) {
				t.Errorf("Decode:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body  string
		code, field string
	}{
		{"invalid UTF-8", "{\"event_id\":\"e\xff\",\"chat_id\":\"c\"}", event.CodeNotUTF8, ""},
		{"empty body", ``, event.CodeNotJSON, ""},
		{"not JSON", `hello`, event.CodeNotJSON, ""},
		{"truncated", `{"event_id":"e",`, event.CodeNotJSON, ""},
		{"trailing data", `{"event_id":"e","type":"unmute","chat_id":"c"} {}`, event.CodeNotJSON, ""},
		{"array", `[{"event_id":"e"}]`, event.CodeNotJSON, ""},
		{"string", `"event"`, event.CodeNotJSON, ""},
		{"missing event_id", `{"chat_id":"c","text":"t",` + sentAt + `}`, event.CodeMissingField, "event_id"},
		{"empty event_id", `{"event_id":"","chat_id":"c","text":"t",` + sentAt + `}`, event.CodeMissingField, "event_id"},
		{"missing chat_id", `{"event_id":"e","text":"t",` + sentAt + `}`, event.CodeMissingField, "chat_id"},
		{"missing text", `{"event_id":"e","chat_id":"c",` + sentAt + `}`, event.CodeMissingField, "text"},
		{"empty text", `{"event_id":"e","chat_id":"c","text":"",` + sentAt + `}`, event.CodeMissingField, "text"},
		{"missing sent_at", `{"event_id":"e","chat_id":"c","text":"t"}`, event.CodeMissingField, "sent_at"},
		{"number for a string", `{"event_id":7,"chat_id":"c","text":"t",` + sentAt + `}`, event.CodeInvalidField, "event_id"},
		{"object for text", `{"event_id":"e","chat_id":"c","text":{"a":1},` + sentAt + `}`, event.CodeInvalidField, "text"},
		{"bool for user_id", `{"event_id":"e","chat_id":"c","text":"t",` + sentAt + `,"user_id":true}`, event.CodeInvalidField, "user_id"},
		{"unknown type", `{"event_id":"e","type":"delete","chat_id":"c"}`, event.CodeInvalidField, "type"},
		{"unknown role", `{"event_id":"e","chat_id":"c","role":"system","text":"t",` + sentAt + `}`, event.CodeInvalidField, "role"},
		{"space in event_id", `{"event_id":"e 1","chat_id":"c","text":"t",` + sentAt + `}`, event.CodeInvalidField, "event_id"},
		{"@ in event_id", `{"event_id":"a@b","chat_id":"c","text":"t",` + sentAt + `}`, event.CodeInvalidField, "event_id"},
		{"slash in chat_id", `{"event_id":"e","chat_id":"c/1","text":"t",` + sentAt + `}`, event.CodeInvalidField, "chat_id"},
		{"event_id too long", `{"event_id":"` + strings.Repeat("e", event.MaxIDLen+1) + `","chat_id":"c","text":"t",` + sentAt + `}`, event.CodeInvalidField, "event_id"},
		{"text too long", `{"event_id":"e","chat_id":"c","text":"` + strings.Repeat("x", event.MaxTextBytes+1) + `",` + sentAt + `}`, event.CodeTextTooLong, "text"},
		{"sent_at not RFC 3339", `{"event_id":"e","chat_id":"c","text":"t","sent_at":"2026-11-28 10:00"}`, event.CodeInvalidField, "sent_at"},
		{"zero sent_at", `{"event_id":"e","chat_id":"c","text":"t","sent_at":"0001-01-01T01:00:00+01:00"}`, event.CodeInvalidField, "sent_at"},
		{"until not RFC 3339", `{"event_id":"e","type":"mute","chat_id":"c","until":"tomorrow"}`, event.CodeInvalidField, "until"},
		{"mute sent_at not RFC 3339", `{"event_id":"e","type":"mute","chat_id":"c","sent_at":"yesterday"}`, event.CodeInvalidField, "sent_at"},
		{"unmute sent_at a number", `{"event_id":"e","type":"unmute","chat_id":"c","sent_at":1764324000}`, event.CodeInvalidField, "sent_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := event.Decode([]byte(tc.body))
			var inv *event.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Decode: %v, want *event.Invalid", err)
			}
			if inv.Code != tc.code || inv.Field != tc.field || inv.Reason == "" {
				t.Errorf("Decode: code %q field %q (%v), want code %q field %q", inv.Code, inv.Field, err, tc.code, tc.field)
			}
		})
	}
}

// same compares events, times by instant.
func same(a, b event.Event) bool {
	if !a.SentAt.Equal(b.SentAt) || (a.Until == nil) != (b.Until == nil) || (a.Until != nil && !a.Until.Equal(*b.Until)) {
		return false
	}
	a.SentAt, b.SentAt, a.Until, b.Until = time.Time{}, time.Time{}, nil, nil
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

// TestInvalidQuotesNoMoreThanMaxQuoted: a reason never holds more of a
// producer's value than event.MaxQuoted characters (bodies are personal
// data, and reasons reach logs, spans and the dead-letter queue), and never
// the text of a message.
func TestInvalidQuotesNoMoreThanMaxQuoted(t *testing.T) {
	t.Parallel()
	const secret = "SECRET-5551234-JOHN"
	long := strings.Repeat("x", event.MaxQuoted) + secret
	for _, body := range []string{
		`{"event_id":"e","type":"` + long + `","chat_id":"c"}`,
		`{"event_id":"e","chat_id":"c","role":"` + long + `","text":"t",` + sentAt + `}`,
		`{"event_id":"e","chat_id":"c","text":"t","sent_at":"` + long + `"}`,
		`{"event_id":"e","type":"mute","chat_id":"c","until":"` + long + `"}`,
		`{"event_id":"e","type":"mute","chat_id":"c","sent_at":"` + long + `"}`,
		`{"event_id":"` + long + ` x","chat_id":"c","text":"t",` + sentAt + `}`,
		`{"event_id":"e","chat_id":"` + strings.Repeat("c", 200) + secret + `","text":"t",` + sentAt + `}`,
		`{"event_id":"e","chat_id":"c","text":"` + secret + strings.Repeat("y", event.MaxTextBytes) + `",` + sentAt + `}`,
		`{"event_id":"e","chat_id":"c","text":"` + secret + `","sent_at":"x"}`,
		`{"event_id":55512345678901234,"chat_id":"c","text":"t",` + sentAt + `}`,
		`{"event_id":"e","chat_id":"c","text":"` + secret + `"`,
		`{"event_id":"e","chat_id":"c","text":"` + secret + "\x01" + `",` + sentAt + `}`,
	} {
		_, err := event.Decode([]byte(body))
		if err == nil {
			t.Fatalf("%.60s: valid, want invalid", body)
		}
		for _, leak := range []string{secret, "5551234", "55512345678901234"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%.60s…: reason %q quotes %q", body, err, leak)
			}
		}
	}
	if got := event.Quote("message"); got != `"message"` {
		t.Errorf("Quote(message) = %s", got)
	}
	if got := event.Quote(long); got != strconv.Quote(long[:event.MaxQuoted])+fmt.Sprintf("… (%d bytes)", len(long)) {
		t.Errorf("Quote(long) = %s", got)
	}
}
