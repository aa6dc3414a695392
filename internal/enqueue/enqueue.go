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

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// Limits of one SendMessageBatch call.
const (
	MaxBatchEntries = sqsbatch.MaxEntries
	MaxBatchBytes   = sqsbatch.MaxBytes
	MaxLineBytes    = MaxBatchBytes
)

// API is the SQS call enqueue makes.
type API interface{ sqsbatch.SendAPI }

// Report counts what happened to the input.
type Report struct {
	Sent     int
	Rejected int
}

// Sender sends the lines of one input to one queue.
type Sender struct {
	queue   *sqsbatch.Sender
	fifo    bool
	rejects io.Writer // one line per rejected input line
}

// NewSender returns a Sender to queueURL; rejected lines are described on rejects.
func NewSender(api API, queueURL string, fifo bool, rejects io.Writer) *Sender {
	return &Sender{queue: sqsbatch.NewSender(api, queueURL, sqsbatch.Config{}), fifo: fifo, rejects: rejects}
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

// sendBatch sends one batch through the worker's batch mechanism
// (internal/sqsbatch: entries SQS failed on its side, or did not mention,
// are sent again) and returns how many SQS accepted. An entry SQS refused is
// a rejected line; a call that kept failing stops the sending.
func (s *Sender) sendBatch(ctx context.Context, batch []entry, rep *Report) (int, error) {
	msgs := make([]sqsbatch.Message, len(batch))
	for i, e := range batch {
		msgs[i].Body = e.body
		if s.fifo {
			msgs[i].GroupID, msgs[i].DeduplicationID = e.ev.ChatID, e.ev.EventID
		}
	}
	sent := 0
	var stop error
	for i, err := range s.queue.Send(ctx, msgs) {
		var se *sqsbatch.Error
		switch {
		case err == nil:
			sent++
		case errors.As(err, &se) && se.Code != "":
			s.reject(rep, batch[i].line, fmt.Sprintf("SQS did not take the message: %s: %s", se.Code, se.Message))
		default:
			stop = err
		}
	}
	if stop != nil {
		return sent, fmt.Errorf("send lines %d-%d: %w", batch[0].line, batch[len(batch)-1].line, stop)
	}
	return sent, nil
}
