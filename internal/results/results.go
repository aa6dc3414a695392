// Package results is `worker results`: it prints results from the response
// queue, one JSON object a line, without taking them from their consumer
// unless told to (--delete).
//
// Results are read through package peek: each is held while the command
// runs and then given back, receivable again at once, so the real consumer
// still gets every one; each read counts towards its ApproximateReceiveCount.
// On a FIFO response queue SQS hands out a chat's results only while none
// of that chat is in flight, so one run shows at most the first results of
// each chat that one receive returns; with --delete a run can read on.
package results

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/peek"
)

// Defaults of Options (CONTRACT.md).
const (
	DefaultMax  = 10
	DefaultWait = 5 * time.Second
)

// Options say what Print reads.
type Options struct {
	// Max is the most results printed.
	Max int
	// Wait bounds the wait for the first result; later ones are read while
	// they keep coming (peek.DrainWait).
	Wait time.Duration
	// Delete deletes each result once it is printed, instead of giving it
	// back.
	Delete bool
	// Attributes prints each result with its message attributes:
	// {"body":<the result>,"attributes":{"traceparent":"00-…",…}}.
	Attributes bool
}

// Print prints up to opts.Max results of the queue r reads to out, one
// compact JSON object a line, in the order SQS hands them out (with
// opts.Attributes, each in an object with its message attributes). With
// opts.Delete each receive's results are deleted once written; the others
// are given back at the end. A message that is not a JSON object is not
// printed, named on warn and left on the queue. It returns how many results
// it printed.
func Print(ctx context.Context, r *peek.Reader, opts Options, out, warn io.Writer) (int, error) {
	n := 0
	err := r.Read(ctx, opts.Max, opts.Wait, func(msgs []types.Message) error {
		var printed []types.Message
		var line bytes.Buffer
		for _, m := range msgs {
			line.Reset()
			body := []byte(aws.ToString(m.Body))
			if err := json.Compact(&line, body); err != nil || !bytes.HasPrefix(line.Bytes(), []byte("{")) {
				fmt.Fprintf(warn, "worker results: message %s is not a JSON object; left on the queue\n", aws.ToString(m.MessageId))
				continue
			}
			if opts.Attributes {
				wrapped, err := withAttributes(line.Bytes(), m.MessageAttributes)
				if err != nil {
					return fmt.Errorf("print result %s: %w", aws.ToString(m.MessageId), err)
				}
				line.Reset()
				line.Write(wrapped)
			}
			line.WriteByte('\n')
			if _, err := out.Write(line.Bytes()); err != nil {
				return fmt.Errorf("print result: %w", err)
			}
			n++
			printed = append(printed, m)
		}
		if !opts.Delete {
			return nil
		}
		var errs []error
		for i, err := range r.Delete(ctx, printed) {
			if err != nil {
				errs = append(errs, fmt.Errorf("delete result %s: %w", aws.ToString(printed[i].MessageId), err))
			}
		}
		return errors.Join(errs...)
	})
	if rerr := r.Release(ctx); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return n, err
}

// withAttributes is the line of a result (its body, compact JSON) with its
// message attributes: String and Number values as they are, Binary ones in
// base64 (as JSON encodes bytes), string and binary lists as arrays.
func withAttributes(body []byte, attrs map[string]types.MessageAttributeValue) ([]byte, error) {
	values := make(map[string]any, len(attrs))
	for k, a := range attrs {
		switch {
		case a.StringValue != nil:
			values[k] = *a.StringValue
		case a.BinaryValue != nil:
			values[k] = a.BinaryValue
		case a.StringListValues != nil:
			values[k] = a.StringListValues
		default:
			values[k] = a.BinaryListValues
		}
	}
	var b bytes.Buffer
	b.WriteString(`{"body":`)
	b.Write(body) // as it is: no HTML escaping added
	b.WriteString(`,"attributes":`)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(values); err != nil {
		return nil, err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	b.WriteByte('}')
	return b.Bytes(), nil
}
