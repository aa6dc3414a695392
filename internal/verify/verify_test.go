package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/verify"
)

// fakeStore is a Store with function fields (pure logic; the real Weaviate
// path is tested in worker's TestVerifyFindsAndRepairsAGap).
type fakeStore struct {
	pages      [][]store.StoredMessage
	unfindable func(chat string, msgs []store.StoredMessage) map[string][]string
	reindex    func(id string) error
}

var _ verify.Store = (*fakeStore)(nil)

func (f *fakeStore) ScanMessages(_ context.Context, after string, _ int) ([]store.StoredMessage, error) {
	if after == "" {
		return f.pages[0], nil
	}
	for i, p := range f.pages {
		if len(p) > 0 && p[len(p)-1].Cursor == after && i+1 < len(f.pages) {
			return f.pages[i+1], nil
		}
	}
	return nil, nil
}

func (f *fakeStore) Unfindable(_ context.Context, chat string, msgs []store.StoredMessage) (map[string][]string, error) {
	return f.unfindable(chat, msgs), nil
}

func (f *fakeStore) Reindex(_ context.Context, _, id string) error { return f.reindex(id) }

func msg(chat, id string) store.StoredMessage {
	return store.StoredMessage{ID: chat + "/" + id, ChatID: chat, EventID: id, Role: "user", Cursor: chat + "/" + id}
}

// TestRecheckRepairAndCounts: a message missed once but found when asked
// again (a write in flight) is not reported; one missed twice is; a repair
// that the searches confirm counts, one they do not (or that fails) does
// not; --chat keeps to one chat; progress is written at the end.
func TestRecheckRepairAndCounts(t *testing.T) {
	t.Parallel()
	asked := map[string]int{}
	repaired := map[string]bool{}
	f := &fakeStore{
		pages: [][]store.StoredMessage{{msg("a", "1"), msg("b", "1")}, {msg("a", "2"), msg("b", "2"), msg("c", "1")}},
		unfindable: func(chat string, msgs []store.StoredMessage) map[string][]string {
			out := map[string][]string{}
			for _, m := range msgs {
				asked[m.ID]++
				switch {
				case repaired[m.ID]:
				case m.ID == "a/1" && asked[m.ID] == 1: // being written: found when asked again
					out[m.ID] = []string{store.SearchHistory}
				case m.ID == "a/2", m.ID == "b/2", m.ID == "c/1":
					out[m.ID] = []string{store.SearchHistory, store.SearchRelevance}
				}
			}
			return out
		},
		reindex: func(id string) error {
			switch id {
			case "b/2":
				return errors.New("weaviate unavailable")
			case "c/1":
				return nil // reindexed, yet still missed
			}
			repaired[id] = true
			return nil
		},
	}
	run := func(o verify.Options) (verify.Report, []verify.Finding, string) {
		var out, progress bytes.Buffer
		o.Out, o.Progress, o.Recheck, o.Page = &out, &progress, time.Millisecond, 2
		rep, err := verify.Run(t.Context(), f, o)
		if err != nil {
			t.Fatal(err)
		}
		var fs []verify.Finding
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l == "" {
				continue
			}
			var fd verify.Finding
			if err := json.Unmarshal([]byte(l), &fd); err != nil {
				t.Fatalf("finding %q: %v", l, err)
			}
			fs = append(fs, fd)
		}
		return rep, fs, progress.String()
	}

	rep, fs, progress := run(verify.Options{})
	if rep != (verify.Report{Scanned: 5, Checked: 5, Chats: 3, Missing: 3}) || len(fs) != 3 {
		t.Fatalf("report %+v, findings %+v", rep, fs)
	}
	for _, fd := range fs {
		if fd.ID == "a/1" || fd.Repaired != nil {
			t.Errorf("finding %+v: a/1 was found when asked again; no repair was asked", fd)
		}
	}
	if !strings.HasSuffix(progress, "done: scanned 5 objects, checked 5 messages in 3 chats, missing 3, repaired 0\n") {
		t.Errorf("progress %q", progress)
	}

	rep, fs, _ = run(verify.Options{Chat: "a", Repair: true})
	if rep != (verify.Report{Scanned: 5, Checked: 2, Chats: 1, Missing: 1, Repaired: 1}) || len(fs) != 1 || fs[0].ID != "a/2" || !*fs[0].Repaired {
		t.Fatalf("--chat a --repair: %+v %+v", rep, fs)
	}
	rep, fs, _ = run(verify.Options{Repair: true})
	if rep.Missing != 2 || rep.Repaired != 0 || len(fs) != 2 {
		t.Fatalf("--repair of what cannot be repaired: %+v %+v", rep, fs)
	}
	for _, fd := range fs {
		if *fd.Repaired || fd.Error == "" {
			t.Errorf("finding %+v: want not repaired, with the reason", fd)
		}
	}
}
