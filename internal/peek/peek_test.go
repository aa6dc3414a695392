package peek_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

func client() *sqs.Client { return kumotest.Client() }

// queueWith makes a queue holding n messages "m0", "m1", … (one FIFO group
// each on a FIFO queue, so none hides another).
func queueWith(t *testing.T, api *sqs.Client, fifo bool, n int) string {
	t.Helper()
	url := kumotest.Queue(t, api, fifo)
	msgs := make([]sqsbatch.Message, n)
	for i := range msgs {
		msgs[i].Body = fmt.Sprintf("m%d", i)
		if fifo {
			msgs[i].GroupID, msgs[i].DeduplicationID = fmt.Sprintf("g%d", i), fmt.Sprintf("d%d", i)
		}
	}
	for _, err := range sqsbatch.NewSender(api, url, sqsbatch.Config{}).Send(t.Context(), msgs) {
		if err != nil {
			t.Fatal(err)
		}
	}
	return url
}

func bodies(msgs []types.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, aws.ToString(m.Body))
	}
	slices.Sort(out)
	return out
}

// receiveAll receives with a short poll what is receivable right now.
func receiveAll(t *testing.T, api *sqs.Client, url string) []types.Message {
	t.Helper()
	var all []types.Message
	for {
		out, err := api.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 30})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

// TestReadHoldsThenReleaseGivesBack: Read hands over each message once, in
// receives of up to ten, while holding them (nobody else receives them);
// Release makes every one receivable at once, and nothing was consumed.
func TestReadHoldsThenReleaseGivesBack(t *testing.T) {
	t.Parallel()
	for _, fifo := range []bool{false, true} {
		t.Run(fmt.Sprintf("fifo=%v", fifo), func(t *testing.T) {
			t.Parallel()
			api := client()
			url := queueWith(t, api, fifo, 25)
			r := peek.New(api, url, 0)
			var got []types.Message
			calls := 0
			if err := r.Read(t.Context(), 100, time.Second, func(msgs []types.Message) error {
				calls++
				if len(msgs) > 10 {
					t.Errorf("a receive of %d", len(msgs))
				}
				got = append(got, msgs...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			want := bodies(mustMessages(25))
			if !slices.Equal(bodies(got), want) || r.Held() != 25 {
				t.Fatalf("read %v (held %d), want %v", bodies(got), r.Held(), want)
			}
			if others := receiveAll(t, api, url); len(others) != 0 {
				t.Errorf("another consumer received %d held messages", len(others))
			}
			if err := r.Release(t.Context()); err != nil {
				t.Fatal(err)
			}
			if back := receiveAll(t, api, url); !slices.Equal(bodies(back), want) || r.Held() != 0 {
				t.Errorf("after Release another consumer got %v at once, want every message", bodies(back))
			}
		})
	}
}

func mustMessages(n int) []types.Message {
	out := make([]types.Message, n)
	for i := range out {
		out[i].Body = aws.String(fmt.Sprintf("m%d", i))
	}
	return out
}

// TestReadStopsAtLimitAndWaitsForTheFirst: at most limit messages; on an
// empty queue Read waits about firstWait, then returns nothing.
func TestReadStopsAtLimitAndWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	api := client()
	url := queueWith(t, api, false, 15)
	r := peek.New(api, url, 0)
	n := 0
	if err := r.Read(t.Context(), 12, time.Second, func(msgs []types.Message) error { n += len(msgs); return nil }); err != nil || n != 12 {
		t.Errorf("read %d (err %v), want 12", n, err)
	}
	if err := r.Release(t.Context()); err != nil {
		t.Fatal(err)
	}

	empty := queueWith(t, api, false, 0)
	start := time.Now()
	if err := peek.New(api, empty, 0).Read(t.Context(), 10, 2*time.Second, func([]types.Message) error {
		t.Error("a message from an empty queue")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond || took > 10*time.Second {
		t.Errorf("an empty read took %v, want about the 2s first wait", took)
	}
}

// TestDeleteTakesOnlyThoseGiven: Delete removes the messages given;
// Release gives back the rest.
func TestDeleteTakesOnlyThoseGiven(t *testing.T) {
	t.Parallel()
	api := client()
	url := queueWith(t, api, true, 4)
	r := peek.New(api, url, 0)
	var got []types.Message
	if err := r.Read(t.Context(), 4, time.Second, func(msgs []types.Message) error { got = append(got, msgs...); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, err := range r.Delete(t.Context(), got[:2]) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if back := receiveAll(t, api, url); !slices.Equal(bodies(back), bodies(got[2:])) {
		t.Errorf("left %v, want %v", bodies(back), bodies(got[2:]))
	}
}

// started signals each ReceiveMessage call it passes on.
type started struct {
	peek.API
	calls chan struct{}
}

func (s started) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	s.calls <- struct{}{}
	return s.API.ReceiveMessage(ctx, in, opts...)
}

// TestCancelledReceiveKeepsWhatItTook: a receive whose context is
// cancelled during its long poll still finishes it; a message sent
// meanwhile is held (and so can be given back), not lost in a cut call.
func TestCancelledReceiveKeepsWhatItTook(t *testing.T) {
	t.Parallel()
	api := client()
	url := queueWith(t, api, false, 0)
	calls := make(chan struct{}, 1)
	r := peek.New(started{API: api, calls: calls}, url, 0)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var got []types.Message
	go func() {
		var err error
		got, _, err = r.Receive(ctx, 10, 5*time.Second)
		done <- err
	}()
	<-calls // the long poll is on its way
	cancel()
	if _, err := api.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("late")}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != context.Canceled {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if len(got) != 1 || r.Held() != 1 {
		t.Fatalf("the receive kept %d messages (held %d), want the late one", len(got), r.Held())
	}
	if err := r.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if back := receiveAll(t, api, url); len(back) != 1 {
		t.Errorf("%d messages receivable after Release, want 1", len(back))
	}
}
