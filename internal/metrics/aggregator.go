package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/rs/zerolog"
)

// CloudWatchAPI is the one CloudWatch call the aggregator makes.
type CloudWatchAPI interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

var _ CloudWatchAPI = (*cloudwatch.Client)(nil)

// Aggregator aggregates the contract's metrics in memory, per metric stream
// (name, Route) and minute, and sends them to CloudWatch in batched
// PutMetricData calls. Duration and Count are safe for concurrent use and
// never wait for CloudWatch.
//
// A nil *Aggregator is the disabled recorder (METRICS_ENABLED=false): its
// methods do nothing, Run only waits for its context, and Stats is zero.
type Aggregator struct {
	api    CloudWatchAPI
	cfg    Config
	log    zerolog.Logger
	now    func() time.Time
	table  []Metric
	routes []string       // Route value of each route index; index 0 is OtherRoute
	nroute int            // len(routes)
	byName map[string]int // route → index, when there are too many routes to scan
	shards []shard
	mask   uint32

	invalid atomic.Uint64

	flushMu sync.Mutex             // one flush at a time; guards pending
	pending map[pendingKey]*series // collected from the shards, not yet sent

	sent, calls, failures, dropped atomic.Uint64
	npending                       atomic.Int64
	running                        atomic.Bool
}

// pendingKey names one datum: a stream in one minute.
type pendingKey struct {
	minute int64 // Unix minutes
	stream int   // metric index * nroute + route index
}

// shard is one lock's worth of the aggregation. Recorders pick a shard at
// random, so under contention they rarely meet on the same lock.
type shard struct {
	mu       sync.Mutex
	wins     map[int64][]*series // minute → series by stream
	lastMin  int64
	last     []*series // wins[lastMin], the common case
	recorded uint64
	_        [64]byte // keep shards on separate cache lines
}

// Stats are the aggregator's counters since New.
type Stats struct {
	// Recorded is the number of values Duration and Count accepted.
	Recorded uint64
	// Invalid is the number of values refused: an unknown metric name, a
	// Count of a duration metric or a Duration of a count metric, a count
	// that is negative, NaN or infinite.
	Invalid uint64
	// Sent is the number of metric data CloudWatch accepted.
	Sent uint64
	// Calls is the number of PutMetricData calls that succeeded.
	Calls uint64
	// Failures is the number of PutMetricData calls that failed (after the
	// SDK's own retries).
	Failures uint64
	// Dropped is the number of recorded values discarded unsent: the buffer
	// was full, they were older than CloudWatch accepts, or CloudWatch
	// refused their call as invalid. It is also sent as MetricsDropped.
	Dropped uint64
	// Pending is the number of metric data waiting to be sent after the last
	// flush.
	Pending int
}

// New returns an Aggregator that sends to api. Call Run to flush
// periodically (and once more at shutdown), or Flush yourself.
func New(api CloudWatchAPI, cfg Config) (*Aggregator, error) {
	if api == nil {
		return nil, errors.New("new metrics aggregator: no CloudWatch client")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	routes := []string{OtherRoute}
	for _, r := range cfg.Routes {
		if r != OtherRoute {
			routes = append(routes, r)
		}
	}
	if streams := len(table()) * len(routes); cfg.MaxPending < streams {
		return nil, fmt.Errorf("invalid metrics configuration: MaxPending %d is less than one minute of every stream (%d)", cfg.MaxPending, streams)
	}
	n := 8
	for n < 4*runtime.GOMAXPROCS(0) {
		n *= 2
	}
	a := &Aggregator{
		api:     api,
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		table:   table(),
		routes:  routes,
		nroute:  len(routes),
		shards:  make([]shard, n),
		mask:    uint32(n - 1),
		pending: make(map[pendingKey]*series),
	}
	for i := range a.shards {
		a.shards[i].wins = make(map[int64][]*series)
	}
	if len(routes) > scanRoutes {
		a.byName = make(map[string]int, len(routes))
		for i, r := range routes {
			a.byName[r] = i
		}
	}
	return a, nil
}

// Duration records d for the duration metric name. route is the message's
// route for [Route] metrics (unknown and empty routes count as OtherRoute)
// and is ignored for the others. A negative d counts as 0, one above
// MaxDuration as MaxDuration. It never blocks on CloudWatch: it takes a
// short, rarely contended lock.
func (a *Aggregator) Duration(name, route string, d time.Duration) {
	if a == nil {
		return
	}
	m, ok := metricIndex(name)
	if !ok || a.table[m].Kind != KindDuration {
		a.invalid.Add(1)
		return
	}
	ns := int64(min(max(d, 0), MaxDuration))
	a.record(m, route, func(sr *series) { sr.addDuration(ns) })
}

// Count adds n to the count metric name (usually n = 1). route is as for
// Duration. A negative, NaN or infinite n is refused (Stats.Invalid).
func (a *Aggregator) Count(name, route string, n float64) {
	if a == nil {
		return
	}
	m, ok := metricIndex(name)
	if !ok || a.table[m].Kind != KindCount || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		a.invalid.Add(1)
		return
	}
	a.record(m, route, func(sr *series) { sr.addCount(n) })
}

// record adds one value to metric m's series for route in the current
// window: add runs under the shard's lock.
func (a *Aggregator) record(m int, route string, add func(*series)) {
	stream := m*a.nroute + a.routeIndex(m, route)
	s, w := a.lock(a.now())
	sr := w[stream]
	if sr == nil {
		sr = &series{}
		w[stream] = sr
	}
	add(sr)
	s.recorded++
	s.mu.Unlock()
}

// scanRoutes is how many routes routeIndex compares one by one; past it, a
// map is faster.
const scanRoutes = 8

// routeIndex is the cardinality guard: the index of route among the known
// routes, 0 (OtherRoute) for any other, and 0 for metrics without Route.
func (a *Aggregator) routeIndex(metric int, route string) int {
	if !a.table[metric].Route {
		return 0
	}
	if a.byName != nil {
		return a.byName[route] // 0 when unknown
	}
	for i := 1; i < len(a.routes); i++ {
		if a.routes[i] == route {
			return i
		}
	}
	return 0
}

// lock picks a shard, locks it and returns it with its streams for the
// minute of t. The caller unlocks.
func (a *Aggregator) lock(t time.Time) (*shard, []*series) {
	minute := unixMinute(t)
	s := &a.shards[rand.Uint32()&a.mask]
	s.mu.Lock()
	if s.last != nil && s.lastMin == minute {
		return s, s.last
	}
	w := s.wins[minute]
	if w == nil {
		w = make([]*series, len(a.table)*a.nroute)
		s.wins[minute] = w
	}
	s.last, s.lastMin = w, minute
	return s, w
}

// Stats returns the counters. It does not wait for a flush in progress.
func (a *Aggregator) Stats() Stats {
	if a == nil {
		return Stats{}
	}
	st := Stats{
		Invalid:  a.invalid.Load(),
		Sent:     a.sent.Load(),
		Calls:    a.calls.Load(),
		Failures: a.failures.Load(),
		Dropped:  a.dropped.Load(),
		Pending:  int(a.npending.Load()),
	}
	for i := range a.shards {
		s := &a.shards[i]
		s.mu.Lock()
		st.Recorded += s.recorded
		s.mu.Unlock()
	}
	return st
}

// unixMinute numbers the minute that holds t.
func unixMinute(t time.Time) int64 {
	sec := t.Unix()
	if sec < 0 {
		return (sec - 59) / 60
	}
	return sec / 60
}
