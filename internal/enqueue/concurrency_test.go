package enqueue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/enqueue"
	"github.com/chatprep/chatprep/internal/eventfile"
)

// watchAPI watches the SendMessageBatch calls in flight: how many at once,
// and whether two of them ever hold the same chat. Until two calls are in
// flight together (or a minute passed) each call waits, so a Sender that
// can send concurrently is seen doing it.
type watchAPI struct {
	enqueue.API
	chatOf func(body string) string

	mu          sync.Mutex
	inFlight    int
	most        int
	chats       map[string]int // chat → calls in flight holding it
	sameChat    []string
	concurrent  chan struct{} // closed once two calls were in flight together
	closed      bool
	calls       int
	largestCall int
}

func newWatchAPI(api enqueue.API, chatOf func(string) string) *watchAPI {
	return &watchAPI{API: api, chatOf: chatOf, chats: map[string]int{}, concurrent: make(chan struct{})}
}

func (w *watchAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	var mine []string
	w.mu.Lock()
	w.calls++
	w.largestCall = max(w.largestCall, len(in.Entries))
	w.inFlight++
	w.most = max(w.most, w.inFlight)
	for _, e := range in.Entries {
		c := w.chatOf(aws.ToString(e.MessageBody))
		if !slices.Contains(mine, c) {
			mine = append(mine, c)
			if w.chats[c] > 0 {
				w.sameChat = append(w.sameChat, c)
			}
			w.chats[c]++
		}
	}
	if w.inFlight >= 2 && !w.closed {
		w.closed = true
		close(w.concurrent)
	}
	w.mu.Unlock()
	select {
	case <-w.concurrent:
	case <-time.After(time.Minute):
	case <-ctx.Done():
	}
	out, err := w.API.SendMessageBatch(ctx, in, opts...)
	w.mu.Lock()
	w.inFlight--
	for _, c := range mine {
		w.chats[c]--
	}
	w.mu.Unlock()
	return out, err
}

var chatRE = regexp.MustCompile(`"chat_id":"([^"]+)"`)

func chatOf(body string) string {
	if m := chatRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// TestConcurrencyIsBoundedAndKeepsEachChatsOrder sends many chats' events
// with four lanes against kumo: calls do run concurrently, never more than
// four, never two holding the same chat, and every chat's events arrive on
// the FIFO queue in input order.
func TestConcurrencyIsBoundedAndKeepsEachChatsOrder(t *testing.T) {
	t.Parallel()
	api := client()
	url := queue(t, api, true)
	const chats, perChat, lanes = 12, 40, 4
	var in strings.Builder
	for i := range perChat {
		for c := range chats {
			fmt.Fprintf(&in, `{"event_id":"c%d-%03d","chat_id":"c%d","text":"message %d","sent_at":"2026-11-28T10:00:00Z"}`+"\n", c, i, c, i)
		}
	}
	w := newWatchAPI(api, chatOf)
	rep, err := enqueue.NewSender(w, url, true, enqueue.Config{Concurrency: lanes, Output: eventfile.Output{Rejects: os.Stderr}}).Send(t.Context(), strings.NewReader(in.String()))
	if err != nil || rep.Sent != chats*perChat || rep.Rejected != 0 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	w.mu.Lock()
	if w.most < 2 || w.most > lanes {
		t.Errorf("%d calls in flight at most, want 2 to %d", w.most, lanes)
	}
	if len(w.sameChat) > 0 {
		t.Errorf("two calls in flight held the same chat: %v", w.sameChat)
	}
	if w.largestCall > 10 || w.calls > chats*perChat/5 {
		t.Errorf("%d calls, the largest of %d entries: not batches of up to ten", w.calls, w.largestCall)
	}
	w.mu.Unlock()

	got := map[string][]string{}
	for _, m := range drain(t, api, url, chats*perChat) {
		g := m.Attributes["MessageGroupId"]
		got[g] = append(got[g], m.Attributes["MessageDeduplicationId"])
	}
	for c := range chats {
		chat := fmt.Sprintf("c%d", c)
		want := make([]string, perChat)
		for i := range want {
			want[i] = fmt.Sprintf("c%d-%03d", c, i)
		}
		if !slices.Equal(got[chat], want) {
			t.Errorf("chat %s arrived as %v, want input order", chat, got[chat])
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use that signals its
// first write.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
	once    sync.Once
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{written: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.once.Do(func() { close(b.written) })
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gatedAPI holds its first call until gate is closed.
type gatedAPI struct {
	enqueue.API
	gate <-chan struct{}
	once sync.Once
}

func (g *gatedAPI) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	g.once.Do(func() {
		select {
		case <-g.gate:
		case <-ctx.Done():
		}
	})
	return g.API.SendMessageBatch(ctx, in, opts...)
}

func events(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"event_id":"e-%d","chat_id":"c-%d","type":"mute"}`+"\n", i, i%7)
	}
	return b.String()
}

// TestProgress: a progress line (sent, rejected, rate) each ProgressEvery
// while sending, no more often, on its own line; on a terminal one line
// rewritten in place and cleared at the end. The first call waits for the first progress line, so there is one.
func TestProgress(t *testing.T) {
	t.Parallel()
	for _, terminal := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminal=%v", terminal), func(t *testing.T) {
			t.Parallel()
			api := client()
			url := queue(t, api, true)
			out := newSyncBuffer()
			every := 20 * time.Millisecond
			cfg := enqueue.Config{Output: eventfile.Output{Progress: out, Rejects: out, Terminal: terminal, ProgressEvery: every}}
			start := time.Now()
			input := "not json\n" + events(300)
			rep, err := enqueue.NewSender(&gatedAPI{API: api, gate: out.written}, url, true, cfg).Send(t.Context(), strings.NewReader(input))
			elapsed := time.Since(start)
			if err != nil || rep.Sent != 300 || rep.Rejected != 1 {
				t.Fatalf("report %+v, err %v", rep, err)
			}
			text := out.String()
			progress := regexp.MustCompile(`sent \d+, rejected [01], \d+ events/s`)
			n := len(progress.FindAllString(text, -1))
			if n < 1 || n > int(elapsed/every)+1 {
				t.Errorf("%d progress lines in %v at one per %v:\n%q", n, elapsed, every, text)
			}
			if !terminal {
				for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
					if !regexp.MustCompile(`^(progress: sent \d+, rejected [01], \d+ events/s|line 1: invalid_json: .*)$`).MatchString(l) {
						t.Errorf("line %q", l)
					}
				}
				return
			}
			if !regexp.MustCompile(`^(\rsent \d+, rejected 0, \d+ events/s\x1b\[K)*(\r\x1b\[K)?line 1: invalid_json: [^\r\n]*\n(\rsent \d+, rejected 1, \d+ events/s\x1b\[K)+\r\x1b\[K$`).MatchString(text) {
				t.Errorf("terminal output %q: want the progress line rewritten in place, then cleared", text)
			}
		})
	}
}

// TestRejectedLinesAreCapped: 100 rejected lines shown, then how many more.
func TestRejectedLinesAreCapped(t *testing.T) {
	t.Parallel()
	api := client()
	url := queue(t, api, false)
	input := strings.Repeat("garbage\n", 250) + events(5)
	var rejects strings.Builder
	rep, err := enqueue.NewSender(api, url, false, enqueue.Config{Output: eventfile.Output{Rejects: &rejects}}).Send(t.Context(), strings.NewReader(input))
	if err != nil || rep.Sent != 5 || rep.Rejected != 250 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	lines := strings.Split(strings.TrimSpace(rejects.String()), "\n")
	if len(lines) != 101 || !strings.HasPrefix(lines[0], "line 1: invalid_json") ||
		!strings.HasPrefix(lines[99], "line 100: ") || lines[100] != "… and 150 more rejected lines not shown (250 rejected in all)" {
		t.Errorf("%d lines, first %q, last two %q", len(lines), lines[0], lines[len(lines)-2:])
	}
}

// TestDuplicateEventIDsAreRejected: the second line with an event_id is
// rejected with the line of the first; the first is sent.
func TestDuplicateEventIDsAreRejected(t *testing.T) {
	t.Parallel()
	api := client()
	url := queue(t, api, true)
	input := `{"event_id":"e-1","chat_id":"c-1","type":"mute"}
{"event_id":"e-2","chat_id":"c-1","type":"mute"}
{"event_id":"e-1","chat_id":"c-2","type":"unmute"}
{"event_id":"e-2","chat_id":"c-1","type":"mute"}
`
	var rejects strings.Builder
	rep, err := enqueue.NewSender(api, url, true, enqueue.Config{Output: eventfile.Output{Rejects: &rejects}}).Send(t.Context(), strings.NewReader(input))
	if err != nil || rep.Sent != 2 || rep.Rejected != 2 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	want := "line 3: duplicate_event_id: event_id \"e-1\" is on line 1 already\nline 4: duplicate_event_id: event_id \"e-2\" is on line 2 already\n"
	if rejects.String() != want {
		t.Errorf("rejects %q, want %q", rejects.String(), want)
	}
}

// TestBinaryInputIsRefusedBeforeSending: a NUL byte in the first read (any
// binary file), or input that cannot be read at all (a directory), is an
// *InputError and nothing is sent or reported.
func TestBinaryInputIsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for name, in := range map[string]io.Reader{
		"binary":    strings.NewReader("\x7fELF\x02\x01\x01\x00\x00\x00\n" + events(3)),
		"directory": dir,
	} {
		t.Run(name, func(t *testing.T) {
			w := newWatchAPI(client(), chatOf)
			var rejects strings.Builder
			rep, err := enqueue.NewSender(w, "http://127.0.0.1:1/000000000000/q", false, enqueue.Config{Output: eventfile.Output{Rejects: &rejects}}).Send(t.Context(), in)
			var inputErr *enqueue.InputError
			if !errors.As(err, &inputErr) || rep != (enqueue.Report{}) || rejects.Len() != 0 || w.calls != 0 {
				t.Errorf("err %v, report %+v, rejects %q, %d calls", err, rep, rejects.String(), w.calls)
			}
		})
	}
}
