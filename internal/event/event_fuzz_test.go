package event_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chatprep/chatprep/internal/event"
)

// FuzzDecode checks the decoder on any body: it never panics; a rejection
// is an *Invalid with a known code; an accepted event keeps every rule of
// the contract and decodes to itself again after encoding (so the JSON
// names of Event are the wire's). Seeds: testdata/fuzz/FuzzDecode.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 60s ./internal/event
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"event_id":"e-1","chat_id":"c-1","text":"hi","sent_at":"2026-11-28T10:00:00Z"}`))
	f.Add([]byte(`{"event_id":"e","type":"mute","chat_id":"c","until":"2026-12-01T00:00:00.5+01:00"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := event.Decode(body)
		if err != nil {
			var inv *event.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("error %v (%T) is not *event.Invalid", err, err)
			}
			switch inv.Code {
			case event.CodeNotUTF8, event.CodeNotJSON, event.CodeMissingField, event.CodeInvalidField, event.CodeTextTooLong:
			default:
				t.Fatalf("unknown code %q", inv.Code)
			}
			if inv.Reason == "" || inv.Error() == "" {
				t.Fatalf("%s without a reason", inv.Code)
			}
			// It quotes at most MaxQuoted characters of the body (see Quote).
			if n := len(inv.Error()); n > 400 {
				t.Fatalf("reason of %d bytes: %q", n, inv.Error())
			}
			return
		}
		checkRules(t, ev)
		wire, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("encode %+v: %v", ev, err)
		}
		again, err := event.Decode(wire)
		if err != nil {
			t.Fatalf("re-decode %s: %v", wire, err)
		}
		if !same(ev, again) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

// checkRules asserts what CONTRACT.md promises of a valid event.
func checkRules(t *testing.T, ev event.Event) {
	t.Helper()
	id := func(name, v, extra string) {
		if v == "" || utf8.RuneCountInString(v) > event.MaxIDLen {
			t.Fatalf("%s %q: length", name, v)
		}
		for _, r := range v {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-"+extra, r)) {
				t.Fatalf("%s %q: character %q", name, v, r)
			}
		}
	}
	id("event_id", ev.EventID, "")
	id("chat_id", ev.ChatID, "@+")
	switch ev.Type {
	case event.TypeMessage:
		if ev.Role != event.RoleUser && ev.Role != event.RoleAssistant {
			t.Fatalf("role %q", ev.Role)
		}
		if ev.Text == "" || len(ev.Text) > event.MaxTextBytes || !utf8.ValidString(ev.Text) {
			t.Fatalf("text of %d bytes, valid UTF-8 %t", len(ev.Text), utf8.ValidString(ev.Text))
		}
		if ev.SentAt.IsZero() {
			t.Fatal("message without sent_at")
		}
	case event.TypeMute, event.TypeUnmute:
		if ev.Text != "" || ev.Role != "" {
			t.Fatalf("%s with text or role", ev.Type)
		}
	default:
		t.Fatalf("type %q", ev.Type)
	}
}
