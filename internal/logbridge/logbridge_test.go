package logbridge_test

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"strings"
	"testing"

	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/logbridge"
)

type line struct {
	Level, Message, Component string
}

func lines(t *testing.T, b *bytes.Buffer) []line {
	t.Helper()
	var out []line
	for _, raw := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if raw == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("not a JSON line: %q", raw)
		}
		out = append(out, l)
	}
	return out
}

func logger(b *bytes.Buffer, lvl zerolog.Level) zerolog.Logger {
	return zerolog.New(b).Level(lvl).With().Str("component", "x").Logger()
}

func TestAWSLevels(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := logbridge.AWS(logger(&b, zerolog.DebugLevel))
	l.Logf(logging.Warn, "falling back to IMDSv1: %s\n", "403")
	l.Logf(logging.Debug, "retrying request %d", 2)
	got := lines(t, &b)
	want := []line{{"warn", "falling back to IMDSv1: 403", "x"}, {"debug", "retrying request 2", "x"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestWriterOneEventALine(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	std := stdlog.New(logbridge.Writer(logger(&b, zerolog.InfoLevel), zerolog.WarnLevel), "", 0)
	std.Print("Weaviate not yet up.\nWaiting for another second.")
	got := lines(t, &b)
	if len(got) != 2 || got[0] != (line{"warn", "Weaviate not yet up.", "x"}) || got[1].Message != "Waiting for another second." {
		t.Errorf("got %+v", got)
	}
}

func TestGRPCLevels(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	g := logbridge.GRPC(logger(&b, zerolog.InfoLevel))
	g.Infof("[core] channel %d created", 1)
	g.Warningln("[transport] createTransport failed")
	g.Errorf("[core] broken: %v", "x")
	if got := lines(t, &b); len(got) != 1 || got[0] != (line{"error", "[core] broken: x", "x"}) {
		t.Errorf("at info: got %+v; want only the error", got)
	}
	if g.V(2) {
		t.Error("V(2) true below trace")
	}
	if !logbridge.GRPC(logger(&b, zerolog.TraceLevel)).V(2) {
		t.Error("V(2) false at trace")
	}
}

func TestBurstsAreLimited(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := logbridge.AWS(logger(&b, zerolog.InfoLevel))
	for range 5 * logbridge.Burst {
		l.Logf(logging.Warn, "failed to discard remaining HTTP response body")
	}
	if n := len(lines(t, &b)); n != logbridge.Burst {
		t.Errorf("%d lines of a burst of %d, want %d", n, 5*logbridge.Burst, logbridge.Burst)
	}
}
