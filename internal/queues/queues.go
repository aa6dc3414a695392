// Package queues resolves chatprep's queue names (or URLs) to queue URLs and
// creates the queues idempotently for `worker setup`.
//
// Real SQS answers CreateQueue for an existing name with different attributes
// with QueueNameExists (kumo does not), so Ensure never relies on CreateQueue
// being idempotent: it looks the queue up first, compares every attribute it
// manages and sets only those that differ. Two processes running it at once
// both end with the same queue and the same attributes.
package queues

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/config"
)

// Resolver is the part of the SQS client URL calls: all a running worker
// needs to find its queues.
type Resolver interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, opts ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// API is the part of the SQS client Ensure calls (`worker setup`, which
// runs with more permissions than a worker).
type API interface {
	Resolver
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, opts ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	SetQueueAttributes(ctx context.Context, in *sqs.SetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error)
}

var _ API = (*sqs.Client)(nil)

// NotFoundError says a configured queue does not exist.
type NotFoundError struct {
	Queue string // the name or URL as configured
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("queue %q does not exist (run `worker setup` to create the queues)", e.Queue)
}

// URL resolves a queue name or URL to the queue's URL, checking that it
// exists. A missing queue gives *NotFoundError.
func URL(ctx context.Context, api Resolver, nameOrURL string) (string, error) {
	if config.IsQueueURL(nameOrURL) {
		_, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(nameOrURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
		})
		if err != nil {
			if isNotFound(err) {
				return "", &NotFoundError{Queue: nameOrURL}
			}
			return "", fmt.Errorf("look up queue %s: %w", nameOrURL, err)
		}
		return nameOrURL, nil
	}
	out, err := api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(nameOrURL)})
	if err != nil {
		if isNotFound(err) {
			return "", &NotFoundError{Queue: nameOrURL}
		}
		return "", fmt.Errorf("look up queue %s: %w", nameOrURL, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// isNotFound tells whether err says the queue does not exist: the modeled
// error (real SQS over the JSON protocol), or the same fault under its
// query-protocol code, as emulators such as kumo send it.
func isNotFound(err error) bool {
	var notExist *types.QueueDoesNotExist
	if errors.As(err, &notExist) {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode() == "AWS.SimpleQueueService.NonExistentQueue" || apiErr.ErrorCode() == "QueueDoesNotExist")
}

// Spec is a queue as `worker setup` wants it.
type Spec struct {
	Queue      string            // name or URL, as configured
	Attributes map[string]string // the attributes this package manages
}

// Action says what Ensure did.
type Action string

// What Ensure can do to a queue.
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
)

// Outcome is what Ensure found and did.
type Outcome struct {
	URL     string
	ARN     string
	Action  Action
	Changed []string // attribute names set on an existing queue
}

// Ensure creates the queue with spec's attributes, or brings an existing
// queue's attributes in line with them. It changes nothing when they match.
func Ensure(ctx context.Context, api API, spec Spec) (Outcome, error) {
	name := config.QueueName(spec.Queue)
	url, err := URL(ctx, api, spec.Queue)
	var notFound *NotFoundError
	switch {
	case errors.As(err, &notFound):
		out, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: spec.Attributes})
		if err == nil {
			url = aws.ToString(out.QueueUrl)
			arn, err := attribute(ctx, api, url, types.QueueAttributeNameQueueArn)
			return Outcome{URL: url, ARN: arn, Action: Created}, err
		}
		var exists *types.QueueNameExists
		if !errors.As(err, &exists) {
			return Outcome{}, fmt.Errorf("create queue %s: %w", name, err)
		}
		// Another process created it a moment ago, with other attributes: compare below.
		if url, err = URL(ctx, api, spec.Queue); err != nil {
			return Outcome{}, err
		}
	case err != nil:
		return Outcome{}, err
	}
	return update(ctx, api, url, spec)
}

func update(ctx context.Context, api API, url string, spec Spec) (Outcome, error) {
	got, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("read attributes of queue %s: %w", url, err)
	}
	have := got.Attributes
	if want, ok := spec.Attributes[string(types.QueueAttributeNameFifoQueue)]; ok && !sameValue("FifoQueue", have["FifoQueue"], want) {
		return Outcome{}, fmt.Errorf("queue %s exists with FifoQueue=%q, want %q: a queue's type cannot change; delete it or pick another name", url, have["FifoQueue"], want)
	}
	diff := map[string]string{}
	for k, want := range spec.Attributes {
		if k == string(types.QueueAttributeNameFifoQueue) {
			continue // immutable, checked above
		}
		if _, reported := have[k]; !reported && unreportedMeansUnsupported[k] {
			continue
		}
		if !sameValue(k, have[k], want) {
			diff[k] = want
		}
	}
	out := Outcome{URL: url, ARN: have[string(types.QueueAttributeNameQueueArn)], Action: Unchanged}
	if len(diff) == 0 {
		return out, nil
	}
	if _, err := api.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: diff}); err != nil {
		return Outcome{}, fmt.Errorf("update attributes %v of queue %s: %w", slices.Sorted(maps.Keys(diff)), url, err)
	}
	out.Action, out.Changed = Updated, slices.Sorted(maps.Keys(diff))
	return out, nil
}

// unreportedMeansUnsupported lists attributes that SQS always reports on a
// queue where they apply; an endpoint that leaves them out (kumo) does not
// support them, and setting them again on every run would change nothing.
var unreportedMeansUnsupported = map[string]bool{
	string(types.QueueAttributeNameDeduplicationScope):  true,
	string(types.QueueAttributeNameFifoThroughputLimit): true,
}

// sameValue compares attribute values by meaning: RedrivePolicy as JSON
// (SQS may answer maxReceiveCount as a number or a string), booleans
// case-insensitively.
func sameValue(name, have, want string) bool {
	if have == want {
		return true
	}
	switch name {
	case string(types.QueueAttributeNameRedrivePolicy):
		h, errH := parseRedrive(have)
		w, errW := parseRedrive(want)
		return errH == nil && errW == nil && h == w
	case string(types.QueueAttributeNameFifoQueue), string(types.QueueAttributeNameContentBasedDeduplication):
		hb, errH := strconv.ParseBool(have)
		wb, errW := strconv.ParseBool(want)
		return errH == nil && errW == nil && hb == wb
	}
	return false
}

// Redrive is a queue's RedrivePolicy.
type Redrive struct {
	DeadLetterTargetArn string
	MaxReceiveCount     int
}

func parseRedrive(s string) (Redrive, error) {
	var raw struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return Redrive{}, err
	}
	n, err := strconv.Atoi(string(trimQuotes(raw.MaxReceiveCount)))
	if err != nil {
		return Redrive{}, fmt.Errorf("maxReceiveCount %s: %w", raw.MaxReceiveCount, err)
	}
	return Redrive{DeadLetterTargetArn: raw.DeadLetterTargetArn, MaxReceiveCount: n}, nil
}

func trimQuotes(b []byte) []byte {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		return b[1 : len(b)-1]
	}
	return b
}

// RedrivePolicy renders the RedrivePolicy attribute value.
func RedrivePolicy(dlqARN string, maxReceiveCount int) string {
	b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlqARN, "maxReceiveCount": maxReceiveCount})
	return string(b)
}

// Attribute reads one attribute of a queue.
func attribute(ctx context.Context, api API, url string, name types.QueueAttributeName) (string, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{name}})
	if err != nil {
		return "", fmt.Errorf("read %s of queue %s: %w", name, url, err)
	}
	return out.Attributes[string(name)], nil
}

// Count is what SQS says a queue holds, approximately (SQS counts are).
type Count struct {
	Visible  int // ApproximateNumberOfMessages: receivable now
	InFlight int // ApproximateNumberOfMessagesNotVisible: received and not yet deleted or given back
}

// Total is every message the queue holds.
func (c Count) Total() int { return c.Visible + c.InFlight }

// CountMessages asks SQS what the queue at url holds.
func CountMessages(ctx context.Context, api Resolver, url string) (Count, error) {
	kinds := []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: kinds})
	if err != nil {
		return Count{}, fmt.Errorf("count the messages of %s: %w", config.QueueName(url), err)
	}
	var n [2]int
	for i, k := range kinds {
		if n[i], err = strconv.Atoi(out.Attributes[string(k)]); err != nil {
			return Count{}, fmt.Errorf("count the messages of %s: attribute %s is %q", config.QueueName(url), k, out.Attributes[string(k)])
		}
	}
	return Count{Visible: n[0], InFlight: n[1]}, nil
}
