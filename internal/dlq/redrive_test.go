package dlq_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/dlq"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/peek"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func invalid(body, group string) letter {
	return letter{body: body, group: group, attrs: map[string]string{dlq.AttrErrorCode: "invalid_json", dlq.AttrError: "not JSON"}}
}

func valid(name, group string) letter {
	return letter{body: eventBody(name), group: group, attrs: map[string]string{"traceparent": "00-" + name}}
}

func redrive(t *testing.T, api *sqs.Client, dlqURL, inURL string, fifo bool, opts dlq.RedriveOptions) dlq.RedriveReport {
	t.Helper()
	rep, err := dlq.NewRedriver(peek.New(api, dlqURL, 0), sqsbatch.NewSender(api, inURL, sqsbatch.Config{}), fifo, opts).Run(t.Context())
	if err != nil {
		t.Fatalf("redrive: %v (report %+v)", err, rep)
	}
	return rep
}

// byGroup lists the bodies of each group in the order they came.
func byGroup(msgs []got) map[string][]string {
	out := map[string][]string{}
	for _, m := range msgs {
		out[m.group] = append(out[m.group], m.name)
	}
	return out
}

// TestRedriveFIFO: valid dead letters go back in each chat's order, with
// their group, their attributes but error_code and error, a redrive_run
// and the deduplication id "redrive-<dead-letter id>"; invalid ones stay,
// receivable at once. Chat c is longer than one receive and starts with an
// invalid event, which hides the rest of its group while held: the run
// gives it back and reads on, so all of c's valid messages move.
func TestRedriveFIFO(t *testing.T) {
	t.Parallel()
	api := client()
	dlqURL, inURL := kumotest.Queue(t, api, true), kumotest.Queue(t, api, true)
	letters := []letter{valid("a1", "a"), invalid("a-bad", "a"), valid("a2", "a"), invalid("b-bad", "b"), valid("b1", "b"), invalid("c-bad", "c")}
	var wantC []string
	for i := range 15 {
		letters = append(letters, valid(fmt.Sprintf("c%02d", i), "c"))
		wantC = append(wantC, fmt.Sprintf("c%02d", i))
	}
	put(t, api, dlqURL, true, letters...)

	rep := redrive(t, api, dlqURL, inURL, true, dlq.RedriveOptions{RunID: "run-1"})
	if rep.Redriven != 18 || rep.Skipped != 3 || rep.Invalid != 3 || rep.CameBack != 0 {
		t.Errorf("report %+v, want 18 redriven, 3 skipped as invalid", rep)
	}
	moved := takeAll(t, api, inURL)
	groups := byGroup(moved)
	if !slices.Equal(groups["a"], []string{"a1", "a2"}) || !slices.Equal(groups["b"], []string{"b1"}) || !slices.Equal(groups["c"], wantC) {
		t.Errorf("input queue got %v, want each chat's valid messages in order", groups)
	}
	for _, m := range moved {
		if m.attrs["traceparent"] != "00-"+m.name || m.attrs[dlq.AttrRedriveRun] != "run-1" || m.attrs[handler.AttrFirstSent] == "" || len(m.attrs) != 3 {
			t.Errorf("%s: attributes %v, want traceparent kept, redrive_run and first_sent_timestamp", m.name, m.attrs)
		}
		if !strings.HasPrefix(m.dedup, dlq.DeduplicationPrefix) || len(m.dedup) <= len(dlq.DeduplicationPrefix) {
			t.Errorf("%s: deduplication id %q", m.body, m.dedup)
		}
	}
	left := takeAll(t, api, dlqURL)
	var bodies []string
	for _, m := range left {
		bodies = append(bodies, m.body)
		if m.attrs[dlq.AttrErrorCode] != "invalid_json" {
			t.Errorf("%s left without its error_code: %v", m.body, m.attrs)
		}
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"a-bad", "b-bad", "c-bad"}) {
		t.Errorf("dead-letter queue left with %v, receivable at once; want the three invalid events", bodies)
	}
}

// TestRedriveAllStripsTheReason: with All, invalid events go back too,
// without error_code and error.
func TestRedriveAllStripsTheReason(t *testing.T) {
	t.Parallel()
	api := client()
	dlqURL, inURL := kumotest.Queue(t, api, false), kumotest.Queue(t, api, false)
	put(t, api, dlqURL, false, invalid("bad", ""), valid("good", ""))
	if rep := redrive(t, api, dlqURL, inURL, false, dlq.RedriveOptions{All: true}); rep.Redriven != 2 || rep.Skipped != 0 {
		t.Errorf("report %+v", rep)
	}
	for _, m := range takeAll(t, api, inURL) {
		if _, ok := m.attrs[dlq.AttrErrorCode]; ok || m.attrs[dlq.AttrError] != "" || m.attrs[dlq.AttrRedriveRun] == "" || m.group != "" {
			t.Errorf("%s went back with %v (group %q)", m.body, m.attrs, m.group)
		}
	}
	if n := len(takeAll(t, api, dlqURL)); n != 0 {
		t.Errorf("%d left in the dead-letter queue", n)
	}
}

// TestRedriveDryRunAndMax: a dry run counts and moves nothing; Max moves
// that many, oldest first; a second run moves the rest; a third finds
// nothing to move.
func TestRedriveDryRunAndMax(t *testing.T) {
	t.Parallel()
	api := client()
	dlqURL, inURL := kumotest.Queue(t, api, true), kumotest.Queue(t, api, true)
	put(t, api, dlqURL, true, valid("x1", "x"), valid("x2", "x"), valid("x3", "x"), invalid("bad", "x"), valid("x4", "x"))

	if rep := redrive(t, api, dlqURL, inURL, true, dlq.RedriveOptions{DryRun: true}); rep.Redriven != 4 || rep.Skipped != 1 {
		t.Errorf("dry run report %+v, want 4 and 1", rep)
	}
	if n := len(takeAll(t, api, inURL)); n != 0 {
		t.Errorf("a dry run moved %d", n)
	}
	if rep := redrive(t, api, dlqURL, inURL, true, dlq.RedriveOptions{Max: 2}); rep.Redriven != 2 {
		t.Errorf("--max 2 report %+v", rep)
	}
	if got := byGroup(takeAll(t, api, inURL))["x"]; !slices.Equal(got, []string{"x1", "x2"}) {
		t.Errorf("--max 2 moved %v, want the two oldest", got)
	}
	if rep := redrive(t, api, dlqURL, inURL, true, dlq.RedriveOptions{}); rep.Redriven != 2 || rep.Skipped != 1 {
		t.Errorf("second run report %+v, want 2 and 1", rep)
	}
	if got := byGroup(takeAll(t, api, inURL))["x"]; !slices.Equal(got, []string{"x3", "x4"}) {
		t.Errorf("second run moved %v", got)
	}
	if rep := redrive(t, api, dlqURL, inURL, true, dlq.RedriveOptions{}); rep.Redriven != 0 || rep.Skipped != 1 {
		t.Errorf("third run report %+v, want 0 and 1", rep)
	}
}

// TestRedriveLeavesWhatCameBack: a dead letter carrying this run's id was
// moved by this run and failed again: it is left where it is, even with
// All, so a run never moves one message in circles.
func TestRedriveLeavesWhatCameBack(t *testing.T) {
	t.Parallel()
	api := client()
	dlqURL, inURL := kumotest.Queue(t, api, false), kumotest.Queue(t, api, false)
	back := letter{body: "again", attrs: map[string]string{dlq.AttrRedriveRun: "run-7", dlq.AttrErrorCode: "invalid_json"}}
	older := letter{body: "older run", attrs: map[string]string{dlq.AttrRedriveRun: "run-6"}}
	put(t, api, dlqURL, false, back, older)
	rep := redrive(t, api, dlqURL, inURL, false, dlq.RedriveOptions{All: true, RunID: "run-7"})
	if rep.Redriven != 1 || rep.Skipped != 1 || rep.CameBack != 1 {
		t.Errorf("report %+v, want the older run's moved and this run's left", rep)
	}
	if moved := takeAll(t, api, inURL); len(moved) != 1 || moved[0].body != "older run" || moved[0].attrs[dlq.AttrRedriveRun] != "run-7" {
		t.Errorf("moved %+v", moved)
	}
}

// failingSender refuses every message.
type failingSender struct{}

func (failingSender) Send(_ context.Context, msgs []sqsbatch.Message) []error {
	errs := make([]error, len(msgs))
	for i := range errs {
		errs[i] = &sqsbatch.Error{Op: "SendMessageBatch", Queue: "in", Code: "AccessDenied", Message: "no", SenderFault: true}
	}
	return errs
}

// noDelete fails every DeleteMessageBatch as SQS does a call it refuses.
type noDelete struct{ *sqs.Client }

func (noDelete) DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "not allowed to delete", Fault: smithy.FaultClient}
}

// TestRedriveNeverLosesAMessage: a message the input queue did not take
// stays in the dead-letter queue; one sent but not deleted is in both, and
// the error says so.
func TestRedriveNeverLosesAMessage(t *testing.T) {
	t.Parallel()
	api := client()
	t.Run("send refused", func(t *testing.T) {
		t.Parallel()
		dlqURL := kumotest.Queue(t, api, false)
		put(t, api, dlqURL, false, valid("keep", ""))
		rep, err := dlq.NewRedriver(peek.New(api, dlqURL, 0), failingSender{}, false, dlq.RedriveOptions{}).Run(t.Context())
		if err == nil || rep.Redriven != 0 || !strings.Contains(err.Error(), "stays in the dead-letter queue") {
			t.Errorf("report %+v, err %v", rep, err)
		}
		if left := takeAll(t, api, dlqURL); len(left) != 1 {
			t.Errorf("%d left in the dead-letter queue, want the one, receivable at once", len(left))
		}
	})
	t.Run("delete refused", func(t *testing.T) {
		t.Parallel()
		dlqURL, inURL := kumotest.Queue(t, api, false), kumotest.Queue(t, api, false)
		put(t, api, dlqURL, false, valid("both", ""))
		r := peek.New(noDelete{api}, dlqURL, 0)
		rep, err := dlq.NewRedriver(r, sqsbatch.NewSender(api, inURL, sqsbatch.Config{}), false, dlq.RedriveOptions{}).Run(t.Context())
		if err == nil || rep.Redriven != 0 || !strings.Contains(err.Error(), "in both queues") {
			t.Errorf("report %+v, err %v", rep, err)
		}
		if in, left := takeAll(t, api, inURL), takeAll(t, api, dlqURL); len(in) != 1 || len(left) != 1 {
			t.Errorf("%d in the input queue and %d in the dead-letter queue, want 1 and 1", len(in), len(left))
		}
	})
}

// TestRedriveSkipsInvalidBodiesWithoutErrorCode: an invalid event that the
// redrive policy moved (no error_code: the worker's own move kept failing)
// is still recognised by its body and skipped, unless All. A dead letter
// that carries the first send's time keeps it; others get their own.
func TestRedriveSkipsInvalidBodiesWithoutErrorCode(t *testing.T) {
	t.Parallel()
	api := client()
	dlqURL, inURL := kumotest.Queue(t, api, true), kumotest.Queue(t, api, true)
	first := letter{body: eventBody("again"), group: "a", attrs: map[string]string{handler.AttrFirstSent: "1764000000000"}}
	put(t, api, dlqURL, true, valid("ok", "a"), letter{body: `{"event_id":"no-chat"}`, group: "b"}, letter{body: "{", group: "b"}, first)
	rep := redrive(t, api, dlqURL, inURL, true, dlq.RedriveOptions{})
	if rep.Redriven != 2 || rep.Skipped != 2 || rep.Invalid != 2 {
		t.Errorf("report %+v, want 2 redriven and the 2 invalid bodies skipped", rep)
	}
	for _, m := range takeAll(t, api, inURL) {
		switch m.name {
		case "again":
			if m.attrs[handler.AttrFirstSent] != "1764000000000" {
				t.Errorf("%s: first_sent_timestamp %q, want the original's kept", m.name, m.attrs[handler.AttrFirstSent])
			}
		case "ok":
		default:
			t.Errorf("moved %q", m.body)
		}
	}
	if rep := redrive(t, api, dlqURL, inURL, true, dlq.RedriveOptions{All: true}); rep.Redriven != 2 || rep.Skipped != 0 {
		t.Errorf("with All: report %+v, want both moved", rep)
	}
}
