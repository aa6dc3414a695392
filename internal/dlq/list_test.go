package dlq_test

import (
	"bufio"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/peek"
)

// TestListLeavesTheQueueAsItWas: one JSON object a line with the
// contract's keys (error_code and error only where the worker put them;
// invalid where the body of a message without them is no valid event), the
// body as it is; afterwards every message is receivable at once.
func TestListLeavesTheQueueAsItWas(t *testing.T) {
	t.Parallel()
	api := client()
	url := kumotest.Queue(t, api, true)
	from := time.Now().Add(-time.Second)
	body := `{"event_id":"e-1","text":"<b>&</b>"}`
	put(t, api, url, true, invalid("{not json", "a"), letter{body: body, group: "b"}, valid("v", "c"))

	var out strings.Builder
	n, err := dlq.List(t.Context(), peek.New(api, url, 0), 10, &out)
	if err != nil || n != 3 {
		t.Fatalf("listed %d, err %v", n, err)
	}
	var bodies []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var keys map[string]any
		if err := json.Unmarshal(sc.Bytes(), &keys); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		var l dlq.Letter
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, l.Body)
		wantKeys := 4
		switch l.Body {
		case "{not json":
			wantKeys = 6
			if l.ErrorCode != "invalid_json" || l.Error != "not JSON" || l.Invalid != nil {
				t.Errorf("reason of %q: %+v", l.Body, l)
			}
		case body: // no chat_id, and no error_code: moved by the redrive policy
			wantKeys = 5
			if l.Invalid == nil || l.Invalid.Code != "missing_field" || l.Invalid.Error != "chat_id: required" {
				t.Errorf("invalid of %q: %+v", l.Body, l.Invalid)
			}
		}
		if len(keys) != wantKeys || l.MessageID == "" || l.ReceiveCount != 1 || l.SentAt.Before(from) || l.SentAt.After(time.Now()) {
			t.Errorf("line %s: want %d keys, the id, receive_count 1 and a sent_at of now", sc.Text(), wantKeys)
		}
		if l.Body == body && !strings.Contains(sc.Text(), `<b>&</b>`) {
			t.Errorf("body not as it is: %s", sc.Text())
		}
	}
	slices.Sort(bodies)
	if want := []string{eventBody("v"), "{not json", body}; !slices.Equal(bodies, slices.Sorted(slices.Values(want))) {
		t.Errorf("listed %v", bodies)
	}
	if left := takeAll(t, api, url); len(left) != 3 {
		t.Errorf("%d messages receivable right after the listing, want 3", len(left))
	}
}

// TestListStopsAtMax lists at most max messages.
func TestListStopsAtMax(t *testing.T) {
	t.Parallel()
	api := client()
	url := kumotest.Queue(t, api, false)
	put(t, api, url, false, valid("1", ""), valid("2", ""), valid("3", ""), valid("4", ""))
	var out strings.Builder
	if n, err := dlq.List(t.Context(), peek.New(api, url, 0), 2, &out); err != nil || n != 2 || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("listed %d (err %v):\n%s", n, err, out.String())
	}
	if left := takeAll(t, api, url); len(left) != 4 {
		t.Errorf("%d left, want 4", len(left))
	}
}
