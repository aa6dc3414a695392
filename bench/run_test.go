package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/setup"
	"github.com/chatprep/chatprep/internal/store"
)

// workerRun is one worker process fed a burst of events.
type workerRun struct {
	name   string            // queue names and the report's label
	bin    string            // worker binary
	args   []string          // its arguments
	extra  map[string]string // variables on top of the phase's
	events []workload.Event
	keep   bool // keep every result (runResult.results)
	// observe, when set, is called with Weaviate's pid as the events are
	// sent; what it returns, once every event is finished.
	observe func(weaviatePid int) (done func())
}

// runResult is what one worker run measured.
type runResult struct {
	n          int
	elapsed    time.Duration              // first send → last result on the response queue
	e2e        []time.Duration            // per event: sent → its result on the response queue
	inWorker   []time.Duration            // per event: received by the worker → result ready (timings_ms.total)
	tasks      map[string][]time.Duration // per task of timings_ms: each event's time
	workerCPU  time.Duration              // the child's user+system time, start to exit
	maxRSS     int64                      // bytes
	sqs        map[string]int64
	putMetrics int64
	store      *store.Stats // nil with the in-memory store
	vars       workerVars
	weaviate   time.Duration // Weaviate's CPU during the load
	harness    time.Duration // this process's CPU during the load (kumo, its proxy, the harness)
	busy, all  time.Duration // all CPUs: busy and total time during the load
	loadBefore string
	degraded   int
	history    float64 // mean history messages per result
	relevant   float64 // mean relevant messages per result
	logLines   int64
	enqueue    time.Duration
	results    map[string]*event.Result // by event id, with workerRun.keep
}

func (r runResult) perEvent(d time.Duration) time.Duration { return d / time.Duration(max(1, r.n)) }

func (r runResult) eventsPerSec() float64 { return float64(r.n) / r.elapsed.Seconds() }

// run starts the worker, enqueues every event at once, waits for every
// result, stops the worker and reads what it cost.
func (p *phase) run(ctx context.Context, wr workerRun) (runResult, error) {
	res := runResult{n: len(wr.events)}
	q, err := p.queues(ctx, wr.name, wr.extra)
	if err != nil {
		return res, err
	}
	vars, api, inURL, outURL := q.vars, q.api, q.in, q.out

	weaviatePid := 0
	if p.stack.Weaviate != nil {
		weaviatePid = p.stack.Weaviate.Pid()
	}
	proxyBefore, harnessBefore := p.e.aws.Calls(), p.e.harness.snapshot()
	c, err := startChild(ctx, wr.name, wr.bin, wr.args, vars)
	if err != nil {
		return res, err
	}
	defer func() {
		if c.proc.ExitCode() == -1 {
			c.proc.Kill()
		}
	}()

	done := func() {}
	if wr.observe != nil {
		done = wr.observe(weaviatePid)
	}
	cpu0 := sampleCPU(weaviatePid)
	res.loadBefore = cpu0.loadavg
	sent, err := enqueue(ctx, api, inURL, wr.events)
	if err != nil {
		done()
		return res, err
	}
	res.enqueue = time.Since(cpu0.at)
	err = c.waitFinished(ctx, int64(len(wr.events)))
	cpu1 := sampleCPU(weaviatePid)
	done()
	if err != nil {
		return res, err
	}
	res.weaviate, res.harness = cpu1.pid-cpu0.pid, cpu1.self-cpu0.self
	res.busy, res.all = cpu1.busy-cpu0.busy, cpu1.total-cpu0.total
	if res.vars, err = c.vars(ctx); err != nil {
		return res, err
	}
	res.store = res.vars.Store
	res.workerCPU, res.maxRSS, err = c.stop()
	if err != nil {
		return res, err
	}
	res.logLines = c.lines.Load()
	calls := diff(diff(p.e.aws.Calls(), proxyBefore), diff(p.e.harness.snapshot(), harnessBefore))
	res.putMetrics = calls["CloudWatch.PutMetricData"]
	delete(calls, "CloudWatch.PutMetricData")
	res.sqs = calls

	results, err := collect(ctx, api, outURL, len(wr.events), wr.keep)
	if err != nil {
		return res, err
	}
	if wr.keep {
		res.results = make(map[string]*event.Result, len(results))
		for id, a := range results {
			res.results[id] = a.result
		}
	}
	var last time.Time
	var hist, rel int
	for _, ev := range wr.events {
		r, ok := results[ev.EventID]
		if !ok {
			return res, fmt.Errorf("%w: no result for %s", errIncomplete, ev.EventID)
		}
		res.e2e = append(res.e2e, max(r.at.Sub(sent[ev.EventID]), 0))
		res.inWorker = append(res.inWorker, time.Duration(r.totalMS*float64(time.Millisecond)))
		for task, v := range r.timings {
			if res.tasks == nil {
				res.tasks = map[string][]time.Duration{}
			}
			res.tasks[task] = append(res.tasks[task], time.Duration(v*float64(time.Millisecond)))
		}
		if r.at.After(last) {
			last = r.at
		}
		hist += r.history
		rel += r.relevant
		if r.degraded > 0 {
			res.degraded++
		}
	}
	first := slices.MinFunc(wr.events, func(a, b workload.Event) int { return sent[a.EventID].Compare(sent[b.EventID]) })
	res.elapsed = last.Sub(sent[first.EventID])
	res.history = float64(hist) / float64(len(wr.events))
	res.relevant = float64(rel) / float64(len(wr.events))
	return res, nil
}

// runQueues are a worker run's queues, made for it, and its environment.
type runQueues struct {
	vars    map[string]string
	api     *sqs.Client
	in, out string // queue URLs
}

// queues makes the queues of the run named name (setup.Queues) and returns
// them with the worker's environment (the phase's, then extra).
func (p *phase) queues(ctx context.Context, name string, extra map[string]string) (runQueues, error) {
	q := runQueues{vars: p.vars(name, extra)}
	api, cfg, err := p.e.sqsClient(ctx, q.vars)
	if err != nil {
		return q, err
	}
	steps, err := setup.Queues(ctx, api, cfg)
	if err != nil {
		return q, err
	}
	q.api, q.in, q.out = api, steps[1].URL, steps[2].URL
	return q, nil
}

// waitFinished polls the worker's counters until n messages are finished,
// five times a second: each poll costs the worker a little CPU, and the
// run's time is taken from the results' arrival, not from the poll.
func (c *child) waitFinished(ctx context.Context, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var last workerVars
	for {
		v, err := c.vars(ctx)
		if err == nil {
			last = v
			if v.Consumer.Finished >= n {
				return nil
			}
		}
		select {
		case <-c.proc.Done():
			return fmt.Errorf("worker exited during the run (status %d):\n%s", c.proc.ExitCode(), c.stderr)
		case <-ctx.Done():
			return fmt.Errorf("%w: %d of %d finished (%+v): %v\n%s", errIncomplete, last.Consumer.Finished, n, last.Consumer, ctx.Err(), c.stderr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// enqueueSenders send in parallel, each its own chats in order, so FIFO
// order per chat holds.
const enqueueSenders = 8

// enqueue sends every event with SendMessageBatch (10 a call), chats split
// over enqueueSenders goroutines, and returns when each batch was sent.
func enqueue(ctx context.Context, api *sqs.Client, url string, events []workload.Event) (map[string]time.Time, error) {
	chatOf := map[string]int{}
	parts := make([][]workload.Event, enqueueSenders)
	for _, ev := range events {
		i, ok := chatOf[ev.ChatID]
		if !ok {
			i = len(chatOf) % enqueueSenders
			chatOf[ev.ChatID] = i
		}
		parts[i] = append(parts[i], ev)
	}
	var mu sync.Mutex
	sent := make(map[string]time.Time, len(events))
	errs := make(chan error, enqueueSenders)
	var wg sync.WaitGroup
	for _, part := range parts {
		wg.Go(func() {
			for len(part) > 0 {
				batch := part[:min(10, len(part))]
				part = part[len(batch):]
				in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
				for i, ev := range batch {
					in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{
						Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(ev.Body),
						MessageGroupId: aws.String(ev.ChatID), MessageDeduplicationId: aws.String(ev.EventID),
					})
				}
				at := time.Now()
				out, err := api.SendMessageBatch(ctx, in)
				if err == nil && len(out.Failed) > 0 {
					err = fmt.Errorf("send events: %s: %s", aws.ToString(out.Failed[0].Code), aws.ToString(out.Failed[0].Message))
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, ev := range batch {
					sent[ev.EventID] = at
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	return sent, <-errs
}

// arrival is one result as read from the response queue.
type arrival struct {
	at                          time.Time // its SentTimestamp: when the worker's send was accepted
	totalMS                     float64
	timings                     map[string]float64 // the result's timings_ms, by task
	history, relevant, degraded int
	result                      *event.Result // with keep
}

// collect reads every result from the response queue (after the run, so the
// reading costs the run nothing; SentTimestamp says when each arrived).
func collect(ctx context.Context, api *sqs.Client, url string, n int, keep bool) (map[string]arrival, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	got := make(map[string]arrival, n)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			empty := 0
			for {
				mu.Lock()
				done := len(got) >= n
				mu.Unlock()
				if done || empty >= 3 {
					return
				}
				out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
					MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSentTimestamp},
				})
				if err != nil {
					errs <- err
					return
				}
				if len(out.Messages) == 0 {
					empty++
					continue
				}
				empty = 0
				del := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url)}
				for i, m := range out.Messages {
					var r event.Result
					var timings struct {
						TimingsMS map[string]float64 `json:"timings_ms"`
					}
					body := []byte(aws.ToString(m.Body))
					if err := errors.Join(json.Unmarshal(body, &r), json.Unmarshal(body, &timings)); err != nil {
						errs <- fmt.Errorf("result is not JSON: %w", err)
						return
					}
					ms, _ := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
					a := arrival{at: time.UnixMilli(ms), totalMS: r.TimingsMS.Total, timings: timings.TimingsMS,
						history: len(r.History), relevant: len(r.Relevant), degraded: len(r.Degraded)}
					if keep {
						a.result = &r
					}
					mu.Lock()
					if prev, dup := got[r.EventID]; !dup || a.at.Before(prev.at) {
						got[r.EventID] = a
					}
					mu.Unlock()
					del.Entries = append(del.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
				}
				if _, err := api.DeleteMessageBatch(ctx, del); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return got, err
	}
	if len(got) < n {
		return got, fmt.Errorf("%w: %d of %d results on the response queue", errIncomplete, len(got), n)
	}
	return got, nil
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
