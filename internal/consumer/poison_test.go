package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/event"
)

// decodeHandler is the pipeline's first step: an event that does not decode
// is poison.
func decodeHandler(onValid func(event.Event)) consumer.Handler {
	return consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		ev, err := event.Decode([]byte(m.Body))
		var inv *event.Invalid
		if errors.As(err, &inv) {
			return consumer.Poison(inv.Code, fmt.Errorf("decode event: %w", err))
		}
		if err != nil {
			return err
		}
		onValid(ev)
		return nil
	})
}

// poisonCase is one body and the error code it must reach the dead-letter
// queue with ("" for a valid event). marker is a substring of the body as
// received, to recognise it.
type poisonCase struct {
	name, body, marker, code string
}

func poisonCases() []poisonCase {
	valid := func(id string) string {
		return fmt.Sprintf(`{"event_id":%q,"chat_id":"c-1","text":"hello","sent_at":"2026-11-28T10:00:00Z"}`, id)
	}
	return []poisonCase{
		{"not JSON", "this is not JSON: m-notjson", "m-notjson", event.CodeNotJSON},
		{"truncated JSON", `{"event_id":"m-trunc","chat_id":`, "m-trunc", event.CodeNotJSON},
		{"JSON array", `["m-array"]`, "m-array", event.CodeNotJSON},
		{"missing event_id", `{"chat_id":"m-noid","text":"hi","sent_at":"2026-11-28T10:00:00Z"}`, "m-noid", event.CodeMissingField},
		{"missing text", `{"event_id":"m-notext","chat_id":"c","sent_at":"2026-11-28T10:00:00Z"}`, "m-notext", event.CodeMissingField},
		{"bad type", `{"event_id":"m-badtype","chat_id":42,"text":"hi","sent_at":"2026-11-28T10:00:00Z"}`, "m-badtype", event.CodeInvalidField},
		{"bad time", `{"event_id":"m-badtime","chat_id":"c","text":"hi","sent_at":"yesterday"}`, "m-badtime", event.CodeInvalidField},
		// SQS carries text only: invalid UTF-8 arrives as U+FFFD (the JSON
		// wire replaces it; real SQS refuses such a send), which no id allows.
		{"invalid UTF-8", "{\"event_id\":\"m-utf8\xff\xfe\",\"chat_id\":\"c\",\"text\":\"hi\",\"sent_at\":\"2026-11-28T10:00:00Z\"}", "m-utf8", event.CodeInvalidField},
		{"oversize text", fmt.Sprintf(`{"event_id":"m-big","chat_id":"c","text":%q,"sent_at":"2026-11-28T10:00:00Z"}`, strings.Repeat("x", event.MaxTextBytes+1)), "m-big", event.CodeTextTooLong},
		{"valid 1", valid("m-valid-1"), "m-valid-1", ""},
		{"valid 2", valid("m-valid-2"), "m-valid-2", ""},
	}
}

// Invalid events all end in the dead-letter queue, body untouched, with
// their reason; then they are deleted from the input queue, and the worker
// goes on with the valid ones.
func TestPoisonToDeadLetterQueue(t *testing.T) {
	t.Parallel()
	for _, fifo := range []bool{false, true} {
		t.Run(fmt.Sprintf("fifo=%t", fifo), func(t *testing.T) {
			t.Parallel()
			// The invalid UTF-8 body comes back from kumo with another MD5.
			api := client(emu.URL, func(o *sqs.Options) { o.DisableMessageChecksumValidation = true })
			input, dlq := queues(t, api, fifo)
			cases := poisonCases()
			msgs := make([]msg, len(cases))
			for i, c := range cases {
				msgs[i] = msg{body: c.body}
				if fifo {
					msgs[i].group, msgs[i].dedup = fmt.Sprintf("chat-%d", i), fmt.Sprintf("d-%d", i)
				}
			}
			send(t, api, input, msgs, 1)

			var (
				mu    sync.Mutex
				valid []string
				seen  = map[string]*consumer.Message{} // marker → message as received
			)
			obs := &countingObserver{}
			c := newConsumer(t, api, input, dlq, consumer.Config{Observer: obs})
			inner := decodeHandler(func(ev event.Event) {
				mu.Lock()
				valid = append(valid, ev.EventID)
				mu.Unlock()
			})
			run := start(t, c, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
				mu.Lock()
				for _, pc := range cases {
					if strings.Contains(m.Body, pc.marker) {
						cp := *m
						seen[pc.marker] = &cp
					}
				}
				mu.Unlock()
				return inner.Handle(ctx, m)
			}))
			waitFor(t, 15*time.Second, "every event to be handled", func() bool { return c.Stats().Deleted == int64(len(cases)) })
			if _, err := run.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			dead := receiveAll(t, api, dlq)
			byMarker := map[string]types.Message{}
			for _, d := range dead {
				for _, pc := range cases {
					if strings.Contains(aws.ToString(d.Body), pc.marker) {
						byMarker[pc.marker] = d
					}
				}
			}
			invalid := 0
			for _, pc := range cases {
				d, inDLQ := byMarker[pc.marker]
				if pc.code == "" {
					if inDLQ {
						t.Errorf("%s: valid event in the dead-letter queue", pc.name)
					}
					continue
				}
				invalid++
				if !inDLQ {
					t.Errorf("%s: not in the dead-letter queue", pc.name)
					continue
				}
				got := seen[pc.marker]
				if aws.ToString(d.Body) != got.Body {
					t.Errorf("%s: dead-letter body differs from the body received", pc.name)
				}
				if code := attr(d, "error_code"); code != pc.code {
					t.Errorf("%s: error_code %q, want %q", pc.name, code, pc.code)
				}
				if reason := attr(d, "error"); reason == "" || len(reason) > consumer.MaxErrorAttrLen {
					t.Errorf("%s: error attribute %q", pc.name, reason)
				}
				if fifo {
					sys := d.Attributes
					if g := sys[string(types.MessageSystemAttributeNameMessageGroupId)]; g != got.GroupID {
						t.Errorf("%s: dead-letter group %q, want %q", pc.name, g, got.GroupID)
					}
					if dd := sys[string(types.MessageSystemAttributeNameMessageDeduplicationId)]; dd != got.ID {
						t.Errorf("%s: dead-letter deduplication id %q, want the message id %q", pc.name, dd, got.ID)
					}
				}
				t.Logf("%-16s → %s: %.80s", pc.name, attr(d, "error_code"), attr(d, "error"))
			}
			if len(dead) != invalid {
				t.Errorf("%d messages in the dead-letter queue, want %d", len(dead), invalid)
			}
			mu.Lock()
			if len(valid) != len(cases)-invalid {
				t.Errorf("valid events handled: %v", valid)
			}
			mu.Unlock()
			if st := c.Stats(); st.Rejected != int64(invalid) || obs.rejected.Load() != int64(invalid) || st.Failed != 0 {
				t.Errorf("stats %+v, observer rejected %d; want %d rejected", st, obs.rejected.Load(), invalid)
			}
			assertEmpty(t, api, input)
		})
	}
}

func attr(m types.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

// orderAPI wraps the real client: it fails the first dead-letter send and
// records, per message body, the order of dead-letter sends and deletes.
type orderAPI struct {
	consumer.SQSAPI
	mu      sync.Mutex
	bodies  map[string]string // receipt handle → body
	log     []string
	sendErr error
}

func (o *orderAPI) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := o.SQSAPI.ReceiveMessage(ctx, in, opts...)
	if err == nil {
		o.mu.Lock()
		for _, m := range out.Messages {
			o.bodies[aws.ToString(m.ReceiptHandle)] = aws.ToString(m.Body)
		}
		o.mu.Unlock()
	}
	return out, err
}

func (o *orderAPI) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	o.mu.Lock()
	err := o.sendErr
	o.sendErr = nil
	o.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out, err := o.SQSAPI.SendMessage(ctx, in, opts...)
	if err == nil {
		o.mu.Lock()
		o.log = append(o.log, "dead-letter "+aws.ToString(in.MessageBody))
		o.mu.Unlock()
	}
	return out, err
}

func (o *orderAPI) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out, err := o.SQSAPI.DeleteMessageBatch(ctx, in, opts...)
	if err == nil {
		o.mu.Lock()
		for _, e := range in.Entries {
			o.log = append(o.log, "delete "+o.bodies[aws.ToString(e.ReceiptHandle)])
		}
		o.mu.Unlock()
	}
	return out, err
}

// A poison message is deleted only after the dead-letter queue has it: if
// the send fails, the message stays in the input queue and comes back.
func TestPoisonNeverLost(t *testing.T) {
	t.Parallel()
	api := client(emu.URL)
	input, dlq := queues(t, api, false)
	send(t, api, input, []msg{{body: "not json"}}, 1)
	rec := &orderAPI{SQSAPI: api, bodies: map[string]string{},
		sendErr: &smithy.GenericAPIError{Code: "KmsAccessDenied", Fault: smithy.FaultClient}}
	c := newConsumer(t, rec, input, dlq, consumer.Config{WaitTime: time.Second, RetryBackoff: time.Second})
	run := start(t, c, decodeHandler(func(event.Event) {}))
	waitFor(t, 10*time.Second, "the retry to reach the dead-letter queue", func() bool { return c.Stats().Deleted == 1 })
	if _, err := run.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := strings.Join(rec.log, ", "); got != "dead-letter not json, delete not json" {
		t.Errorf("calls: %s; want the send before the delete", got)
	}
	if st := c.Stats(); st.Failed != 1 || st.AckErrors != 1 || st.Rejected != 1 {
		t.Errorf("stats %+v; want the failed send counted, then 1 rejected", st)
	}
	if dead := receiveAll(t, api, dlq); len(dead) != 1 {
		t.Errorf("%d in the dead-letter queue, want 1", len(dead))
	}
	assertEmpty(t, api, input)
}
