package importer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/eventfile"
)

// failure is a store error that says whether it is transient, as
// store.Error does.
type failure struct{ transient bool }

func (f failure) Error() string   { return fmt.Sprintf("failure (transient %v)", f.transient) }
func (f failure) Transient() bool { return f.transient }

// fakeStore records batches; fail decides each event's result per try.
type fakeStore struct {
	mu      sync.Mutex
	batches [][]string
	tries   map[string]int
	stored  map[string]bool
	fail    func(id string, try int) error
}

func (f *fakeStore) PutMessages(_ context.Context, evs []event.Event) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tries == nil {
		f.tries, f.stored = map[string]int{}, map[string]bool{}
	}
	ids := make([]string, len(evs))
	errs := make([]error, len(evs))
	for i, ev := range evs {
		ids[i] = ev.EventID
		f.tries[ev.EventID]++
		if f.fail != nil {
			errs[i] = f.fail(ev.EventID, f.tries[ev.EventID])
		}
		if errs[i] == nil {
			f.stored[ev.EventID] = true
		}
	}
	f.batches = append(f.batches, ids)
	return errs
}

func lines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"event_id":"e-%d","chat_id":"c-%d","role":"%s","text":"t","sent_at":"2026-11-01T09:00:00Z"}`+"\n",
			i+1, i%3, []string{"user", "assistant"}[i%2])
	}
	return b.String()
}

// TestBatches: every valid line is written once, in batches of at most
// BatchSize, and the whole input is done.
func TestBatches(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{}
		rep, err := Run(t.Context(), st, strings.NewReader(lines(1050)), Config{BatchSize: 100, Concurrency: 3})
		if err != nil || rep.Imported != 1050 || rep.Rejected != 0 || rep.Done != 1050 || rep.Lines != 1050 {
			t.Fatalf("report %+v, %v", rep, err)
		}
		for _, b := range st.batches {
			if len(b) > 100 {
				t.Errorf("a batch of %d", len(b))
			}
		}
		if len(st.stored) != 1050 || len(st.batches) < 11 {
			t.Errorf("%d stored in %d batches", len(st.stored), len(st.batches))
		}
	})
}

// TestRetriesAndRefusals: what failed for Weaviate's sake is written again
// (only that), what Weaviate refused is a rejected line, mutes are
// rejected before anything is written.
func TestRetriesAndRefusals(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{fail: func(id string, try int) error {
			switch {
			case id == "e-7":
				return failure{transient: false}
			case strings.HasSuffix(id, "3") && try < 3:
				return failure{transient: true}
			}
			return nil
		}}
		input := lines(40) + `{"event_id":"m","chat_id":"c","type":"mute"}` + "\n"
		var rejects strings.Builder
		rep, err := Run(t.Context(), st, strings.NewReader(input), Config{BatchSize: 10, Output: eventfile.Output{Rejects: &rejects}})
		if err != nil || rep.Imported != 39 || rep.Rejected != 2 || rep.Done != 41 {
			t.Fatalf("report %+v, %v", rep, err)
		}
		if !strings.Contains(rejects.String(), "line 7: weaviate refused it: ") || !strings.Contains(rejects.String(), "line 41: invalid_field: type") {
			t.Errorf("rejects:\n%s", rejects.String())
		}
		if st.tries["e-13"] != 3 || st.tries["e-12"] != 1 || st.tries["e-7"] != 1 {
			t.Errorf("tries: e-13 %d (want 3), e-12 %d (want 1), e-7 %d (want 1)", st.tries["e-13"], st.tries["e-12"], st.tries["e-7"])
		}
	})
}

// TestStopsAndSaysWhereToResume: a batch that keeps failing for Weaviate's
// sake stops the import after RetryFor; Done is the line before the first
// one not written, so --skip Done redoes nothing that was done and misses
// nothing that was not.
func TestStopsAndSaysWhereToResume(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{fail: func(id string, _ int) error {
			if id == "e-25" {
				return failure{transient: true}
			}
			return nil
		}}
		start := time.Now()
		rep, err := Run(t.Context(), st, strings.NewReader(lines(100)), Config{BatchSize: 10, Concurrency: 1, RetryFor: time.Minute})
		if err == nil || !strings.Contains(err.Error(), "lines 25-25") {
			t.Fatalf("err %v, want the import stopped at line 25", err)
		}
		if rep.Done != 24 {
			t.Errorf("done through line %d, want 24", rep.Done)
		}
		if waited := time.Since(start); waited < 30*time.Second || waited > time.Minute {
			t.Errorf("stopped after %v, want within RetryFor (1m)", waited)
		}
		for i := 1; i <= rep.Done; i++ {
			if !st.stored[fmt.Sprintf("e-%d", i)] {
				t.Errorf("line %d is counted done but e-%d was not stored", i, i)
			}
		}
	})
}
