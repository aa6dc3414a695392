package forget

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/store"
)

// fakeStore holds counts of messages and state; stored is what a worker
// stores again while the delete runs.
type fakeStore struct {
	messages, state, stored int64
	deleteCalls             int
	sel                     store.Selection
}

func (f *fakeStore) CountMessages(_ context.Context, sel store.Selection) (int64, error) {
	f.sel = sel
	return f.messages, nil
}

func (f *fakeStore) DeleteMessages(_ context.Context, _ store.Selection, progress func(int64)) (int64, error) {
	f.deleteCalls++
	n := f.messages
	progress(n)
	f.messages = f.stored
	return n, nil
}

func (f *fakeStore) CountState(context.Context, string) (int64, error) { return f.state, nil }

func (f *fakeStore) DeleteState(context.Context, string) (int64, error) {
	n := f.state
	f.state = 0
	return n, nil
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	before := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		o       Options
		stored  int64
		want    Report
		deletes int
	}{
		{"a chat", Options{Chat: "c"}, 0, Report{Messages: 10, State: 3, DeletedMessages: 10, DeletedState: 3}, 1},
		{"dry run", Options{Chat: "c", DryRun: true}, 0, Report{Messages: 10, State: 3, LeftMessages: 10, LeftState: 3}, 0},
		{"retention keeps the state", Options{Before: before}, 0, Report{Messages: 10, DeletedMessages: 10}, 1},
		{"retention of a chat", Options{Chat: "c", Before: before}, 0, Report{Messages: 10, DeletedMessages: 10}, 1},
		{"stored meanwhile", Options{Chat: "c"}, 2, Report{Messages: 10, State: 3, DeletedMessages: 10, DeletedState: 3, LeftMessages: 2}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeStore{messages: 10, state: 3, stored: tc.stored}
			rep, err := Run(ctx, st, tc.o)
			rep.Elapsed = 0
			if err != nil || rep != tc.want || st.deleteCalls != tc.deletes {
				t.Errorf("report %+v, %v, %d deletes; want %+v, %d", rep, err, st.deleteCalls, tc.want, tc.deletes)
			}
			if st.sel != tc.o.Selection() {
				t.Errorf("selection %+v, want %+v", st.sel, tc.o.Selection())
			}
		})
	}
	if _, err := Run(ctx, &fakeStore{}, Options{}); !errors.Is(err, ErrNothingSelected) {
		t.Errorf("no selection: %v", err)
	}
}

// TestProgress: at most one line per ProgressEvery while deleting, and a
// last line when any was shown.
func TestProgress(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	p := &progress{o: Options{Progress: &out, ProgressEvery: time.Hour}, total: 30, start: time.Now()}
	for _, n := range []int64{10, 20, 30} {
		p.deleted(n)
	}
	p.done(30)
	if got := out.String(); strings.Count(got, "\n") != 2 || !strings.HasPrefix(got, "progress: deleted 10 of 30 messages") || !strings.Contains(got, "done: deleted 30 of 30 messages") {
		t.Errorf("progress:\n%s", got)
	}
}

func TestParseAge(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"2160h": 2160 * time.Hour, "90d": 90 * 24 * time.Hour, "1h30m": 90 * time.Minute} {
		if got, err := ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "0d", "-5h", "0", "1.5d"} {
		if _, err := ParseAge(in); err == nil {
			t.Errorf("ParseAge(%q) took it", in)
		}
	}
}
