package chaos_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

type kind int

const (
	userMsg kind = iota
	assistantMsg
	poisonMsg
	muteMsg // a mute or unmute: no result, nothing in ChatMessage
)

// ev is one event of a scenario's load, as sent.
type ev struct {
	id   string // event_id (for poison, a made-up id for deduplication)
	chat string // chat_id, also the FIFO group
	kind kind
	seq  int // position among its chat's events
	body string
	text string // the message text (personal data: never in logs at info)
	// dedup, when set, is the deduplication id instead of id (a copy sent
	// again, as a redrive sends it); firstSent, the event whose send time
	// the copy carries as first_sent_timestamp.
	dedup     string
	firstSent *ev
	sentAt    atomic.Int64 // UnixMilli just before the sender sent it
}

// loadOpt adds a kind of event to a load.
type loadOpt int

const (
	// withNonCharacters puts U+FFFE or U+FFFF into about a quarter of the
	// texts: valid UTF-8, so valid events, that SQS refuses raw (sent
	// escaped in JSON, as any producer must).
	withNonCharacters loadOpt = iota + 1
	// withStaleMutes gives every chat a mute a third of the way through and
	// an unmute two thirds of the way, then the mute once more, two
	// messages later, as a redrive sends it (a new deduplication id; when
	// the mute has no sent_at, the first send's time in
	// first_sent_timestamp): a stale mute that must not win. Half the
	// chats' mutes and unmutes carry sent_at, half do not (then the time
	// SQS received them orders them).
	withStaleMutes
)

// muteSpan is where a chat is muted under withStaleMutes: its mute comes
// just before its message at position mute, its unmute just before the one
// at unmute, the stale copy just before the one at stale; the user messages
// of positions mute to unmute-1 have muted results.
func muteSpan(perChat int) (mute, unmute, stale int) {
	return perChat / 3, 2 * perChat / 3, 2*perChat/3 + 2
}

// load is a scenario's events in send order.
type load struct {
	events []*ev
	valid  map[string]*ev // user and assistant messages by event id
	poison map[string]*ev // by body
	chats  []string
	users  int
	// mutedSeq, with withStaleMutes, is each chat's muted span: a user
	// message of seq in [from, to) has a muted result.
	mutedSeq map[string][2]int
	mutes    int // mute and unmute events, stale copies included
	nonchars int // texts holding U+FFFE or U+FFFF
}

var vocabulary = strings.Fields(`hello thanks please order delivery invoice quotation stock price
	keg crate pilsner lager wheat address warehouse tomorrow friday monday payment reminder
	discount pickup cancel confirm shipping refund missing wrong item party event brewery`)

// makeLoad makes chats×perChat messages (every fourth an assistant reply,
// the rest user messages), the chats interleaved and each chat's messages
// in time order, with a poison event after every poisonEvery messages (none
// for 0), sent in the middle of some chat's messages.
func makeLoad(chatID func(string) string, chats, perChat, poisonEvery int, seed uint64, opts ...loadOpt) *load {
	r := rand.New(rand.NewPCG(seed, 7))
	l := &load{valid: map[string]*ev{}, poison: map[string]*ev{}, mutedSeq: map[string][2]int{}}
	for c := range chats {
		l.chats = append(l.chats, chatID(fmt.Sprintf("c%03d", c)))
	}
	base := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	n := 0
	mutes := map[string]*ev{} // chat → its mute, for the stale copy
	for i := range perChat {
		for c, chat := range l.chats {
			if slices.Contains(opts, withStaleMutes) {
				l.addMute(i, c, chat, perChat, base.Add(time.Duration(i*chats+c)*time.Second-time.Millisecond), mutes)
			}
			e := &ev{id: fmt.Sprintf("c%03d-%04d", c, i), chat: chat, seq: i, kind: userMsg}
			role := "user"
			if i%4 == 3 {
				e.kind, role = assistantMsg, "assistant"
			} else {
				l.users++
			}
			words := make([]string, 6+r.IntN(12))
			for j := range words {
				words[j] = vocabulary[r.IntN(len(vocabulary))]
			}
			if r.IntN(5) == 0 {
				words = append(words, fmt.Sprintf("S%05d", r.IntN(100000)))
			}
			if slices.Contains(opts, withNonCharacters) && r.IntN(4) == 0 {
				for range 1 + r.IntN(3) {
					j := r.IntN(len(words))
					w := []rune(words[j])
					k := r.IntN(len(w) + 1)
					words[j] = string(w[:k]) + []string{"\uffff", "\ufffe"}[r.IntN(2)] + string(w[k:])
				}
				l.nonchars++
			}
			e.text = strings.Join(words, " ")
			b, _ := json.Marshal(map[string]string{
				"event_id": e.id, "chat_id": chat, "role": role, "channel": "whatsapp",
				"text":    e.text,
				"sent_at": base.Add(time.Duration(i*chats+c) * time.Second).Format(time.RFC3339),
			})
			// As a producer must (and worker enqueue does): SQS refuses
			// U+FFFE and U+FFFF raw.
			e.body = string(sqsbatch.JSONBody(b))
			l.events = append(l.events, e)
			l.valid[e.id] = e
			n++
			if poisonEvery > 0 && n%poisonEvery == 0 {
				p := poisonEvent(len(l.poison), chat)
				l.events = append(l.events, p)
				l.poison[p.body] = p
			}
		}
	}
	return l
}

// addMute adds chat c's mute, unmute or stale mute copy due before its
// message i (withStaleMutes), sent a millisecond before that message's time.
func (l *load) addMute(i, c int, chat string, perChat int, at time.Time, mutes map[string]*ev) {
	mute, unmute, stale := muteSpan(perChat)
	if i != mute && i != unmute && i != stale {
		return
	}
	if i == stale {
		orig := mutes[chat]
		l.events = append(l.events, &ev{id: orig.id, chat: chat, kind: muteMsg, seq: i, body: orig.body,
			dedup: "redrive-" + orig.id, firstSent: orig})
		l.mutes++
		return
	}
	typ := map[bool]string{true: "mute", false: "unmute"}[i == mute]
	fields := map[string]string{"event_id": fmt.Sprintf("c%03d-%s", c, typ), "chat_id": chat, "type": typ}
	if c%2 == 0 { // half the chats: ordered by the time SQS received them
		fields["sent_at"] = at.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(fields)
	e := &ev{id: fields["event_id"], chat: chat, kind: muteMsg, seq: i, body: string(b)}
	if i == mute {
		mutes[chat] = e
	}
	l.mutedSeq[chat] = [2]int{mute, unmute}
	l.events = append(l.events, e)
	l.mutes++
}

// poisonEvent is the i-th invalid event: each kind of mistake a producer
// makes, in turn, every body different.
func poisonEvent(i int, chat string) *ev {
	id := fmt.Sprintf("poison-%04d", i)
	var body string
	switch i % 8 {
	case 0:
		body = fmt.Sprintf(`{"event_id":"%s","chat_id":"%s","text":"cut off`, id, chat)
	case 1:
		body = fmt.Sprintf(`{"event_id":"%s","text":"no chat","sent_at":"2026-11-28T08:00:00Z"}`, id)
	case 2:
		body = fmt.Sprintf(`{"event_id":"%s","chat_id":"%s","role":"system","text":"x","sent_at":"2026-11-28T08:00:00Z"}`, id, chat)
	case 3:
		body = fmt.Sprintf(`{"event_id":"%s with spaces","chat_id":"%s","text":"x","sent_at":"2026-11-28T08:00:00Z"}`, id, chat)
	case 4:
		body = fmt.Sprintf(`{"event_id":"%s","chat_id":"%s","text":"x","sent_at":"tomorrow morning"}`, id, chat)
	case 5:
		body = fmt.Sprintf(`{"event_id":"%s","chat_id":"%s","type":"message","sent_at":"2026-11-28T08:00:00Z"}`, id, chat)
	case 6:
		body = fmt.Sprintf(`["%s"]`, id)
	default:
		body = fmt.Sprintf(`{"event_id":"%s","chat_id":"%s","text":"%s","sent_at":"2026-11-28T08:00:00Z"}`, id, chat, strings.Repeat("x", 16385))
	}
	return &ev{id: id, chat: chat, kind: poisonMsg, body: body}
}

// sender sends a load at a steady rate, in batches of up to ten events in
// send order (so per chat in order), FIFO with MessageGroupId = chat id and
// MessageDeduplicationId = event id, as `worker enqueue` does.
type sender struct {
	api   *sqs.Client
	url   string
	fifo  bool
	sent  atomic.Int64
	start time.Time
	end   atomic.Pointer[time.Time]
}

// run sends l's events at rate events per second; it returns when all are
// sent or ctx ends.
func (s *sender) run(ctx context.Context, l *load, rate float64) error {
	s.start = time.Now()
	every := time.Duration(float64(10*time.Second) / rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	for i := 0; i < len(l.events); i += 10 {
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait) // the steady rate
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		next = next.Add(every)
		if err := s.batch(ctx, l.events[i:min(i+10, len(l.events))]); err != nil {
			return err
		}
	}
	now := time.Now()
	s.end.Store(&now)
	return nil
}

func (s *sender) batch(ctx context.Context, evs []*ev) error {
	entries := make([]types.SendMessageBatchRequestEntry, len(evs))
	now := time.Now().UnixMilli()
	for i, e := range evs {
		e.sentAt.Store(now)
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(e.body)}
		if s.fifo {
			entries[i].MessageGroupId = aws.String(e.chat)
			entries[i].MessageDeduplicationId = aws.String(cmp.Or(e.dedup, e.id))
		}
		if e.firstSent != nil {
			// What a redrive copies from the dead letter's SentTimestamp;
			// here the time just before the original's send, which is not
			// after SQS's SentTimestamp of it, and long before the unmute's.
			entries[i].MessageAttributes = map[string]types.MessageAttributeValue{handler.AttrFirstSent: {
				DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(e.firstSent.sentAt.Load(), 10))}}
		}
	}
	out, err := s.api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.url), Entries: entries})
	if err != nil {
		return fmt.Errorf("send events: %w", err)
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("send events: %d refused, first: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
	}
	s.sent.Add(int64(len(evs)))
	return nil
}

// sentAll tells when the last event was sent (zero until then).
func (s *sender) sentAll() time.Time {
	if t := s.end.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// collector reads the response queue for the whole scenario and remembers
// every result by event id: each distinct SQS message id is one published
// result (a result the collector itself saw twice keeps its message id).
type collector struct {
	api *sqs.Client
	url string

	mu       sync.Mutex
	results  map[string]*seen
	arrivals []string // event ids in the order of their first result
	problems []string
	messages int
	// context is the text of every message a result gave as context
	// (history and relevant), by chat and event id (event ids are the
	// chat's own); textsDiffer the event ids whose text differed between
	// two results.
	context     map[contextKey]string
	textsDiffer []string
	last        time.Time // when the last new result arrived
	cancel      context.CancelFunc
	done        chan struct{}
}

type seen struct {
	msgIDs   map[string]bool
	first    time.Time
	chat     string
	degraded bool
	muted    bool
}

// startCollector starts readers of the response queue. Several readers
// keep each chat's order as recorded: on a FIFO queue a chat's next result
// is not delivered before the previous one is deleted, and a reader records
// a result before deleting it.
func startCollector(api *sqs.Client, url string, readers int) *collector {
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{api: api, url: url, results: map[string]*seen{}, context: map[contextKey]string{}, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for range max(readers, 1) {
		wg.Go(func() { c.loop(ctx) })
	}
	go func() {
		wg.Wait()
		close(c.done)
	}()
	return c
}

func (c *collector) stop() {
	c.cancel()
	<-c.done
}

func (c *collector) loop(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := c.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(c.url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			if ctx.Err() == nil {
				c.problem("receive results: %v", err) // the unfaulted endpoint: should not happen
				pause(ctx, 100*time.Millisecond)      // and do not spin if it does
			}
			continue
		}
		var del []types.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			c.record(m)
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		if len(del) > 0 {
			// A failed delete only makes the collector see the same message
			// again, which it recognises by its message id.
			if out, err := c.api.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.url), Entries: del}); err != nil || len(out.Failed) > 0 {
				c.problem("delete results: %v", err)
			}
		}
	}
}

func (c *collector) record(m types.Message) {
	var r event.Result
	err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages++
	if err != nil {
		c.problems = append(c.problems, fmt.Sprintf("result is not JSON: %v", err))
		return
	}
	attr := func(name string) string {
		if v, ok := m.MessageAttributes[name]; ok {
			return aws.ToString(v.StringValue)
		}
		return ""
	}
	if attr("event_id") != r.EventID || r.EventID == "" || attr("chat_id") != r.ChatID {
		c.problems = append(c.problems, fmt.Sprintf("result %q: attributes event_id %q chat_id %q do not match its body (chat %q)",
			r.EventID, attr("event_id"), attr("chat_id"), r.ChatID))
	}
	s, ok := c.results[r.EventID]
	if !ok {
		s = &seen{msgIDs: map[string]bool{}, first: now, chat: r.ChatID, degraded: len(r.Degraded) > 0, muted: r.Muted}
		c.results[r.EventID] = s
		c.arrivals = append(c.arrivals, r.EventID)
		c.last = now
	}
	s.msgIDs[aws.ToString(m.MessageId)] = true
	for _, cm := range append(r.History, r.Relevant...) {
		k := contextKey{r.ChatID, cm.EventID}
		if prev, ok := c.context[k]; ok && prev != cm.Text {
			c.textsDiffer = append(c.textsDiffer, cm.EventID)
		}
		c.context[k] = cm.Text
	}
}

// contextKey names a message given as context: its chat and event id.
type contextKey struct{ chat, eventID string }

func (c *collector) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) < 50 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

// have counts the distinct events of l that have a result.
func (c *collector) have(l *load) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id := range c.results {
		if e := l.valid[id]; e != nil && e.kind == userMsg {
			n++
		}
	}
	return n
}

func (c *collector) lastNew() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// drainQueue receives and deletes every message of a queue until it is
// empty, and returns their bodies. It is read once its writers stopped:
// short polls take what is there, and only when one comes back empty while
// the queue's counts say it is not (a short poll may miss messages, and a
// message may be invisible for a while) do the polls wait for more.
func drainQueue(ctx context.Context, api *sqs.Client, url string) ([]types.Message, error) {
	var all []types.Message
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	wait := int32(0)
	for {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: wait, VisibilityTimeout: 60, MessageAttributeNames: []string{"All"}})
		if err != nil {
			return all, err
		}
		for _, m := range out.Messages {
			all = append(all, m)
			if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return all, err
			}
		}
		if len(out.Messages) == 0 {
			n, err := stacktest.Depth(ctx, api, url)
			if err != nil {
				return all, err
			}
			if n == 0 {
				return all, nil
			}
			wait = 1
		}
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
