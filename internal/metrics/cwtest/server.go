package cwtest

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/fxamacker/cbor/v2"
)

// CloudWatch's documented limits that the server enforces, so that a sender
// breaking one fails its test as it would fail against CloudWatch.
const (
	// MaxDataPerCall is the most metric data in one PutMetricData call.
	MaxDataPerCall = 1000
	// MaxValuesPerDatum is the most values in one datum's Values.
	MaxValuesPerDatum = 150
	// MaxRequestBytes is the most bytes of one request body, uncompressed.
	MaxRequestBytes = 1_000_000
	// MaxDimensions is the most dimensions of one datum.
	MaxDimensions = 30
	// MaxPast is how old a timestamp may be.
	MaxPast = 14 * 24 * time.Hour
	// MaxFuture is how far in the future a timestamp may be.
	MaxFuture = 2 * time.Hour
	// maxValue bounds values: CloudWatch accepts -2^360 to 2^360.
	maxValueExp = 360
)

// The operation path prefix of CloudWatch's RPC v2 CBOR protocol.
const operationPrefix = "/service/GraniteServiceVersion20100801/operation/"

// Dimension is one dimension of a datum.
type Dimension struct {
	Name, Value string
}

// StatisticSet is a datum's StatisticValues.
type StatisticSet struct {
	SampleCount, Sum, Minimum, Maximum float64
}

// Datum is one MetricDatum exactly as the SDK sent it.
type Datum struct {
	MetricName        string
	Dimensions        []Dimension // in the order sent
	Unit              string
	Timestamp         *time.Time // nil when the datum had none
	Value             *float64
	Values            []float64
	Counts            []float64
	StatisticValues   *StatisticSet
	StorageResolution *int32
}

// Dims is the datum's dimensions in canonical form (see Dims).
func (d Datum) Dims() string {
	kv := make([]string, 0, 2*len(d.Dimensions))
	for _, dim := range d.Dimensions {
		kv = append(kv, dim.Name, dim.Value)
	}
	return Dims(kv...)
}

// Call is one accepted PutMetricData call.
type Call struct {
	Namespace  string
	Data       []Datum
	Compressed bool // the body came gzip-compressed
	BodyBytes  int  // uncompressed body size
	WireBytes  int  // body size as sent
}

// Failure is how the server answers calls while failing.
type Failure struct {
	Status  int    // HTTP status
	Type    string // the CBOR body's __type
	Query   string // X-Amzn-Query-Error header: "Code;Sender" or "Code;Receiver"
	Message string
	Hang    bool // answer nothing until the client gives up or the server closes
}

// Throttling is CloudWatch's answer to too many calls (the SDK retries it).
func Throttling() Failure {
	return Failure{Status: 400, Type: "com.amazonaws.coral.availability#ThrottlingException", Query: "Throttling;Sender", Message: "Rate exceeded"}
}

// InternalError is a CloudWatch server fault, HTTP 500 (the SDK retries it).
func InternalError() Failure {
	return Failure{Status: 500, Type: "com.amazonaws.cloudwatch#InternalServiceFault", Query: "InternalServiceError;Receiver", Message: "Internal service error"}
}

// Unavailable is HTTP 503 (the SDK retries it).
func Unavailable() Failure {
	return Failure{Status: 503, Type: "ServiceUnavailable", Query: "ServiceUnavailable;Receiver", Message: "Service unavailable"}
}

// InvalidParameter is CloudWatch's answer to an invalid request (not
// retryable).
func InvalidParameter(msg string) Failure {
	return Failure{Status: 400, Type: "com.amazonaws.cloudwatch#InvalidParameterValueException", Query: "InvalidParameterValue;Sender", Message: msg}
}

// Hang answers nothing until the client gives up.
func Hang() Failure { return Failure{Hang: true} }

// Server is an httptest server that speaks CloudWatch's Smithy RPC v2 CBOR
// protocol for PutMetricData (and a minimal ListMetrics). It decodes every
// request the SDK sends, gzip-compressed or not, checks it against
// CloudWatch's documented limits, and records every datum exactly. Failures
// can be injected. It is safe for concurrent use.
type Server struct {
	// URL is the endpoint to give the SDK (BaseEndpoint).
	URL string

	srv    *httptest.Server
	dec    decoder
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every request
	now      func() time.Time
	calls    []Call
	requests int // PutMetricData requests, failed ones included
	failNext []Failure
	failing  *Failure
}

// New starts a Server and closes it when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	dec, err := newDecoder()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{
		dec:     dec,
		closed:  make(chan struct{}),
		changed: make(chan struct{}),
		now:     time.Now,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server, ending hanging calls first.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.Close()
	})
}

// sdkMinCompressSize is the SDK's default compression threshold, which
// config.LoadDefaultConfig sets and cloudwatch.New alone does not.
const sdkMinCompressSize = 10240

// Client returns an SDK client for the server as the worker builds it from
// config.LoadDefaultConfig: static credentials, region us-east-1, request
// compression on from 10 KiB, standard retries; then opts.
func (s *Server) Client(opts ...func(*cloudwatch.Options)) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:                      "us-east-1",
		Credentials:                 credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint:                aws.String(s.URL),
		RequestMinCompressSizeBytes: sdkMinCompressSize,
	}, opts...)
}

// SetNow sets the clock the server checks timestamps against (default
// time.Now), for tests that record on an injected clock.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// FailNext makes the next n PutMetricData requests fail with f.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, f)
	}
}

// Fail makes every PutMetricData request fail with f until Recover.
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = &f
}

// Recover ends Fail (FailNext failures not yet used stay).
func (s *Server) Recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = nil
}

// Calls returns the accepted calls, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Data returns every datum of the accepted calls, in arrival order.
func (s *Server) Data() []Datum {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Datum
	for _, c := range s.calls {
		out = append(out, c.Data...)
	}
	return out
}

// Requests is the number of PutMetricData requests received, failed and
// refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// WaitCalls waits until at least n calls were accepted, or ctx ends.
func (s *Server) WaitCalls(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return len(s.calls) >= n }, fmt.Sprintf("%d accepted calls", n))
}

// WaitRequests waits until at least n PutMetricData requests arrived
// (accepted or not, hanging ones included), or ctx ends.
func (s *Server) WaitRequests(ctx context.Context, n int) error {
	return s.wait(ctx, func() bool { return s.requests >= n }, fmt.Sprintf("%d requests", n))
}

func (s *Server) wait(ctx context.Context, done func() bool, what string) error {
	for {
		s.mu.Lock()
		ok, ch, got := done(), s.changed, len(s.calls)
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %s (have %d accepted calls): %w", what, got, ctx.Err())
		}
	}
}

// notify wakes waiters; s.mu is held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.URL.Path, operationPrefix)
	if !ok || r.Method != http.MethodPost {
		s.writeError(w, Failure{Status: 404, Type: "UnknownOperationException", Message: "not a CloudWatch RPC v2 CBOR request: " + r.Method + " " + r.URL.Path})
		return
	}
	if p := r.Header.Get("Smithy-Protocol"); p != "rpc-v2-cbor" {
		s.writeError(w, InvalidParameter("Smithy-Protocol header is "+p+", want rpc-v2-cbor"))
		return
	}
	switch op {
	case "PutMetricData":
		s.putMetricData(w, r)
	case "ListMetrics":
		s.listMetrics(w, r)
	default:
		s.writeError(w, Failure{Status: 400, Type: "UnknownOperationException", Message: "cwtest does not implement " + op})
	}
}

func (s *Server) putMetricData(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	var fail *Failure
	switch {
	case len(s.failNext) > 0:
		f := s.failNext[0]
		s.failNext = s.failNext[1:]
		fail = &f
	case s.failing != nil:
		f := *s.failing
		fail = &f
	}
	now := s.now()
	s.notify()
	s.mu.Unlock()

	if fail != nil {
		if fail.Hang {
			select {
			case <-r.Context().Done():
			case <-s.closed:
			}
			return
		}
		s.writeError(w, *fail)
		return
	}
	wire := r.ContentLength
	p, err := body(r.Body, r.Header.Get("Content-Encoding"))
	if err != nil {
		s.writeError(w, InvalidParameter(err.Error()))
		return
	}
	ns, data, err := s.dec.decodePut(p)
	if err != nil {
		s.writeError(w, InvalidParameter(err.Error()))
		return
	}
	if err := validate(ns, data, len(p), now); err != nil {
		s.writeError(w, InvalidParameter(err.Error()))
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{
		Namespace:  ns,
		Data:       data,
		Compressed: r.Header.Get("Content-Encoding") == "gzip",
		BodyBytes:  len(p),
		WireBytes:  int(wire),
	})
	s.notify()
	s.mu.Unlock()
	writeCBOR(w, http.StatusOK, map[string]any{})
}

// validate checks a call against CloudWatch's documented limits.
func validate(ns string, data []Datum, size int, now time.Time) error {
	if ns == "" || len(ns) > 255 || strings.HasPrefix(ns, "AWS/") {
		return fmt.Errorf("invalid Namespace %q", ns)
	}
	if len(data) == 0 || len(data) > MaxDataPerCall {
		return fmt.Errorf("MetricData has %d members, want 1 to %d", len(data), MaxDataPerCall)
	}
	if size > MaxRequestBytes {
		return fmt.Errorf("request body is %d bytes, more than %d", size, MaxRequestBytes)
	}
	for i, d := range data {
		at := fmt.Sprintf("MetricData.member.%d", i+1)
		if d.MetricName == "" || len(d.MetricName) > 255 {
			return fmt.Errorf("%s.MetricName %q is invalid", at, d.MetricName)
		}
		if len(d.Dimensions) > MaxDimensions {
			return fmt.Errorf("%s.Dimensions has %d members, more than %d", at, len(d.Dimensions), MaxDimensions)
		}
		seen := map[string]bool{}
		for _, dim := range d.Dimensions {
			if dim.Name == "" || dim.Value == "" || len(dim.Value) > 1024 || seen[dim.Name] {
				return fmt.Errorf("%s.Dimensions: %q=%q is invalid or repeated", at, dim.Name, dim.Value)
			}
			seen[dim.Name] = true
		}
		if d.Value != nil && d.StatisticValues != nil {
			return fmt.Errorf("the parameters %s.Value and %s.StatisticValues are mutually exclusive", at, at)
		}
		if d.Value != nil && d.Values != nil {
			return fmt.Errorf("the parameters %s.Value and %s.Values are mutually exclusive", at, at)
		}
		if d.Value == nil && d.StatisticValues == nil && d.Values == nil {
			return fmt.Errorf("%s has no Value, StatisticValues or Values", at)
		}
		if len(d.Values) > MaxValuesPerDatum {
			return fmt.Errorf("%s.Values has %d members, more than %d", at, len(d.Values), MaxValuesPerDatum)
		}
		if d.Counts != nil && len(d.Counts) != len(d.Values) {
			return fmt.Errorf("the parameters %s.Values and %s.Counts must be of the same size", at, at)
		}
		distinct := map[float64]bool{}
		for _, v := range d.Values {
			if distinct[v] {
				return fmt.Errorf("%s.Values lists %v twice; each value must be listed once", at, v)
			}
			distinct[v] = true
		}
		nums := slices.Concat(d.Values, d.Counts)
		if d.Value != nil {
			nums = append(nums, *d.Value)
		}
		if sv := d.StatisticValues; sv != nil {
			nums = append(nums, sv.SampleCount, sv.Sum, sv.Minimum, sv.Maximum)
			if sv.Minimum > sv.Maximum || sv.SampleCount <= 0 {
				return fmt.Errorf("%s.StatisticValues is inconsistent: %+v", at, *sv)
			}
		}
		for _, v := range nums {
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.Ldexp(1, maxValueExp) {
				return fmt.Errorf("%s has the value %v, outside what CloudWatch accepts", at, v)
			}
		}
		for _, c := range d.Counts {
			if c < 0 {
				return fmt.Errorf("%s.Counts has the negative count %v", at, c)
			}
		}
		if d.Timestamp != nil {
			if d.Timestamp.Before(now.Add(-MaxPast)) || d.Timestamp.After(now.Add(MaxFuture)) {
				return fmt.Errorf("%s.Timestamp %s is more than two weeks in the past or two hours in the future", at, d.Timestamp.Format(time.RFC3339))
			}
		}
		if d.StorageResolution != nil && *d.StorageResolution != 1 && *d.StorageResolution != 60 {
			return fmt.Errorf("%s.StorageResolution must be 1 or 60", at)
		}
	}
	return nil
}

func (s *Server) listMetrics(w http.ResponseWriter, r *http.Request) {
	p, err := body(r.Body, r.Header.Get("Content-Encoding"))
	if err != nil {
		s.writeError(w, InvalidParameter(err.Error()))
		return
	}
	var in wireListMetrics
	if len(p) > 0 {
		if err := s.dec.lenient.Unmarshal(p, &in); err != nil {
			s.writeError(w, InvalidParameter("decode ListMetrics body: "+err.Error()))
			return
		}
	}
	seen := map[string]bool{}
	var out wireListMetricsOutput
	for _, c := range s.Calls() {
		if in.Namespace != "" && c.Namespace != in.Namespace {
			continue
		}
		for _, d := range c.Data {
			if in.MetricName != "" && d.MetricName != in.MetricName || !matches(d.Dimensions, in.Dimensions) {
				continue
			}
			id := c.Namespace + "\x00" + d.MetricName + "\x00" + d.Dims()
			if seen[id] {
				continue
			}
			seen[id] = true
			m := wireMetric{Namespace: c.Namespace, MetricName: d.MetricName, Dimensions: []wireDimension{}}
			for _, dim := range d.Dimensions {
				m.Dimensions = append(m.Dimensions, wireDimension(dim))
			}
			out.Metrics = append(out.Metrics, m)
		}
	}
	if out.Metrics == nil {
		out.Metrics = []wireMetric{}
	}
	writeCBOR(w, http.StatusOK, out)
}

// matches tells whether dims satisfy every filter (a filter with an empty
// Value matches any value of its name).
func matches(dims []Dimension, filters []wireDimension) bool {
	for _, f := range filters {
		if !slices.ContainsFunc(dims, func(d Dimension) bool {
			return d.Name == f.Name && (f.Value == "" || d.Value == f.Value)
		}) {
			return false
		}
	}
	return true
}

func (s *Server) writeError(w http.ResponseWriter, f Failure) {
	if f.Query != "" {
		w.Header().Set("X-Amzn-Query-Error", f.Query)
	}
	writeCBOR(w, f.Status, map[string]string{"__type": f.Type, "message": f.Message})
}

func writeCBOR(w http.ResponseWriter, status int, v any) {
	p, err := cbor.Marshal(v)
	if err != nil {
		http.Error(w, "encode CBOR answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("X-Amzn-Requestid", "cwtest")
	w.WriteHeader(status)
	_, _ = w.Write(p)
}
