package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/handler"
)

// Run consumes until its context is cancelled. In the worker that context
// comes from signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt); here
// the handler cancels it once it has seen three messages. Run then drains:
// it releases what has not started, waits for running handlers and flushes
// the deletes, and returns nil.
func ExampleConsumer_Run() {
	api := client(kumotest.URL())
	out, err := api.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("example-in")})
	if err != nil {
		fmt.Println(err)
		return
	}
	url := aws.ToString(out.QueueUrl)
	for _, body := range []string{"hello", "chat", "world"} {
		if _, err := api.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
			fmt.Println(err)
			return
		}
	}

	// 1s polls keep the example quick: at the stop the consumer lets the
	// poll in flight finish. The default is SQS's longest, 20s.
	c, err := consumer.New(api, consumer.Config{QueueURL: url, WaitTime: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		seen []string
	)
	err = c.Run(ctx, handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m.Body)
		if len(seen) == 3 {
			stop() // SIGTERM
		}
		return nil // finished: the message is deleted
	}))
	fmt.Println("run:", err)
	slices.Sort(seen)
	fmt.Println(seen)
	fmt.Println("deleted:", c.Stats().Deleted)
	// Output:
	// run: <nil>
	// [chat hello world]
	// deleted: 3
}
