package logtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Line is one line the worker wrote on stdout.
type Line struct {
	Raw    string
	Fields map[string]any // nil when the line is not a JSON object
	// Err says why Raw is not one JSON object with every key once (see
	// DecodeStrict); nil when it is.
	Err error
}

// DecodeStrict decodes raw as one JSON object and fails, unlike
// encoding/json, when any object in it has a key twice: log pipelines that
// refuse such lines (or keep only one value) would lose it.
func DecodeStrict(raw string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := checkValue(dec); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value on the line")
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// checkValue reads one JSON value from dec, checking its objects' keys.
func checkValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			k := key.(string)
			if seen[k] {
				return fmt.Errorf("key %q twice", k)
			}
			seen[k] = true
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // }
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ]
		return err
	}
	return nil
}

// durationWords are what a key of a duration holds, one way or another.
var durationWords = regexp.MustCompile(`duration|timeout|took|elapsed|latency|wait|delay|interval|retry_in|_for$|since|uptime|backoff`)

// CheckDurationKeys fails for each duration in the lines that is not named
// *_ms (CONTRACT.md, Logs): a number under a key that names a duration
// (took, visibility_timeout, …) without the suffix, or a duration written
// as text ("30s") under any key. The values of timings_ms are milliseconds
// by their object's name.
func CheckDurationKeys(t testing.TB, lines []Line) {
	t.Helper()
	for _, l := range lines {
		for _, bad := range DurationProblems(l.Fields) {
			t.Errorf("duration %s not in *_ms: %s", bad, l.Raw)
		}
	}
}

// DurationProblems lists the keys of a log line's fields that hold a
// duration not named *_ms (see CheckDurationKeys).
func DurationProblems(fields map[string]any) []string { return badDurations(fields, "") }

func badDurations(v any, key string) []string {
	var bad []string
	switch v := v.(type) {
	case map[string]any:
		if strings.HasSuffix(key, "_ms") {
			return nil
		}
		for k, x := range v {
			bad = append(bad, badDurations(x, k)...)
		}
	case []any:
		for _, x := range v {
			bad = append(bad, badDurations(x, key)...)
		}
	case float64, json.Number:
		if durationWords.MatchString(key) && !strings.HasSuffix(key, "_ms") {
			bad = append(bad, key)
		}
	case string:
		if _, err := time.ParseDuration(v); err == nil && v != "0" {
			bad = append(bad, fmt.Sprintf("%s=%q", key, v))
		}
	}
	return bad
}

// Str is a string field ("" when absent or not a string).
func (l Line) Str(key string) string {
	s, _ := l.Fields[key].(string)
	return s
}

// Msg is the line's message.
func (l Line) Msg() string { return l.Str("message") }

// Level is the line's level.
func (l Line) Level() string { return l.Str("level") }

// Logs collects the worker's stdout line by line; it is an io.Writer, safe
// for concurrent use.
type Logs struct {
	mu      sync.Mutex
	partial []byte
	lines   []Line
	changed chan struct{}
}

// NewLogs returns an empty Logs.
func NewLogs() *Logs { return &Logs{changed: make(chan struct{})} }

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		raw := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		line := Line{Raw: raw}
		line.Fields, line.Err = DecodeStrict(raw)
		if line.Err != nil {
			_ = json.Unmarshal([]byte(raw), &line.Fields) // as far as it goes
		}
		l.lines = append(l.lines, line)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// Malformed returns the lines that are not one JSON object with every key
// once.
func (l *Logs) Malformed() []Line {
	l.mu.Lock()
	defer l.mu.Unlock()
	var bad []Line
	for _, line := range l.lines {
		if line.Err != nil {
			bad = append(bad, line)
		}
	}
	return bad
}

// Lines returns the complete lines so far.
func (l *Logs) Lines() []Line {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// Wait waits until cond holds for the lines so far, failing the test after
// timeout.
func (l *Logs) Wait(t testing.TB, timeout time.Duration, what string, cond func([]Line) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok, ch := cond(l.lines), l.changed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waited %v for %s in the worker's log", timeout, what)
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		}
	}
}

// Count is the number of lines with message msg and, if eventID is not
// empty, that event_id.
func Count(lines []Line, msg, eventID string) int {
	n := 0
	for _, l := range lines {
		if l.Msg() == msg && (eventID == "" || l.Str("event_id") == eventID) {
			n++
		}
	}
	return n
}

// Log messages of the worker's per-event lines.
const (
	// Preprocessed is the line of a user message whose result was published.
	Preprocessed = "message preprocessed"
	// Handled is the line of any other event handled (assistant message, mute, unmute).
	Handled = "event handled"
)

// CheckNoText fails if any line at info or above holds a message text (or
// the start of one).
func CheckNoText(t testing.TB, lines []Line, texts []string) {
	t.Helper()
	for _, l := range lines {
		if l.Level() == "debug" || l.Level() == "trace" {
			continue
		}
		for _, txt := range texts {
			if strings.Contains(l.Raw, txt) || len(txt) > 24 && strings.Contains(l.Raw, txt[:24]) {
				t.Errorf("a message text is logged at %s: %s", l.Level(), l.Raw)
			}
		}
	}
}
