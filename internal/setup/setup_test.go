package setup_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"
	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/queues"
	"github.com/chatprep/chatprep/internal/setup"
)

var endpoint string

func TestMain(m *testing.M) {
	ignore := goleak.IgnoreCurrent() // kumo starts background goroutines at init
	srv := kumo.NewServer()
	endpoint = srv.URL
	code := m.Run()
	srv.Close()
	os.Exit(leakcheck.Check(code, ignore, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop")))
}

func client() *sqs.Client {
	return sqs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("t", "t", "")},
		func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// cfgFor gives a test its own queue names (kumo's state is process-wide).
func cfgFor(t *testing.T, fifo bool) config.Config {
	c := config.Defaults()
	suffix := ""
	if fifo {
		suffix = ".fifo"
	}
	p := fmt.Sprintf("t%d", rand.Uint32())
	c.InputQueue, c.DLQQueue, c.ResponseQueue = p+"-in"+suffix, p+"-dlq"+suffix, p+"-out"+suffix
	c.MaxReceiveCount = 3
	c.VisibilityTimeout = 45 * time.Second
	return c
}

type schemaFunc func(context.Context) error

func (f schemaFunc) EnsureSchema(ctx context.Context) error { return f(ctx) }

func (schemaFunc) Layout() string { return "messages in 64 tenants" }

func attrs(t *testing.T, api *sqs.Client, url string) map[string]string {
	t.Helper()
	out, err := api.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes
}

func TestSetupCreatesQueuesWithRedriveAndFIFO(t *testing.T) {
	t.Parallel()
	for _, fifo := range []bool{true, false} {
		t.Run(fmt.Sprint("fifo=", fifo), func(t *testing.T) {
			t.Parallel()
			api, cfg := client(), cfgFor(t, fifo)
			steps, err := setup.Queues(t.Context(), api, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != 3 {
				t.Fatalf("steps = %+v", steps)
			}
			for _, s := range steps {
				if s.Outcome != "created" {
					t.Errorf("%s: %s, want created", s.Resource, s.Outcome)
				}
			}
			dlq := attrs(t, api, steps[0].URL)
			in := attrs(t, api, steps[1].URL)
			if in["VisibilityTimeout"] != "45" {
				t.Errorf("VisibilityTimeout = %q, want 45", in["VisibilityTimeout"])
			}
			if !strings.Contains(in["RedrivePolicy"], dlq["QueueArn"]) || !strings.Contains(in["RedrivePolicy"], "3") {
				t.Errorf("RedrivePolicy = %q, want the DLQ %s after 3 receives", in["RedrivePolicy"], dlq["QueueArn"])
			}
			for i, s := range steps {
				a := attrs(t, api, s.URL)
				if got := a["FifoQueue"] == "true"; got != fifo {
					t.Errorf("queue %d FifoQueue = %q, want fifo=%v", i, a["FifoQueue"], fifo)
				}
			}
		})
	}
}

// TestSetupIsIdempotent: a second run changes nothing; a drifted attribute is
// set back; two concurrent runs both succeed and agree.
func TestSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	api, cfg := client(), cfgFor(t, true)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := setup.Queues(ctx, api, cfg)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent setup: %v", err)
		}
	}
	steps, err := setup.Queues(ctx, api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Outcome != "unchanged" {
			t.Errorf("second run: %s %s, want unchanged", s.Resource, s.Outcome)
		}
	}
	// Someone changed the visibility timeout by hand: setup puts it back.
	if _, err := api.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(steps[1].URL), Attributes: map[string]string{"VisibilityTimeout": "5"}}); err != nil {
		t.Fatal(err)
	}
	steps, err = setup.Queues(ctx, api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if steps[1].Outcome != "updated (VisibilityTimeout)" {
		t.Errorf("after drift: %s", steps[1].Outcome)
	}
	if got := attrs(t, api, steps[1].URL)["VisibilityTimeout"]; got != "45" {
		t.Errorf("VisibilityTimeout = %s after setup, want 45", got)
	}
}

func TestRunReportsEachResourceAndSchemaErrors(t *testing.T) {
	t.Parallel()
	api, cfg := client(), cfgFor(t, true)
	var out strings.Builder
	called := 0
	err := setup.Run(t.Context(), api, schemaFunc(func(context.Context) error { called++; return nil }), cfg, &out)
	if err != nil || called != 1 {
		t.Fatalf("Run: %v, schema called %d times", err, called)
	}
	for _, want := range []string{cfg.DLQQueue, cfg.InputQueue, cfg.ResponseQueue, "Weaviate collections", "ready (messages in 64 tenants)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	err = setup.Run(t.Context(), api, schemaFunc(func(context.Context) error { return io.ErrUnexpectedEOF }), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Weaviate") {
		t.Errorf("schema failure gave %v", err)
	}
}

func TestQueueURLOfMissingQueue(t *testing.T) {
	t.Parallel()
	_, err := queues.URL(t.Context(), client(), "never-created-queue")
	var nf *queues.NotFoundError
	if err == nil || !strings.Contains(err.Error(), "worker setup") {
		t.Fatalf("err = %v", err)
	}
	if !asNotFound(err, &nf) {
		t.Errorf("err %T is not *queues.NotFoundError", err)
	}
}

func asNotFound(err error, nf **queues.NotFoundError) bool {
	e, ok := err.(*queues.NotFoundError)
	*nf = e
	return ok
}
