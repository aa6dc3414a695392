package eventfile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/eventfile"
)

func read(t *testing.T, input string, cfg eventfile.Config) ([]eventfile.Line, string, *eventfile.Reader, error) {
	t.Helper()
	var rejects strings.Builder
	cfg.Rejects = &rejects
	r := eventfile.NewReader(eventfile.NewInput(strings.NewReader(input)), cfg)
	var got []eventfile.Line
	err := r.Read(context.Background(), func(l eventfile.Line) error { got = append(got, l); return nil })
	r.Close()
	return got, rejects.String(), r, err
}

func msg(id, chat string) string {
	return fmt.Sprintf(`{"event_id":%q,"chat_id":%q,"text":"hi","sent_at":"2026-11-01T09:00:00Z"}`, id, chat)
}

// TestReadValidatesAndNumbersLines: a byte order mark and CRLF are
// dropped, blank lines skipped but counted, invalid lines and repeats
// rejected with their numbers, the rest handed over in order.
func TestReadValidatesAndNumbersLines(t *testing.T) {
	t.Parallel()
	input := "\xef\xbb\xbf" + msg("e-1", "c") + "\r\n\n  \nnot json\n" + msg("e-2", "c") + "\n" + msg("e-1", "d") + "\n" + msg("e-3", "c")
	got, rejects, r, err := read(t, input, eventfile.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var nos []int
	for _, l := range got {
		nos = append(nos, l.No)
	}
	if fmt.Sprint(nos) != "[1 5 7]" || got[0].Event.EventID != "e-1" || string(got[0].Body) != msg("e-1", "c") {
		t.Errorf("lines %v (%+v)", nos, got)
	}
	want := "line 6: duplicate_event_id: event_id \"e-1\" is on line 1 already\n"
	if !strings.HasPrefix(rejects, "line 4: invalid_json: ") || !strings.HasSuffix(rejects, want) || strings.Count(rejects, "\n") != 2 {
		t.Errorf("rejects %q, want %q", rejects, want)
	}
	if r.Lines() != 7 || r.Rejected() != 2 {
		t.Errorf("lines %d rejected %d, want 7 and 2", r.Lines(), r.Rejected())
	}
}

// TestReadOptions: Skip passes over lines uncounted, Refuse and Same are
// the caller's rules, Prepare's body is what is decoded and kept.
func TestReadOptions(t *testing.T) {
	t.Parallel()
	input := strings.Join([]string{
		msg("e-1", "c"), "garbage", // skipped
		msg("e-1", "d"), // the same event_id in another chat: another message
		`{"event_id":"m","chat_id":"c","type":"mute"}`,
		msg("e-1", "d"),
	}, "\n") + "\n"
	got, rejects, r, err := read(t, input, eventfile.Config{
		Skip: 2,
		Refuse: func(ev event.Event) string {
			if ev.Type != event.TypeMessage {
				return "not a message"
			}
			return ""
		},
		Same: func(ev event.Event) (string, string) { return ev.ChatID + "/" + ev.EventID, "message " + ev.EventID },
		Prepare: func(line []byte) ([]byte, string) {
			return []byte(strings.ReplaceAll(string(line), `"hi"`, `"hello"`)), ""
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].No != 3 || got[0].Event.Text != "hello" {
		t.Errorf("lines %+v", got)
	}
	if rejects != "line 4: not a message\nline 5: duplicate_event_id: message e-1 is on line 3 already\n" {
		t.Errorf("rejects %q", rejects)
	}
	if r.Lines() != 5 || r.Rejected() != 2 {
		t.Errorf("lines %d rejected %d", r.Lines(), r.Rejected())
	}
}

// TestReadStops: take's error stops the reading at that line; so does a
// cancelled context; binary input is an *InputError.
func TestReadStops(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	r := eventfile.NewReader(eventfile.NewInput(strings.NewReader(msg("a", "c")+"\n"+msg("b", "c")+"\n")), eventfile.Config{})
	n := 0
	if err := r.Read(context.Background(), func(eventfile.Line) error { n++; return stop }); !errors.Is(err, stop) || n != 1 || r.Lines() != 0 {
		t.Errorf("take's error: %v after %d lines, %d settled", err, n, r.Lines())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = eventfile.NewReader(eventfile.NewInput(strings.NewReader(msg("a", "c"))), eventfile.Config{})
	if err := r.Read(ctx, func(eventfile.Line) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	var inputErr *eventfile.InputError
	r = eventfile.NewReader(eventfile.NewInput(strings.NewReader("\x00\x01")), eventfile.Config{})
	if err := r.Read(context.Background(), func(eventfile.Line) error { return nil }); !errors.As(err, &inputErr) {
		t.Errorf("binary input: %v", err)
	}
}
