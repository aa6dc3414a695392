package logtest_test

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatprep/chatprep/internal/logtest"
)

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw string
		ok  bool
	}{
		{`{"level":"info","message":"m"}`, true},
		{`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, true}, // the same key in different objects
		{`{"a":1,"a":2}`, false},
		{`{"x":{"a":1,"a":1}}`, false},
		{`{"x":[{"a":1,"a":2}]}`, false},
		{`{"a":1} {"b":2}`, false},
		{`{"a":1`, false},
		{`[1,2]`, false}, // a log line is an object
		{`not json`, false},
	} {
		fields, err := logtest.DecodeStrict(c.raw)
		if (err == nil) != c.ok {
			t.Errorf("DecodeStrict(%s): %v, want ok %v", c.raw, err, c.ok)
		}
		if c.ok && fields == nil {
			t.Errorf("DecodeStrict(%s): no fields", c.raw)
		}
	}
}

func TestDurationProblems(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw  string
		want []string
	}{
		{`{"took_ms":12,"visibility_timeout_ms":30000,"count":3,"n":"0"}`, nil},
		{`{"timings_ms":{"total":3,"preprocessing":2}}`, nil}, // milliseconds by their object's name
		{`{"took":12}`, []string{"took"}},
		{`{"visibility_timeout":30}`, []string{"visibility_timeout"}},
		{`{"retry":{"backoff":2}}`, []string{"backoff"}},
		{`{"next":"30s"}`, []string{`next="30s"`}},
		{`{"waits":[{"wait":1}]}`, []string{"wait"}},
	} {
		fields, err := logtest.DecodeStrict(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		got := logtest.DurationProblems(fields)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("DurationProblems(%s) = %q, want %q", c.raw, got, c.want)
		}
	}
}

// TestLogs writes lines in pieces as a process's stdout comes: only complete
// lines count, each decoded strictly, and Wait returns once a line it waits
// for is written.
func TestLogs(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := logtest.NewLogs()
		for _, p := range []string{
			`{"level":"info","message":"message preprocessed","event_id":"e1"}` + "\n" + `{"level":"info","mess`,
			`age":"event handled","event_id":"e2"}` + "\n",
			`{"level":"warn","message":"x","message":"y"}` + "\nnot json\n",
			`{"level":"info","message":"message preprocessed","event_id":"e3"}`, // no newline yet
		} {
			if _, err := l.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		lines := l.Lines()
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4: %v", len(lines), lines)
		}
		if lines[1].Msg() != logtest.Handled || lines[1].Str("event_id") != "e2" || lines[1].Level() != "info" {
			t.Errorf("line split across writes: %+v", lines[1])
		}
		if bad := l.Malformed(); len(bad) != 2 || bad[0].Raw != `{"level":"warn","message":"x","message":"y"}` || bad[1].Fields != nil {
			t.Errorf("malformed %+v, want the line with a key twice and the one that is not JSON", bad)
		}
		if n := logtest.Count(lines, logtest.Preprocessed, ""); n != 1 {
			t.Errorf("%d preprocessed lines before the last newline, want 1", n)
		}

		go func() {
			time.Sleep(time.Second) // virtual: the writer comes after Wait started
			fmt.Fprintln(l)         // ends e3's line
		}()
		start := time.Now()
		l.Wait(t, time.Minute, "e3", func(ls []logtest.Line) bool { return logtest.Count(ls, logtest.Preprocessed, "e3") == 1 })
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("Wait returned after %v, want when the line came (1s)", waited)
		}
	})
}

func TestCheckNoText(t *testing.T) {
	t.Parallel()
	text := "the invoice INV/2026/0042 is still unpaid, can you check it"
	l := logtest.NewLogs()
	fmt.Fprintln(l, `{"level":"debug","message":"`+text+`"}`)
	fmt.Fprintln(l, `{"level":"info","message":"message preprocessed","event_id":"e1"}`)
	ft := &fakeTB{TB: t}
	logtest.CheckNoText(ft, l.Lines(), []string{text})
	if ft.errors != 0 {
		t.Errorf("%d errors for a text logged at debug only", ft.errors)
	}
	fmt.Fprintln(l, `{"level":"warn","message":"failed","text":"`+text[:30]+`…"}`)
	logtest.CheckNoText(ft, l.Lines(), []string{text})
	if ft.errors != 1 {
		t.Errorf("%d errors for the start of a text logged at warn, want 1", ft.errors)
	}
}

// fakeTB counts the errors a check reports instead of failing the test.
type fakeTB struct {
	testing.TB
	errors int
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Errorf(string, ...any) { f.errors++ }
