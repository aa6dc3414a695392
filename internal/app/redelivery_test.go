package app_test

import (
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/contracttest"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/logtest"
	"github.com/chatprep/chatprep/internal/store/storetest"
)

// TestEventDeliveredTwice delivers one event twice for real (the same body
// sent twice under two deduplication ids on a FIFO queue, or twice to a
// standard queue) and checks that the worker handled both deliveries, that
// Weaviate holds one object for the event, and that the response queue got
// one result (FIFO: the second is deduplicated by event_id) or two results
// with the same event_id (standard: any consumer can deduplicate them).
func TestEventDeliveredTwice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    []stacktest.Option
		results int
	}{
		{"fifo", nil, 1},
		{"standard", []stacktest.Option{stacktest.Standard()}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := stacktest.New(t, append(tc.opts, stacktest.With("LOG_LEVEL", "info"))...)
			chat := e.ChatID("twice")
			m := stacktest.Event(chatEvent(chat, "e-twice", "user", "Is my order S00042 on its way?", 0))
			again := m
			again.Dedup += "-again" // SQS takes it as a new message: a second delivery of the same event

			w := startWorker(t, e.Config, app.Options{})
			from := time.Now()
			e.Send(t, m, again)
			w.logs.Wait(t, resultTimeout, "two deliveries handled", func(ls []logtest.Line) bool {
				return logtest.Count(ls, logtest.Preprocessed, "e-twice") >= 2
			})
			// Each delivery was logged after its result was accepted by SQS:
			// whatever the queue keeps of them is there now.
			results := e.Results(t, tc.results, resultTimeout)
			e.NoMoreResults(t, 2*time.Second)
			for _, r := range results {
				contracttest.CheckEnvelope(t, r, tc.name == "fifo", from)
				if r.EventID != "e-twice" || r.ChatID != chat {
					t.Errorf("result for %s of %s", r.EventID, r.ChatID)
				}
			}
			var ids []string
			for _, l := range w.logs.Lines() {
				if l.Msg() == logtest.Preprocessed {
					ids = append(ids, l.Str("message_id"))
				}
			}
			if len(ids) != 2 || ids[0] == ids[1] {
				t.Errorf("deliveries handled as SQS messages %v; want two different messages", ids)
			}

			wv := storetest.Reader{URL: e.Config.WeaviateURL}
			if n := wv.Stored(t, chat); n != 1 {
				t.Errorf("Weaviate holds %d objects for the chat, want 1", n)
			}
			obj := wv.Object(t, chat, "e-twice")
			if obj == nil || obj["event_id"] != "e-twice" || obj["text"] != "Is my order S00042 on its way?" {
				t.Errorf("stored object under the event's id: %v", obj)
			}
		})
	}
}
