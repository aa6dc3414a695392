package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/stacktest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// hostileWeaviate is Weaviate's REST endpoint behind a proxy that, when
// told to, fails calls the way a server that quotes its input would: it
// puts the request (and in it, message text) into its error answers,
// quoted and raw.
type hostileWeaviate struct {
	proxy *httputil.ReverseProxy
	srv   *http.Server
	url   string
	// Modes, each on while set: the batch write fails (500, an outage);
	// every object of a batch is refused (a per-object error, as for an
	// invalid property); GraphQL searches fail (an error in a 200 answer).
	batchDown, objectsRefused, searchFails atomic.Bool
	// Calls answered with a fault, by mode.
	downs, refusals, searchErrs atomic.Int64
}

func startHostileWeaviate(t *testing.T, target string) *hostileWeaviate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileWeaviate{proxy: httputil.NewSingleHostReverseProxy(u), url: "http://" + ln.Addr().String()}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go h.srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *hostileWeaviate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
	}
	// What a server quoting its input says: the value in quotes, then the
	// request as it came.
	quoting := func(what string) string {
		return fmt.Sprintf("%s %q in %s", what, firstText(body), body)
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/batch/objects" && h.batchDown.Load():
		h.downs.Add(1)
		reply(http.StatusInternalServerError, map[string]any{"error": []map[string]string{{"message": quoting("could not write text")}}})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/batch/objects" && h.objectsRefused.Load():
		h.refusals.Add(1)
		var in struct {
			Objects []struct {
				ID    string `json:"id"`
				Class string `json:"class"`
			} `json:"objects"`
		}
		_ = json.Unmarshal(body, &in)
		out := make([]map[string]any, len(in.Objects))
		for i, o := range in.Objects {
			out[i] = map[string]any{"id": o.ID, "class": o.Class, "result": map[string]any{
				"errors": map[string]any{"error": []map[string]string{{"message": quoting("invalid text property")}}}}}
		}
		reply(http.StatusOK, out)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/graphql" && h.searchFails.Load():
		h.searchErrs.Add(1)
		reply(http.StatusOK, map[string]any{"data": nil, "errors": []map[string]string{{"message": quoting("Syntax Error: unexpected query")}}})
	default:
		h.proxy.ServeHTTP(w, r)
	}
}

// firstText is the first "text" (or, in a GraphQL query, "query") value of
// a request body, as a server would quote the value it complains about.
func firstText(body []byte) string {
	for _, key := range []string{`"text":"`, `query:\"`, `"query":"`} {
		if i := bytes.Index(body, []byte(key)); i >= 0 {
			rest := body[i+len(key):]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				return string(rest[:j])
			}
		}
	}
	return string(body)
}

// spanSink is an OTLP/HTTP receiver that keeps every export as it came.
type spanSink struct {
	srv     *http.Server
	url     string
	mu      sync.Mutex
	exports [][]byte
}

func startSpanSink(t *testing.T) *spanSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &spanSink{url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.exports = append(s.exports, b)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}") //nolint:errcheck
	})}
	go s.srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *spanSink) all() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Join(s.exports, []byte("\n"))
}

// TestNoPersonalDataOnFailurePaths sends texts carrying a marker through
// every way an event can fail: invalid events of each rule (the marker in
// the offending value, past what a reason may quote), Weaviate refusing
// writes and failing them as an outage, searches failing, SQS failing the
// result's publish; and a server that quotes its input in its errors. The
// marker must appear in no log line, no exported span, no dead letter's
// reason and nothing of a result but the texts it gives as context.
func TestNoPersonalDataOnFailurePaths(t *testing.T) {
	parallel(t)
	env := stacktest.New(t)
	api := unfaultedSQS(env)
	endpoint := awsEndpoint(t, env) // the worker's: its faults reach no other test
	marker := "zqmark" + randomHex(8)
	hostile := startHostileWeaviate(t, env.Stack.Weaviate.URL)
	spans := startSpanSink(t)
	var faulted atomic.Int64

	fl := newFleet(t, workerBin, []string{"run"}, append(env.Environ(), "AWS_ENDPOINT_URL="+endpoint.URL(),
		"LOG_LEVEL=info", "VISIBILITY_TIMEOUT=5s", "SHUTDOWN_TIMEOUT="+shutdownTimeout().String(), "METRICS_FLUSH_INTERVAL=1s",
		"WEAVIATE_URL="+hostile.url, "WEAVIATE_GRPC_ADDR=off", "TASK_TIMEOUT=2s",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+spans.url, "OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "OTEL_BSP_SCHEDULE_DELAY=500"))
	fl.start()

	chat := env.ChatID("private")
	users := 0
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	var sentIDs []string
	send := func(n int) {
		t.Helper()
		msgs := make([]sqsbatch.Message, n)
		for i := range msgs {
			users++
			id := fmt.Sprintf("e-%03d", users)
			sentIDs = append(sentIDs, id)
			b, _ := json.Marshal(map[string]string{"event_id": id, "chat_id": chat,
				"text":    fmt.Sprintf("please call %s about keg order %d tomorrow", marker, users),
				"sent_at": at.Add(time.Duration(users) * time.Minute).Format(time.RFC3339)})
			msgs[i] = sqsbatch.Message{Body: string(b), GroupID: chat, DeduplicationID: id}
		}
		for _, err := range sqsbatch.NewSender(api, env.InputURL, sqsbatch.Config{}).Send(t.Context(), msgs) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	results := map[string]event.Result{}
	var resultBodies []string
	waitResults := func(what string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for len(results) < users {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d results", what, len(results), users)
			}
			out, err := api.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(env.ResponseURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				var r event.Result
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
					t.Fatal(err)
				}
				results[r.EventID] = r
				resultBodies = append(resultBodies, aws.ToString(m.Body))
				if _, err := api.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(env.ResponseURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	during := func(flag *atomic.Bool, n int, what string) {
		t.Helper()
		flag.Store(true)
		send(n)
		deadline := time.Now().Add(30 * time.Second)
		for !faultSeen(flag, hostile) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no call met the fault", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second) // the fault's length: a few calls meet it
		flag.Store(false)
		waitResults(what)
	}

	// History to search, then each Weaviate fault in turn.
	send(3)
	waitResults("history")
	during(&hostile.searchFails, 3, "searches failing")
	during(&hostile.objectsRefused, 2, "objects refused")
	during(&hostile.batchDown, 2, "batch writes down")

	// SQS failing the publish (and, meanwhile, every other send).
	endpoint.SetFault(func(api string) devstack.Fault {
		if api == "SQS.SendMessageBatch" {
			faulted.Add(1)
			return devstack.Fault{Status: 500, Code: "InternalError"}
		}
		return devstack.Fault{}
	})
	send(2)
	deadline := time.Now().Add(30 * time.Second)
	for faulted.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	endpoint.SetFault(nil)
	waitResults("publish failing")

	// Invalid events, each rule: the marker in the offending value, past
	// what a reason may quote.
	long := strings.Repeat("x", event.MaxQuoted) + marker
	poison := []string{
		fmt.Sprintf(`{"event_id":"p1","chat_id":%q,"type":%q}`, chat, long),
		fmt.Sprintf(`{"event_id":"p2","chat_id":%q,"role":%q,"text":"hi","sent_at":"2026-11-28T09:00:00Z"}`, chat, long),
		fmt.Sprintf(`{"event_id":"p3","chat_id":%q,"text":%q,"sent_at":%q}`, chat, marker, long),
		fmt.Sprintf(`{"event_id":"p4","chat_id":%q,"type":"mute","until":%q}`, chat, long),
		fmt.Sprintf(`{"event_id":"p5","chat_id":%q,"type":"unmute","sent_at":%q}`, chat, long),
		fmt.Sprintf(`{"event_id":%q,"chat_id":%q,"text":"hi","sent_at":"2026-11-28T09:00:00Z"}`, long+" x", chat),
		fmt.Sprintf(`{"event_id":"p7","chat_id":%q,"text":"hi","sent_at":"2026-11-28T09:00:00Z"}`, chat+" "+long),
		fmt.Sprintf(`{"event_id":"p8","chat_id":%q,"text":%q,"sent_at":"2026-11-28T09:00:00Z"}`, chat, marker+strings.Repeat(" y", event.MaxTextBytes)),
		fmt.Sprintf(`{"event_id":"p9","chat_id":%q,"text":%q}`, chat, marker),
		fmt.Sprintf(`{"event_id":"p10","chat_id":%q,"text":%q,"sent_at":"2026-11-28T09:00:00Z"`, chat, marker),
		fmt.Sprintf(`{"event_id":55512345678901234,"chat_id":%q,"text":%q}`, chat, marker),
		fmt.Sprintf("{\"event_id\":\"p12\",\"chat_id\":%q,\"text\":\"%s \xff\"}", chat, marker),
	}
	msgs := make([]sqsbatch.Message, len(poison))
	for i, b := range poison {
		msgs[i] = sqsbatch.Message{Body: b, GroupID: fmt.Sprintf("poison-%d", i), DeduplicationID: fmt.Sprintf("poison-%d", i)}
	}
	for i, err := range sqsbatch.NewSender(api, env.InputURL, sqsbatch.Config{}).Send(t.Context(), msgs) {
		if err != nil {
			t.Fatalf("send poison %d: %v", i, err)
		}
	}
	dead, err := drainUntil(t.Context(), api, env.DLQURL, len(poison), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.stopAll(stopGrace()); err != nil {
		t.Errorf("stopping the worker: %v", err)
	}

	// The paths were taken.
	degraded := 0
	for _, r := range results {
		if len(r.Degraded) > 0 {
			degraded++
		}
	}
	if degraded == 0 || hostile.refusals.Load() == 0 || hostile.downs.Load() == 0 || faulted.Load() == 0 || len(dead) != len(poison) {
		t.Errorf("paths not all taken: %d degraded results, %d writes refused, %d writes down, %d publishes failed, %d of %d dead letters",
			degraded, hostile.refusals.Load(), hostile.downs.Load(), faulted.Load(), len(dead), len(poison))
	}

	// Nowhere the marker.
	var leaks []string
	look := func(where string, b []byte) {
		if i := bytes.Index(b, []byte(marker)); i >= 0 {
			leaks = append(leaks, fmt.Sprintf("%s: …%s…", where, b[max(0, i-160):min(len(b), i+40)]))
		}
	}
	look("logs", fl.logs())
	look("spans", spans.all())
	for _, body := range resultBodies {
		var r event.Result
		_ = json.Unmarshal([]byte(body), &r)
		for _, list := range [][]event.ContextMessage{r.History, r.Relevant} {
			for i := range list {
				list[i].Text = "" // context: the texts a result carries by design
			}
		}
		b, _ := json.Marshal(r)
		look("result "+r.EventID, b)
	}
	for _, d := range dead {
		look("dead letter's error", []byte(aws.ToString(d.MessageAttributes["error"].StringValue)))
	}
	if len(spans.all()) == 0 {
		t.Error("no span was exported: the spans were not checked")
	}
	for _, l := range leaks {
		t.Errorf("personal data: %s", l)
	}
	t.Logf("%d results (%d degraded), %d searches failed, %d writes refused and %d down, %d publishes failed, %d dead letters; spans %d bytes, logs %d bytes: marker found %d times",
		len(results), degraded, hostile.searchErrs.Load(), hostile.refusals.Load(), hostile.downs.Load(), faulted.Load(), len(dead), len(spans.all()), len(fl.logs()), len(leaks))
}

// faultSeen tells whether the fault flag stands for met a call.
func faultSeen(flag *atomic.Bool, h *hostileWeaviate) bool {
	switch flag {
	case &h.batchDown:
		return h.downs.Load() > 0
	case &h.objectsRefused:
		return h.refusals.Load() > 0
	default:
		return h.searchErrs.Load() > 0
	}
}

// drainUntil receives and deletes messages of the queue at url until n
// came, or fails after timeout.
func drainUntil(ctx context.Context, api *sqs.Client, url string, n int, timeout time.Duration) ([]types.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var all []types.Message
	for len(all) < n {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			return all, fmt.Errorf("%d of %d messages: %w", len(all), n, err)
		}
		for _, m := range out.Messages {
			all = append(all, m)
			if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return all, err
			}
		}
	}
	return all, nil
}
