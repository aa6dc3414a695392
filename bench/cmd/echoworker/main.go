// Command echoworker is the floor of a queue hop, for the benchmark's
// latency row: an SQS consumer that does no work. It long-polls the input
// queue (two receivers, up to ten messages each, as the worker's defaults
// do), and for each message at once, on its own goroutine, sends its body
// unchanged to the response queue (the chat event's JSON, which holds the
// event_id and chat_id a result holds; on FIFO the chat as group and the
// event id as deduplication id), then deletes it. No batching, no Weaviate.
// The end-to-end latency of the worker minus this one's is what the worker
// adds to a queue hop.
//
// It reads the AWS variables as the worker does (AWS_ENDPOINT_URL,
// SQS_VERIFY_CHECKSUMS, …) through the worker's own SDK setup
// (internal/awsconn), takes the queues' URLs as flags, serves /readyz on
// HEALTH_ADDR once a receive succeeded, and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
)

func main() {
	in := flag.String("in", "", "the input queue's URL")
	out := flag.String("out", "", "the response queue's URL")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "echoworker:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" || out == "" {
		return errors.New("-in and -out are required")
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	awsCfg, err := awsconn.Load(ctx, cfg)
	if err != nil {
		return err
	}
	e := &echo{api: awsconn.SQS(awsCfg, cfg), in: in, out: out, fifo: strings.HasSuffix(out, ".fifo")}
	l, err := net.Listen("tcp", cfg.HealthAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ready, echoed %d\n", e.echoed.Load())
	})}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	defer srv.Close()

	var receivers sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		receivers.Go(func() {
			if err := e.receive(ctx); err != nil {
				errs <- err
				stop()
			}
		})
	}
	receivers.Wait()
	e.handlers.Wait()
	close(errs)
	return <-errs
}

type echo struct {
	api      *sqs.Client
	in, out  string
	fifo     bool
	ready    atomic.Bool
	echoed   atomic.Int64
	handlers sync.WaitGroup
}

// receive long-polls until ctx ends; each message is echoed on its own
// goroutine, on a context that outlives ctx (a message received is
// finished).
func (e *echo) receive(ctx context.Context) error {
	for ctx.Err() == nil {
		got, err := e.api.ReceiveMessage(context.WithoutCancel(ctx), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.in), MaxNumberOfMessages: 10, WaitTimeSeconds: 2,
		})
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		e.ready.Store(true)
		for _, m := range got.Messages {
			e.handlers.Go(func() {
				if err := e.handle(context.WithoutCancel(ctx), aws.ToString(m.Body), m.ReceiptHandle); err != nil {
					fmt.Fprintln(os.Stderr, "echoworker:", err)
				}
			})
		}
	}
	return nil
}

func (e *echo) handle(ctx context.Context, body string, receipt *string) error {
	var ev struct {
		EventID string `json:"event_id"`
		ChatID  string `json:"chat_id"`
	}
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return fmt.Errorf("not a chat event: %w", err)
	}
	send := &sqs.SendMessageInput{QueueUrl: aws.String(e.out), MessageBody: aws.String(body)}
	if e.fifo {
		send.MessageGroupId, send.MessageDeduplicationId = aws.String(ev.ChatID), aws.String(ev.EventID)
	}
	if _, err := e.api.SendMessage(ctx, send); err != nil {
		return fmt.Errorf("send %s: %w", ev.EventID, err)
	}
	if _, err := e.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.in), ReceiptHandle: receipt}); err != nil {
		return fmt.Errorf("delete %s: %w", ev.EventID, err)
	}
	e.echoed.Add(1)
	return nil
}
