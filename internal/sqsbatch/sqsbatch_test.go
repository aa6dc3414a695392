package sqsbatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// scripted answers each SendMessageBatch call with the next answer of
// script (by body), recording every call's bodies.
type scripted struct {
	mu     sync.Mutex
	calls  [][]string
	answer func(call int, body string) (ok bool, fail *types.BatchResultErrorEntry)
	err    func(call int) error
}

var _ sqsbatch.API = (*scripted)(nil)

func (s *scripted) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	call := len(s.calls)
	var bodies []string
	for _, e := range in.Entries {
		bodies = append(bodies, aws.ToString(e.MessageBody))
	}
	s.calls = append(s.calls, bodies)
	if s.err != nil {
		if err := s.err(call); err != nil {
			return nil, err
		}
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		ok, fail := s.answer(call, aws.ToString(e.MessageBody))
		switch {
		case ok:
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m")})
		case fail != nil:
			f := *fail
			f.Id = e.Id
			out.Failed = append(out.Failed, f)
		}
		// neither: the answer forgets the entry
	}
	return out, nil
}

func (s *scripted) DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	return nil, errors.New("not scripted")
}

func (s *scripted) ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	return nil, errors.New("not scripted")
}

func fast() sqsbatch.Config {
	return sqsbatch.Config{Backoff: backoff.Policy{Base: time.Millisecond, Max: 2 * time.Millisecond}, MaxAttempts: 4}
}

func messages(n int) []sqsbatch.Message {
	msgs := make([]sqsbatch.Message, n)
	for i := range msgs {
		msgs[i].Body = fmt.Sprintf("b%02d", i)
	}
	return msgs
}

// TestOutcomePerEntry: a sender fault fails its own entry at once; SQS's
// own failures and entries the answer forgot are sent again; the rest
// succeed. Every entry gets exactly its own outcome.
func TestOutcomePerEntry(t *testing.T) {
	t.Parallel()
	api := &scripted{answer: func(call int, body string) (bool, *types.BatchResultErrorEntry) {
		switch body {
		case "b01":
			return false, &types.BatchResultErrorEntry{Code: aws.String("InvalidParameterValue"), Message: aws.String("bad"), SenderFault: true}
		case "b02":
			if call == 0 {
				return false, &types.BatchResultErrorEntry{Code: aws.String("InternalError"), SenderFault: false}
			}
		case "b03":
			if call < 2 {
				return false, nil // in neither list
			}
		case "b04":
			if call == 0 {
				return false, &types.BatchResultErrorEntry{Code: aws.String("RequestThrottled"), SenderFault: true}
			}
		}
		return true, nil
	}}
	q := sqsbatch.NewSender(api, "http://q/1/results", fast())
	errs := q.Send(t.Context(), messages(5))
	if errs[0] != nil || errs[2] != nil || errs[3] != nil || errs[4] != nil {
		t.Errorf("outcomes %v: want only b01 failed", errs)
	}
	var e *sqsbatch.Error
	if !errors.As(errs[1], &e) || e.Code != "InvalidParameterValue" || !e.SenderFault || e.Transient() || e.Attempts != 1 {
		t.Errorf("b01: %#v, want a permanent sender fault after one attempt", errs[1])
	}
	want := [][]string{{"b00", "b01", "b02", "b03", "b04"}, {"b02", "b03", "b04"}, {"b03"}}
	if !slices.EqualFunc(api.calls, want, slices.Equal) {
		t.Errorf("calls %v, want %v", api.calls, want)
	}
	if c := q.Calls(); c.SendMessageBatch != 3 || c.Total() != 3 {
		t.Errorf("Calls %+v, want 3 sends", c)
	}
}

// TestGivesUpAfterMaxAttempts: an entry SQS keeps forgetting fails
// transiently once the attempts are spent; it is never reported as sent.
func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	api := &scripted{answer: func(int, string) (bool, *types.BatchResultErrorEntry) { return false, nil }}
	q := sqsbatch.NewSender(api, "http://q/1/results", fast())
	errs := q.Send(t.Context(), messages(2))
	for i, err := range errs {
		var e *sqsbatch.Error
		if !errors.As(err, &e) || e.Code != sqsbatch.CodeNotAnswered || !e.Transient() || e.Attempts != 4 {
			t.Errorf("entry %d: %v, want not answered after 4 attempts", i, err)
		}
	}
	if len(api.calls) != 4 {
		t.Errorf("%d calls, want 4", len(api.calls))
	}
}

// TestCallErrors: a retryable call error is retried; a permanent one fails
// every entry of the call at once; the caller's context ends retrying.
func TestCallErrors(t *testing.T) {
	t.Parallel()
	ok := func(int, string) (bool, *types.BatchResultErrorEntry) { return true, nil }
	t.Run("retryable", func(t *testing.T) {
		t.Parallel()
		api := &scripted{answer: ok, err: func(call int) error {
			if call == 0 {
				return &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}
			}
			return nil
		}}
		if errs := sqsbatch.NewSender(api, "http://q/1/q", fast()).Send(t.Context(), messages(3)); slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
			t.Errorf("outcomes %v, want all sent on the second call", errs)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		t.Parallel()
		denied := &smithy.GenericAPIError{Code: "AccessDenied", Fault: smithy.FaultClient}
		api := &scripted{answer: ok, err: func(int) error { return denied }}
		errs := sqsbatch.NewSender(api, "http://q/1/q", fast()).Send(t.Context(), messages(3))
		for _, err := range errs {
			var e *sqsbatch.Error
			if !errors.As(err, &e) || !errors.Is(err, denied) || e.Transient() || !strings.Contains(err.Error(), "SendMessageBatch on q") {
				t.Errorf("outcome %v, want the call's permanent error", err)
			}
		}
		if len(api.calls) != 1 {
			t.Errorf("%d calls, want 1", len(api.calls))
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		api := &scripted{answer: ok, err: func(int) error {
			cancel()
			return &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}
		}}
		cfg := fast()
		cfg.Backoff = backoff.Policy{Base: time.Hour}
		errs := sqsbatch.NewSender(api, "http://q/1/q", cfg).Send(ctx, messages(1))
		if errs[0] == nil || len(api.calls) != 1 {
			t.Errorf("outcome %v after %d calls, want a failure after one call", errs[0], len(api.calls))
		}
	})
}

// TestChunks: at most 10 entries, and at most MaxBytes, per call, in order.
func TestChunks(t *testing.T) {
	t.Parallel()
	api := &scripted{answer: func(int, string) (bool, *types.BatchResultErrorEntry) { return true, nil }}
	q := sqsbatch.NewSender(api, "http://q/1/q", fast())
	msgs := messages(23)
	big := strings.Repeat("x", sqsbatch.MaxBytes/2)
	msgs[21].Body, msgs[22].Body = big, big+"y" // together over the limit
	q.Send(t.Context(), msgs)
	var sizes []int
	for _, c := range api.calls {
		sizes = append(sizes, len(c))
	}
	if !slices.Equal(sizes, []int{10, 10, 2, 1}) {
		t.Errorf("call sizes %v, want [10 10 2 1]", sizes)
	}
}

// TestEntryContext: a message whose sender stopped waiting is not sent.
func TestEntryContext(t *testing.T) {
	t.Parallel()
	api := &scripted{answer: func(int, string) (bool, *types.BatchResultErrorEntry) { return true, nil }}
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	msgs := messages(2)
	msgs[0].Context = gone
	errs := sqsbatch.NewSender(api, "http://q/1/q", fast()).Send(t.Context(), msgs)
	if !errors.Is(errs[0], context.Canceled) || errs[1] != nil {
		t.Errorf("outcomes %v, want [canceled nil]", errs)
	}
	if !slices.EqualFunc(api.calls, [][]string{{"b01"}}, slices.Equal) {
		t.Errorf("calls %v, want only b01 sent", api.calls)
	}
}

// TestEachEntryKeepsItsOwnError: entries that keep failing for different
// reasons until the attempts run out each report their own reason, not the
// last one seen in the call.
func TestEachEntryKeepsItsOwnError(t *testing.T) {
	api := &scripted{answer: func(_ int, body string) (bool, *types.BatchResultErrorEntry) {
		switch body {
		case "b00":
			return false, &types.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("b00's")}
		case "b01":
			return false, nil // not answered
		}
		return true, nil
	}}
	errs := sqsbatch.NewSender(api, "https://sqs.example/1/q.fifo", fast()).Send(t.Context(), messages(3))
	var e0, e1 *sqsbatch.Error
	if !errors.As(errs[0], &e0) || e0.Code != "InternalError" || e0.Attempts != 4 {
		t.Errorf("entry 0: %v, want its own InternalError after 4 attempts", errs[0])
	}
	if !errors.As(errs[1], &e1) || e1.Code != sqsbatch.CodeNotAnswered {
		t.Errorf("entry 1: %v, want %s", errs[1], sqsbatch.CodeNotAnswered)
	}
	if errs[2] != nil {
		t.Errorf("entry 2: %v, want sent", errs[2])
	}
}

// optionsAPI records the RetryMaxAttempts each call's options set.
type optionsAPI struct {
	mu       sync.Mutex
	attempts []int
}

func (o *optionsAPI) record(opts []func(*sqs.Options)) {
	var so sqs.Options
	for _, f := range opts {
		f(&so)
	}
	o.mu.Lock()
	o.attempts = append(o.attempts, so.RetryMaxAttempts)
	o.mu.Unlock()
}

func (o *optionsAPI) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	o.record(opts)
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m")})
	}
	return out, nil
}

func (o *optionsAPI) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	o.record(opts)
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (o *optionsAPI) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	o.record(opts)
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// TestBatchCallsTurnTheSDKRetriesOff: sqsbatch retries under its own
// policy, so each of its calls asks the SDK for one attempt only; with the
// SDK's default retryer beneath, a send could make 3 × MaxAttempts calls.
func TestBatchCallsTurnTheSDKRetriesOff(t *testing.T) {
	api := &optionsAPI{}
	ctx := t.Context()
	const url = "https://sqs.example/1/q"
	sqsbatch.NewSender(api, url, fast()).Send(ctx, messages(1))
	r := sqsbatch.NewReceipts(api, url, fast())
	r.Delete(ctx, []string{"h"})
	r.ChangeVisibility(ctx, []sqsbatch.Visibility{{Receipt: "h", Timeout: time.Second}})
	if !slices.Equal(api.attempts, []int{1, 1, 1}) {
		t.Errorf("RetryMaxAttempts of the send, delete and visibility calls: %v, want 1 each", api.attempts)
	}
}

// overlapAPI's delete calls wait until two are in flight at once.
type overlapAPI struct {
	optionsAPI
	mu    sync.Mutex
	calls int
	both  chan struct{} // closed by the second call
}

func (o *overlapAPI) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	o.mu.Lock()
	o.calls++
	if o.calls == 2 {
		close(o.both)
	}
	o.mu.Unlock()
	select {
	case <-o.both:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return o.optionsAPI.DeleteMessageBatch(ctx, in, opts...)
}

// TestReceiptChunksOverlap: the chunks of one Delete are in flight
// together (order does not matter for receipts); a sequential loop would
// leave the first call waiting for a second that never comes.
func TestReceiptChunksOverlap(t *testing.T) {
	api := &overlapAPI{both: make(chan struct{})}
	handles := make([]string, 20)
	for i := range handles {
		handles[i] = fmt.Sprint("h", i)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i, err := range sqsbatch.NewReceipts(api, "https://sqs.example/1/q", fast()).Delete(ctx, handles) {
		if err != nil {
			t.Fatalf("handle %d: %v", i, err)
		}
	}
}

func TestStringAttributes(t *testing.T) {
	if got := sqsbatch.StringAttributes(nil); got != nil {
		t.Errorf("no attributes: %v, want nil", got)
	}
	got := sqsbatch.StringAttributes(map[string]string{"a": "1", "b": "two"})
	if len(got) != 2 {
		t.Fatalf("%d attributes, want 2", len(got))
	}
	for k, want := range map[string]string{"a": "1", "b": "two"} {
		if v := got[k]; v.DataType == nil || *v.DataType != "String" || v.StringValue == nil || *v.StringValue != want {
			t.Errorf("%s: %+v, want String %q", k, v, want)
		}
	}
}

// TestReceiveAttemptID: each receive gets an id of its own, within SQS's
// limits for ReceiveRequestAttemptId (1–128 characters).
func TestReceiveAttemptID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := aws.ToString(sqsbatch.ReceiveAttemptID())
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("attempt id %q: want 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("attempt id %q given twice", id)
		}
		seen[id] = true
	}
}
