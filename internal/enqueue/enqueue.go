// Package enqueue is `worker enqueue`: chat events as JSON lines in, each
// validated with event.Decode (the worker's own decoder), the valid ones sent
// with SendMessageBatch, ten per call.
//
// Lines are sent in file order, one batch at a time, so a chat's events reach
// a FIFO queue in the order they were written (MessageGroupId = chat_id,
// MessageDeduplicationId = event_id). Blank lines are skipped.
package enqueue

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/event"
)

// Limits of one SendMessageBatch call.
const (
	MaxBatchEntries = 10
	MaxBatchBytes   = 256 * 1024 // SQS counts the sum of the bodies
	MaxLineBytes    = MaxBatchBytes
	// EntryRetries is how often an entry that SQS failed on its side (not the
	// sender's fault) is sent again before it counts as rejected.
	EntryRetries = 3
)

// API is the SQS call enqueue makes.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ API = (*sqs.Client)(nil)

// Report counts what happened to the input.
type Report struct {
	Sent     int
	Rejected int
}

// Sender sends the lines of one input to one queue.
type Sender struct {
	api      API
	queueURL string
	fifo     bool
	rejects  io.Writer // one line per rejected input line
	backoff  func(attempt int) time.Duration
}

// NewSender returns a Sender to queueURL; rejected lines are described on rejects.
func NewSender(api API, queueURL string, fifo bool, rejects io.Writer) *Sender {
	return &Sender{api: api, queueURL: queueURL, fifo: fifo, rejects: rejects,
		backoff: func(attempt int) time.Duration { return time.Duration(attempt) * 200 * time.Millisecond }}
}

type entry struct {
	line int
	body string
	ev   event.Event
}

// Send reads JSON lines from in until EOF and sends the valid ones. An error
// means sending stopped (SQS unreachable, ctx cancelled); the report still
// counts what was sent before.
func (s *Sender) Send(ctx context.Context, in io.Reader) (Report, error) {
	var rep Report
	r := bufio.NewReaderSize(in, 64*1024)
	var batch []entry
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		sent, err := s.sendBatch(ctx, batch, &rep)
		rep.Sent += sent
		batch, size = batch[:0], 0
		return err
	}
	for lineNo := 1; ; lineNo++ {
		raw, readErr := r.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return rep, fmt.Errorf("read input at line %d: %w", lineNo, readErr)
		}
		line := bytes.TrimRight(raw, "\r\n")
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if e, ok := s.accept(lineNo, line, &rep); ok {
				if len(batch) == MaxBatchEntries || size+len(e.body) > MaxBatchBytes {
					if err := flush(); err != nil {
						return rep, err
					}
				}
				batch = append(batch, e)
				size += len(e.body)
			}
		}
		if readErr != nil { // io.EOF
			return rep, flush()
		}
	}
}

func (s *Sender) accept(lineNo int, line []byte, rep *Report) (entry, bool) {
	if len(line) > MaxLineBytes {
		s.reject(rep, lineNo, fmt.Sprintf("line is %d bytes, larger than SQS's %d-byte message limit", len(line), MaxLineBytes))
		return entry{}, false
	}
	ev, err := event.Decode(line)
	if err != nil {
		var inv *event.Invalid
		if errors.As(err, &inv) {
			s.reject(rep, lineNo, inv.Code+": "+inv.Error())
		} else {
			s.reject(rep, lineNo, err.Error())
		}
		return entry{}, false
	}
	return entry{line: lineNo, body: string(line), ev: ev}, true
}

func (s *Sender) reject(rep *Report, lineNo int, reason string) {
	rep.Rejected++
	fmt.Fprintf(s.rejects, "line %d: %s\n", lineNo, reason)
}

// sendBatch sends one batch, resending entries SQS failed on its side, and
// returns how many SQS accepted.
func (s *Sender) sendBatch(ctx context.Context, batch []entry, rep *Report) (int, error) {
	pending := batch
	sent := 0
	for attempt := 0; len(pending) > 0; attempt++ {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: make([]types.SendMessageBatchRequestEntry, len(pending))}
		byID := make(map[string]entry, len(pending))
		for i, e := range pending {
			id := "l" + strconv.Itoa(e.line)
			byID[id] = e
			in.Entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body)}
			if s.fifo {
				in.Entries[i].MessageGroupId = aws.String(e.ev.ChatID)
				in.Entries[i].MessageDeduplicationId = aws.String(e.ev.EventID)
			}
		}
		out, err := s.api.SendMessageBatch(ctx, in)
		if err != nil {
			return sent, fmt.Errorf("send lines %d-%d to %s: %w", pending[0].line, pending[len(pending)-1].line, s.queueURL, err)
		}
		sent += len(out.Successful)
		var retry []entry
		for _, f := range out.Failed {
			e := byID[aws.ToString(f.Id)]
			reason := fmt.Sprintf("SQS refused the message: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			if !f.SenderFault && attempt < EntryRetries {
				retry = append(retry, e)
				continue
			}
			s.reject(rep, e.line, reason)
		}
		pending = retry
		if len(pending) > 0 {
			select {
			case <-ctx.Done():
				return sent, fmt.Errorf("send lines to %s: %w", s.queueURL, ctx.Err())
			case <-time.After(s.backoff(attempt + 1)):
			}
		}
	}
	return sent, nil
}
