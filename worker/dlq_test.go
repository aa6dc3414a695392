package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/logtest"
)

// failThroughRedrivePolicy plays a consumer that fails every message: it
// receives the input queue's messages one at a time and gives each back
// (visibility 0) without deleting it, until SQS's redrive policy has moved
// every one to the dead-letter queue after MAX_RECEIVE_COUNT receives. One
// at a time, so only a group's head is ever in flight and the messages
// reach the dead-letter queue in each chat's order.
func failThroughRedrivePolicy(t *testing.T, e *stacktest.Env) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for e.QueueDepth(t, e.InputURL) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the redrive policy did not move the messages to the dead-letter queue within a minute")
		}
		out, err := e.SQS.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.InputURL), MaxNumberOfMessages: 1, VisibilityTimeout: 30, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if _, err := e.SQS.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(e.InputURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// letter is a line of `worker dlq list`.
type letter struct {
	MessageID    string    `json:"message_id"`
	ErrorCode    *string   `json:"error_code"`
	Error        *string   `json:"error"`
	ReceiveCount int       `json:"receive_count"`
	SentAt       time.Time `json:"sent_at"`
	Invalid      *struct {
		Code  string `json:"error_code"`
		Error string `json:"error"`
	} `json:"invalid"`
	Body string `json:"body"`
}

func listLines(t *testing.T, out string) []letter {
	t.Helper()
	var ls []letter
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		fields, err := logtest.DecodeStrict(sc.Text())
		if err != nil {
			t.Fatalf("dlq list line %q: %v", sc.Text(), err)
		}
		for k := range fields {
			if !slices.Contains([]string{"message_id", "error_code", "error", "receive_count", "sent_at", "invalid", "body"}, k) {
				t.Errorf("dlq list line has key %q: %s", k, sc.Text())
			}
		}
		var l letter
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	return ls
}

func userEvent(chat, id string, minute int) stacktest.Msg {
	return stacktest.Event(map[string]any{"event_id": id, "chat_id": chat, "text": "Where is my order " + id + "?",
		"sent_at": time.Date(2026, 11, 28, 9, minute, 0, 0, time.UTC).Format(time.RFC3339)})
}

// TestRedriveAfterTheRedrivePolicy: events a consumer failed
// MAX_RECEIVE_COUNT times went to the dead-letter queue through the
// queue's redrive policy; invalid events went there through the worker.
// `worker dlq redrive` moves the former back (the worker running all
// along) and skips the latter; the worker then handles every event once,
// each chat's results in order; a second redrive finds nothing to move,
// and `worker dlq list` shows the invalid events left.
func TestRedriveAfterTheRedrivePolicy(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.With("MAX_RECEIVE_COUNT", "2", "LOG_LEVEL", "info"))
	const chats, perChat = 3, 4
	var msgs []stacktest.Msg
	want := map[string][]string{} // chat → event ids in order
	for c := range chats {
		chat := e.ChatID(fmt.Sprintf("c%d", c))
		for i := range perChat {
			id := fmt.Sprintf("c%d-e%d", c, i)
			msgs = append(msgs, userEvent(chat, id, i))
			want[chat] = append(want[chat], id)
		}
	}
	// An invalid event the worker never saw (as when its own move to the
	// dead-letter queue kept failing): no error_code, recognised by its body.
	noText := e.ChatID("no-text")
	msgs = append(msgs, stacktest.Event(map[string]any{"event_id": "no-text", "chat_id": noText, "sent_at": "2026-11-28T09:00:00Z"}))
	e.Send(t, msgs...)
	failThroughRedrivePolicy(t, e)
	if n := e.QueueDepth(t, e.DLQURL); n != chats*perChat+1 {
		t.Fatalf("%d messages in the dead-letter queue, want %d", n, chats*perChat+1)
	}

	_, logs, _ := runWorker(t, e)
	poison := e.ChatID("poison")
	e.Send(t, stacktest.Msg{Body: "{not json", Group: poison, Dedup: "p1"},
		stacktest.Event(map[string]any{"event_id": "p2", "chat_id": poison, "role": "system", "text": "x", "sent_at": "2026-11-28T09:00:00Z"}))
	logs.Wait(t, time.Minute, "two poison messages dead-lettered", func(ls []logtest.Line) bool {
		return logtest.Count(ls, "poison message moved to the dead-letter queue", "") == 2
	})

	r := worker(t, e.Environ(), "", "dlq", "redrive")
	if r.code != 0 || r.stdout != fmt.Sprintf("redriven %d, skipped 3\n", chats*perChat) || !strings.Contains(r.stderr, "3 skipped are invalid events") ||
		strings.Contains(r.stderr, "the queue holds") {
		t.Fatalf("dlq redrive: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	results := e.Results(t, chats*perChat, 2*time.Minute)
	e.NoMoreResults(t, 2*time.Second)
	got := map[string][]string{}
	for _, res := range results {
		got[res.ChatID] = append(got[res.ChatID], res.EventID)
	}
	for chat, ids := range want {
		if !slices.Equal(got[chat], ids) {
			t.Errorf("chat %s: results %v, want each once, in order %v", chat, got[chat], ids)
		}
	}
	for _, ids := range want {
		for _, id := range ids {
			if n := logtest.Count(logs.Lines(), logtest.Preprocessed, id); n != 1 {
				t.Errorf("%s handled %d times, want once", id, n)
			}
		}
	}

	r = worker(t, e.Environ(), "", "dlq", "redrive")
	if r.code != 0 || r.stdout != "redriven 0, skipped 3\n" {
		t.Errorf("second dlq redrive: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = worker(t, e.Environ(), "", "dlq", "list")
	left := listLines(t, r.stdout)
	if r.code != 0 || len(left) != 3 {
		t.Fatalf("dlq list: exit %d, %d lines\n%s%s", r.code, len(left), r.stdout, r.stderr)
	}
	for _, l := range left {
		switch {
		case strings.Contains(l.Body, `"no-text"`):
			if l.ErrorCode != nil || l.Invalid == nil || l.Invalid.Code != "missing_field" || l.Invalid.Error != "text: required for a message" {
				t.Errorf("the invalid event moved by the redrive policy: %+v, want its reason under invalid", l)
			}
		case l.ErrorCode == nil || l.Error == nil || l.Invalid != nil || (l.Body != "{not json" && !strings.Contains(l.Body, `"p2"`)):
			t.Errorf("left in the dead-letter queue: %+v", l)
		}
	}
}

// TestDLQListLeavesTheQueueAsItWas: dead letters from both paths are
// listed with the contract's keys, error_code and error only on the
// worker's; listed twice, the same messages; right after, every one is
// receivable at once.
func TestDLQListLeavesTheQueueAsItWas(t *testing.T) {
	t.Parallel()
	e := stacktest.New(t, stacktest.With("MAX_RECEIVE_COUNT", "1", "LOG_LEVEL", "info"))
	chat := e.ChatID("c")
	e.Send(t, userEvent(chat, "e1", 0), userEvent(chat, "e2", 1))
	from := time.Now().Add(-time.Minute)
	failThroughRedrivePolicy(t, e)
	_, logs, _ := runWorker(t, e)
	e.Send(t, stacktest.Msg{Body: "{not json <&>", Group: e.ChatID("poison"), Dedup: "p1"})
	logs.Wait(t, time.Minute, "the poison message dead-lettered", func(ls []logtest.Line) bool {
		return logtest.Count(ls, "poison message moved to the dead-letter queue", "") == 1
	})

	var ids [][]string
	for range 2 {
		r := worker(t, e.Environ(), "", "dlq", "list", "--max", "10")
		ls := listLines(t, r.stdout)
		if r.code != 0 || len(ls) != 3 {
			t.Fatalf("dlq list: exit %d, %d lines\n%s%s", r.code, len(ls), r.stdout, r.stderr)
		}
		var run []string
		for _, l := range ls {
			run = append(run, l.MessageID)
			poisoned := l.Body == "{not json <&>"
			if poisoned != (l.ErrorCode != nil && *l.ErrorCode == "invalid_json") || poisoned != (l.Error != nil) {
				t.Errorf("error_code %v error %v on %q", l.ErrorCode, l.Error, l.Body)
			}
			if l.ReceiveCount < 1 || l.SentAt.Before(from) || l.SentAt.After(time.Now()) || l.MessageID == "" {
				t.Errorf("line %+v", l)
			}
		}
		slices.Sort(run)
		ids = append(ids, run)
	}
	if !slices.Equal(ids[0], ids[1]) {
		t.Errorf("two listings saw %v and %v", ids[0], ids[1])
	}
	r := worker(t, e.Environ(), "", "dlq", "list", "--max", "2")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("--max 2: exit %d\n%s", r.code, r.stdout)
	}
	// What it could not show, said on stderr.
	if !strings.Contains(r.stderr, "the queue holds about 3 messages (") || !strings.Contains(r.stderr, "), 2 shown") {
		t.Errorf("--max 2: stderr %q, want the queue's count", r.stderr)
	}
	if n := e.QueueDepth(t, e.DLQURL); n != 3 {
		t.Errorf("dead-letter queue holds %d after the listings, want 3", n)
	}
	// Receivable at once, not after the listing's hold ran out.
	if got := e.DeadLetters(t, 3, 5*time.Second); len(got) != 3 {
		t.Errorf("%d dead letters receivable", len(got))
	}
}
