// Package setup is `worker setup`: it creates the input queue with its
// dead-letter queue and redrive policy, the response queue, and the Weaviate
// collections, idempotently. Running it again — or from two processes at once,
// or while workers run — changes nothing that is already right and fails
// nothing.
package setup

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/queues"
)

// Queue attribute values setup manages.
const (
	// ReceiveWaitSeconds makes every receive a long poll, also for consumers
	// other than chatprep.
	ReceiveWaitSeconds = 20
	// DLQRetentionSeconds keeps dead letters for 14 days, SQS's maximum, so
	// there is time to look at them.
	DLQRetentionSeconds = 14 * 24 * 3600
)

// Schema creates the Weaviate collections (store.Store does).
type Schema interface {
	EnsureSchema(ctx context.Context) error
	// Layout says, after EnsureSchema, how the messages are laid out
	// (their tenants), for setup's line.
	Layout() string
}

// Step is one resource setup looked at.
type Step struct {
	Resource string // e.g. "queue chat-events.fifo"
	Outcome  string // created, updated (with what), unchanged
	URL      string // queue URL, for queues
}

// Run creates or checks every queue (dead-letter queue first, since the input
// queue's redrive policy names it) and then the collections, writing one line
// per resource to out.
func Run(ctx context.Context, api queues.API, schema Schema, cfg config.Config, out io.Writer) error {
	steps, err := Queues(ctx, api, cfg)
	for _, s := range steps {
		fmt.Fprintf(out, "%-40s %s\n", s.Resource, s.Outcome)
	}
	if err != nil {
		return err
	}
	if err := schema.EnsureSchema(ctx); err != nil {
		return fmt.Errorf("create Weaviate collections at %s: %w", cfg.WeaviateURL, err)
	}
	fmt.Fprintf(out, "%-40s %s\n", "Weaviate collections", "ready ("+schema.Layout()+")")
	return nil
}

// Queues creates or updates the three queues of cfg and says what it did.
func Queues(ctx context.Context, api queues.API, cfg config.Config) ([]Step, error) {
	var steps []Step
	ensure := func(q string, attrs map[string]string) (queues.Outcome, error) {
		o, err := queues.Ensure(ctx, api, queues.Spec{Queue: q, Attributes: attrs})
		if err != nil {
			return o, err
		}
		outcome := string(o.Action)
		if len(o.Changed) > 0 {
			outcome += " (" + strings.Join(o.Changed, ", ") + ")"
		}
		steps = append(steps, Step{Resource: "queue " + config.QueueName(q), Outcome: outcome, URL: o.URL})
		return o, nil
	}

	dlq, err := ensure(cfg.DLQQueue, DLQAttributes(cfg))
	if err != nil {
		return steps, err
	}
	if dlq.ARN == "" {
		return steps, fmt.Errorf("queue %s: SQS returned no QueueArn, cannot set the redrive policy", cfg.DLQQueue)
	}
	if _, err := ensure(cfg.InputQueue, InputAttributes(cfg, dlq.ARN)); err != nil {
		return steps, err
	}
	if _, err := ensure(cfg.ResponseQueue, ResponseAttributes(cfg)); err != nil {
		return steps, err
	}
	return steps, nil
}

// DLQAttributes are the dead-letter queue's attributes.
func DLQAttributes(cfg config.Config) map[string]string {
	return withFIFO(cfg.DLQQueue, map[string]string{
		"MessageRetentionPeriod": strconv.Itoa(DLQRetentionSeconds),
	}, false)
}

// InputAttributes are the input queue's attributes, with its redrive policy
// to the dead-letter queue dlqARN.
func InputAttributes(cfg config.Config, dlqARN string) map[string]string {
	return withFIFO(cfg.InputQueue, map[string]string{
		"VisibilityTimeout":             strconv.Itoa(int(cfg.VisibilityTimeout.Seconds())),
		"ReceiveMessageWaitTimeSeconds": strconv.Itoa(ReceiveWaitSeconds),
		"RedrivePolicy":                 queues.RedrivePolicy(dlqARN, cfg.MaxReceiveCount),
	}, true)
}

// ResponseAttributes are the response queue's attributes.
func ResponseAttributes(cfg config.Config) map[string]string {
	return withFIFO(cfg.ResponseQueue, map[string]string{
		"ReceiveMessageWaitTimeSeconds": strconv.Itoa(ReceiveWaitSeconds),
	}, true)
}

// withFIFO adds the attributes a FIFO queue needs when the name says FIFO:
// explicit deduplication ids (event ids), and — for the queues with traffic —
// high-throughput mode, where deduplication and throughput limits are per
// message group (per chat), so many chats do not share one queue-wide limit.
func withFIFO(queue string, attrs map[string]string, highThroughput bool) map[string]string {
	if !config.IsFIFO(queue) {
		return attrs
	}
	attrs["FifoQueue"] = "true"
	attrs["ContentBasedDeduplication"] = "false"
	if highThroughput {
		attrs["DeduplicationScope"] = "messageGroup"
		attrs["FifoThroughputLimit"] = "perMessageGroupId"
	}
	return attrs
}
