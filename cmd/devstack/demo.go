package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/awsconn"
	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/queues"
)

// demoTimeout bounds the wait for all results.
const demoTimeout = 2 * time.Minute

// sample is what the demo knows about the events file.
type sample struct {
	lines    [][]byte // every non-blank line
	users    int      // valid user messages: one result each
	invalid  [][]byte // lines event.Decode rejects
	byChat   map[string]int
	textByID map[string]string
}

func readSample(path string) (*sample, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sample events: %w", err)
	}
	s := &sample{byChat: map[string]int{}, textByID: map[string]string{}}
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		s.lines = append(s.lines, line)
		ev, err := event.Decode(line)
		if err != nil {
			s.invalid = append(s.invalid, line)
			continue
		}
		s.byChat[ev.ChatID]++
		if ev.Type == event.TypeMessage && ev.Role == event.RoleUser {
			s.users++
			s.textByID[ev.EventID] = ev.Text
		}
	}
	return s, nil
}

func demo(ctx context.Context, o options) error {
	smp, err := readSample(o.events)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "chatprep demo: %d sample events over %d chats (%d user messages, %d invalid lines) from %s\n\n",
		len(smp.lines), len(smp.byChat), smp.users, len(smp.invalid), o.events)

	s, err := startStack(ctx, o)
	if err != nil {
		return err
	}
	defer s.stop(o)

	vars := map[string]string{}
	for _, kv := range s.env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		return err
	}
	awsCfg, err := awsconn.Load(ctx, cfg)
	if err != nil {
		return err
	}
	awsCfg.Credentials = credentials.NewStaticCredentialsProvider(vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"], "")
	api := awsconn.SQS(awsCfg, cfg)
	inURL, err := queues.URL(ctx, api, cfg.InputQueue)
	if err != nil {
		return err
	}
	outURL, err := queues.URL(ctx, api, cfg.ResponseQueue)
	if err != nil {
		return err
	}
	dlqURL, err := queues.URL(ctx, api, cfg.DLQQueue)
	if err != nil {
		return err
	}

	// The worker, as its own process, configured by its environment only.
	worker := exec.Command(o.worker, "run")
	worker.Env = s.env
	logs, err := worker.StdoutPipe()
	if err != nil {
		return err
	}
	worker.Stderr = o.errOut
	proc, err := devstack.StartProcess(worker)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "\nworker started (pid %d): POOL_SIZE=%d MAX_IN_FLIGHT=%d RECEIVERS=%d\n", proc.Pid(), cfg.PoolSize, cfg.MaxInFlight, cfg.Receivers)
	logLines := make(chan string, 1024)
	preprocessed := make(chan string, 1) // the first user message's line, for its trace
	go func() {
		sc := bufio.NewScanner(logs)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"message preprocessed"`) {
				select {
				case preprocessed <- sc.Text():
				default:
				}
			}
			logLines <- sc.Text()
		}
		close(logLines)
	}()
	stopWorker := func() {
		if proc.ExitCode() != -1 {
			return
		}
		code, err := proc.Stop(cfg.ShutdownTimeout + 5*time.Second)
		if err != nil {
			fmt.Fprintln(o.errOut, "devstack:", err)
			return
		}
		fmt.Fprintf(o.out, "worker drained and exited with status %d\n", code)
	}
	defer stopWorker()

	// Enqueue through the worker's own command: invalid lines are refused there.
	fmt.Fprintf(o.out, "\nworker enqueue %s:\n", o.events)
	enq := exec.CommandContext(ctx, o.worker, "enqueue", o.events)
	enq.Env = s.env
	out, _ := enq.CombinedOutput() // exit 1 is expected: the sample has invalid lines
	fmt.Fprint(o.out, indent(string(out)))

	// A producer that does not validate sends the invalid lines anyway: the
	// worker moves them to the dead-letter queue.
	fmt.Fprintf(o.out, "\nsending the %d invalid lines straight to the input queue, as a producer that skips validation would\n", len(smp.invalid))
	for i, line := range smp.invalid {
		in := &sqs.SendMessageInput{QueueUrl: aws.String(inURL), MessageBody: aws.String(string(line))}
		if config.IsFIFO(cfg.InputQueue) {
			in.MessageGroupId = aws.String("unvalidated-producer")
			in.MessageDeduplicationId = aws.String(fmt.Sprintf("raw-%d", i))
		}
		if _, err := api.SendMessage(ctx, in); err != nil {
			return fmt.Errorf("send invalid line: %w", err)
		}
	}

	fmt.Fprintf(o.out, "\nresults on %s, as they arrive:\n\n", cfg.ResponseQueue)
	results, err := collectResults(ctx, o, api, outURL, smp, logLines)
	if err != nil {
		return err
	}
	dead, err := drainDLQ(ctx, api, dlqURL, len(smp.invalid))
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "\ndead-letter queue %s:\n", cfg.DLQQueue)
	for _, d := range dead {
		fmt.Fprintf(o.out, "  %-16s %s\n", d.code, d.reason)
	}

	stopWorker()
	var example string
	for l := range logLines { // the worker has exited: read what it logged last
		if example == "" && strings.Contains(l, `"timings_ms"`) {
			example = l
		}
		if o.verbose {
			fmt.Fprintln(o.out, "  worker│", l)
		}
	}
	metrics := listMetrics(ctx, awsCfg, vars["AWS_ENDPOINT_URL"], cfg.MetricsNamespace)
	summary(o.out, smp, results, dead, metrics, example, cfg)
	if s.stack.Jaeger != nil {
		select {
		case l := <-preprocessed:
			showTrace(ctx, o, s.stack.Jaeger, l)
		default:
			fmt.Fprintln(o.out, "  trace      (no user message was preprocessed)")
		}
	}
	if len(results) < smp.users || len(dead) < len(smp.invalid) {
		return fmt.Errorf("incomplete: %d of %d results, %d of %d dead letters", len(results), smp.users, len(dead), len(smp.invalid))
	}
	return nil
}

// collectResults reads the response queue until every user message has its
// result, printing each readably.
func collectResults(ctx context.Context, o options, api *sqs.Client, url string, smp *sample, logLines <-chan string) ([]event.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	seen := map[string]bool{}
	var results []event.Result
	for len(results) < smp.users {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
		if err != nil {
			if ctx.Err() != nil {
				return results, fmt.Errorf("waited %v for results, got %d of %d", demoTimeout, len(results), smp.users)
			}
			return results, fmt.Errorf("receive results: %w", err)
		}
		for _, m := range out.Messages {
			var r event.Result
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
				return results, fmt.Errorf("result is not JSON: %w", err)
			}
			if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return results, fmt.Errorf("delete result: %w", err)
			}
			if seen[r.EventID] {
				fmt.Fprintf(o.out, "  (duplicate result for %s)\n", r.EventID)
				continue
			}
			seen[r.EventID] = true
			results = append(results, r)
			printResult(o.out, r, smp)
		}
		drainLogs(o, logLines)
	}
	return results, nil
}

func drainLogs(o options, logLines <-chan string) {
	for {
		select {
		case l, ok := <-logLines:
			if !ok {
				return
			}
			if o.verbose {
				fmt.Fprintln(o.out, "  worker│", l)
			}
		default:
			return
		}
	}
}

func printResult(w io.Writer, r event.Result, smp *sample) {
	muted := ""
	if r.Muted {
		muted = "  MUTED"
	}
	fmt.Fprintf(w, "%-20s %-9s route=%-8s history=%-2d relevant=%-2d tokens=%d+%d  preprocessing=%5.1fms total=%5.1fms%s\n",
		r.ChatID, r.EventID, r.Route, len(r.History), len(r.Relevant), r.Tokens.History, r.Tokens.Relevant,
		r.TimingsMS.Preprocessing, r.TimingsMS.Total, muted)
	fmt.Fprintf(w, "    user: %s\n", clip(smp.textByID[r.EventID], 90))
	if len(r.Relevant) > 0 {
		top := r.Relevant[0]
		score := 0.0
		if top.Score != nil {
			score = *top.Score
		}
		fmt.Fprintf(w, "    top passage (%s, score %.2f): %s\n", top.EventID, score, clip(top.Text, 70))
		for _, m := range r.Relevant[1:] {
			if m.With != top.EventID {
				break
			}
			fmt.Fprintf(w, "      with its reply (%s): %s\n", m.EventID, clip(m.Text, 70))
		}
	}
	if len(r.Burst) > 0 {
		fmt.Fprintf(w, "    burst: %s came just before it (in history)\n", strings.Join(r.Burst, ", "))
	}
	if r.SupersededBy != "" {
		fmt.Fprintf(w, "    superseded_by %s: already received, its result answers this one too\n", r.SupersededBy)
	}
	if len(r.References) > 0 {
		var refs []string
		for _, ref := range r.References {
			refs = append(refs, fmt.Sprintf("%s (%s, %s)", ref.Ref, ref.Kind, ref.EventID))
		}
		fmt.Fprintf(w, "    references: %s\n", clip(strings.Join(refs, ", "), 110))
	}
	for _, d := range r.Degraded {
		fmt.Fprintf(w, "    degraded: %s: %s\n", d.Task, d.Error)
	}
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

type deadLetter struct{ code, reason string }

func drainDLQ(ctx context.Context, api *sqs.Client, url string, want int) ([]deadLetter, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var dead []deadLetter
	for len(dead) < want {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 2, MessageAttributeNames: []string{"All"}})
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return dead, nil
			}
			return dead, fmt.Errorf("receive dead letters: %w", err)
		}
		for _, m := range out.Messages {
			dead = append(dead, deadLetter{code: attr(m, "error_code"), reason: attr(m, "error")})
			if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return dead, fmt.Errorf("delete dead letter: %w", err)
			}
		}
	}
	return dead, nil
}

func attr(m types.Message, name string) string {
	if v, ok := m.MessageAttributes[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return "(none)"
}

func listMetrics(ctx context.Context, awsCfg aws.Config, endpoint, namespace string) []string {
	cw := cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableRequestCompression = true
	})
	out, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(namespace)})
	if err != nil {
		return []string{"(ListMetrics failed: " + err.Error() + ")"}
	}
	names := map[string]bool{}
	for _, m := range out.Metrics {
		names[aws.ToString(m.MetricName)] = true
	}
	var list []string
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	return list
}

func summary(w io.Writer, smp *sample, results []event.Result, dead []deadLetter, metrics []string, example string, cfg config.Config) {
	var pre, total []float64
	muted, degraded := 0, 0
	routes := map[string]int{}
	for _, r := range results {
		pre = append(pre, r.TimingsMS.Preprocessing)
		total = append(total, r.TimingsMS.Total)
		routes[r.Route]++
		if r.Muted {
			muted++
		}
		if len(r.Degraded) > 0 {
			degraded++
		}
	}
	fmt.Fprintf(w, "\nsummary\n")
	fmt.Fprintf(w, "  events     %d read, %d valid, %d invalid\n", len(smp.lines), len(smp.lines)-len(smp.invalid), len(smp.invalid))
	fmt.Fprintf(w, "  results    %d of %d user messages (routes: %s; muted %d, degraded %d)\n", len(results), smp.users, fmtRoutes(routes), muted, degraded)
	fmt.Fprintf(w, "  rejected   %d in the dead-letter queue\n", len(dead))
	contextHighlights(w, results)
	fmt.Fprintf(w, "  timing     preprocessing p50 %.1f ms, p95 %.1f ms; total p50 %.1f ms, p95 %.1f ms\n",
		percentile(pre, 50), percentile(pre, 95), percentile(total, 50), percentile(total, 95))
	fmt.Fprintf(w, "  metrics    CloudWatch namespace %s: %s\n", cfg.MetricsNamespace, strings.Join(metrics, ", "))
	if example != "" {
		fmt.Fprintf(w, "  log line   (one per event, the successor of the Lambda's [TIMING] lines)\n    %s\n", example)
	}
}

// contextHighlights points at what the v3 context holds: a burst, a
// passage with its reply, a reference from beyond the history window.
func contextHighlights(w io.Writer, results []event.Result) {
	var burst, passage, far string
	for _, r := range results {
		if burst == "" && len(r.Burst) > 0 {
			burst = fmt.Sprintf("%s carries %v in its burst", r.EventID, r.Burst)
			for _, o := range results {
				if o.SupersededBy == r.EventID {
					burst += fmt.Sprintf("; %s says superseded_by %s", o.EventID, r.EventID)
				}
			}
		}
		for i, m := range r.Relevant {
			if passage == "" && m.With != "" && i > 0 {
				passage = fmt.Sprintf("%s: hit %s with its reply %s", r.EventID, m.With, m.EventID)
			}
		}
		inHistory := map[string]bool{}
		for _, m := range r.History {
			inHistory[m.EventID] = true
		}
		for _, ref := range r.References {
			if far == "" && ref.EventID != r.EventID && !inHistory[ref.EventID] {
				far = fmt.Sprintf("%s: %s from %s, beyond its history window", r.EventID, ref.Ref, ref.EventID)
			}
		}
	}
	for _, l := range [][2]string{{"burst", burst}, {"passage", passage}, {"reference", far}} {
		if l[1] == "" {
			l[1] = "(none in this run)"
		}
		fmt.Fprintf(w, "  %-10s %s\n", l[0], l[1])
	}
}

// showTrace draws the trace of a user message's event, from its log line:
// the worker has stopped, so its last spans were sent at its shutdown.
func showTrace(ctx context.Context, o options, j *devstack.Jaeger, logLine string) {
	var line struct {
		TraceID string `json:"trace_id"`
		EventID string `json:"event_id"`
	}
	if json.Unmarshal([]byte(logLine), &line) != nil || line.TraceID == "" {
		fmt.Fprintln(o.out, "  trace      (no log line with a trace id)")
		return
	}
	fmt.Fprintf(o.out, "\ntrace of %s, from Jaeger's query API (%s/api/traces/%s, until the demo ends;\n"+
		"with make up TRACING=1: bin/devstack trace --jaeger URL TRACE_ID):\n\n", line.EventID, j.QueryURL, line.TraceID)
	if err := drawTrace(ctx, o.out, j.QueryURL, line.TraceID); err != nil {
		fmt.Fprintln(o.errOut, "devstack:", err)
	}
}

func fmtRoutes(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// percentile is the nearest-rank percentile of xs (0 for none).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
