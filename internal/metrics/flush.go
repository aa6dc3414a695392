package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/backoff"
)

// requestBudget is what the estimated size of one request may reach: 90% of
// MaxRequestBytes, the rest is margin for the estimate.
const requestBudget = MaxRequestBytes / 10 * 9

// errorLogEvery rate-limits Run's log lines about failing flushes.
const errorLogEvery = time.Minute

// Run flushes every FlushInterval until ctx ends, then flushes once more and
// returns. Calls run on a context that outlives ctx: a flush in progress
// when ctx ends is not cut off (its outcome would be unknown and its data
// sent twice), and together with the final flush it is bounded by
// FinalFlushTimeout from the moment ctx ends. A failed flush keeps its data
// and is retried with back-off (RetryMin, doubled per failure, at most
// FlushInterval); Run logs failures, rate limited, and does not return
// them. It returns the final flush's error.
//
// On a nil Aggregator, Run waits for ctx and returns nil.
func (a *Aggregator) Run(ctx context.Context) error {
	if a == nil {
		<-ctx.Done()
		return nil
	}
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("run metrics aggregator: already running")
	}
	defer a.running.Store(false)

	sendCtx, cancelSend := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelSend(nil)
	bound := fmt.Errorf("metrics still sending %v after shutdown began: %w", a.cfg.FinalFlushTimeout, context.DeadlineExceeded)
	stopWatch := context.AfterFunc(ctx, func() {
		t := time.NewTimer(a.cfg.FinalFlushTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSend(bound)
		case <-sendCtx.Done():
		}
	})
	defer stopWatch()

	timer := time.NewTimer(a.cfg.FlushInterval)
	defer timer.Stop()
	var (
		failures  int       // consecutive failed flushes
		unlogged  int       // failed flushes not yet logged
		lastLog   time.Time // of a failure
		firstFail time.Time
	)
	for {
		select {
		case <-ctx.Done():
			if err := a.Flush(sendCtx); err != nil {
				if cause := context.Cause(sendCtx); cause != nil {
					err = fmt.Errorf("%w (%w)", err, cause)
				}
				return fmt.Errorf("final metrics flush: %w", err)
			}
			return nil
		case <-timer.C:
		}
		err := a.Flush(sendCtx)
		delay := a.cfg.FlushInterval
		now := time.Now()
		switch {
		case err != nil:
			failures++
			unlogged++
			if failures == 1 {
				firstFail = now
			}
			if failures == 1 || now.Sub(lastLog) >= errorLogEvery {
				a.log.Warn().Err(err).Int("failed_flushes", unlogged).
					Float64("failing_for_ms", ms(int64(now.Sub(firstFail)))).Msg("metrics flush failed; data kept, retrying with back-off")
				lastLog, unlogged = now, 0
			}
			delay = a.backoff(failures)
		case failures > 0:
			a.log.Info().Int("failed_flushes", failures).Float64("failing_for_ms", ms(int64(now.Sub(firstFail)))).
				Msg("metrics flushing resumed")
			failures, unlogged = 0, 0
		}
		timer.Reset(delay)
	}
}

// backoff is the wait after the n-th consecutive failed flush: RetryMin
// doubled per failure, at most FlushInterval, jittered.
func (a *Aggregator) backoff(n int) time.Duration {
	return backoff.Policy{Base: a.cfg.RetryMin, Max: a.cfg.FlushInterval}.Delay(n - 1)
}

// flushReport is what one flush did, for its log line.
type flushReport struct {
	data, calls, failed int
	dropped             uint64
}

// Flush sends everything recorded so far, oldest minute first, in as few
// PutMetricData calls as CloudWatch's limits allow (MaxDataPerCall data and
// MaxRequestBytes per call). Data of a call that fails stays pending for the
// next flush, except when CloudWatch refuses the call as invalid: retrying
// could never succeed, so those values are dropped and counted. Minutes
// older than MaxDatumAge, and the oldest minutes past MaxPending, are
// dropped too. Flush logs one line and returns the calls' errors (not
// logging them).
func (a *Aggregator) Flush(ctx context.Context) error {
	if a == nil {
		return nil
	}
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	start := time.Now()
	now := a.now()
	a.collect()
	var rep flushReport
	dropped, carried := a.expire(now)
	err := a.send(ctx, &rep, &dropped, &carried)
	if dropped+carried > 0 {
		a.pendingSeries(unixMinute(now), a.droppedStream(), nil).addCount(float64(dropped + carried))
	}
	a.dropped.Add(dropped)
	a.npending.Store(int64(len(a.pending)))
	rep.dropped = dropped

	lvl := zerolog.InfoLevel
	switch {
	case rep.dropped > 0:
		lvl = zerolog.WarnLevel
	case rep.data == 0 && rep.failed == 0:
		lvl = zerolog.DebugLevel
	}
	a.log.WithLevel(lvl).Int("data_sent", rep.data).Int("calls", rep.calls).Uint64("dropped", rep.dropped).
		Int("failed_calls", rep.failed).Int("pending", len(a.pending)).
		Float64("duration_ms", float64(time.Since(start).Microseconds())/1000).Msg("metrics flushed")
	return err
}

// collect moves every shard's streams into pending.
func (a *Aggregator) collect() {
	for i := range a.shards {
		s := &a.shards[i]
		s.mu.Lock()
		wins := s.wins
		s.wins = make(map[int64][]*series, 2)
		s.last = nil
		s.mu.Unlock()
		for minute, w := range wins {
			for stream, sr := range w {
				if sr != nil {
					a.pendingSeries(minute, stream, sr)
				}
			}
		}
	}
}

// pendingSeries returns the pending series of stream in minute, merging sr
// into it when sr is not nil.
func (a *Aggregator) pendingSeries(minute int64, stream int, sr *series) *series {
	k := pendingKey{minute, stream}
	p := a.pending[k]
	switch {
	case p == nil && sr != nil:
		p = sr
		a.pending[k] = p
	case p == nil:
		p = &series{}
		a.pending[k] = p
	case sr != nil:
		p.merge(sr)
	}
	p.pack() // bounds what a pending datum holds: maxGroups runs
	return p
}

func (a *Aggregator) droppedStream() int { return (len(a.table) - 1) * a.nroute }

// expire drops minutes older than MaxDatumAge, then the oldest minutes while
// more than MaxPending data are pending. It returns the number of values
// dropped, and the drops reported by dropped MetricsDropped data, which are
// carried into the next report so that no drop goes unreported.
func (a *Aggregator) expire(now time.Time) (dropped, carried uint64) {
	oldest := unixMinute(now.Add(-MaxDatumAge))
	keys := a.sortedKeys()
	i := 0
	dropKey := func() {
		d, c := a.drop(keys[i])
		dropped, carried = dropped+d, carried+c
		i++
	}
	for i < len(keys) && keys[i].minute < oldest {
		dropKey()
	}
	for i < len(keys) && len(keys)-i > a.cfg.MaxPending {
		for m := keys[i].minute; i < len(keys) && keys[i].minute == m; {
			dropKey() // whole minutes go, oldest first
		}
	}
	return dropped, carried
}

// drop removes one pending datum and returns what it held.
func (a *Aggregator) drop(k pendingKey) (dropped, carried uint64) {
	sr := a.pending[k]
	delete(a.pending, k)
	if k.stream == a.droppedStream() {
		return 0, uint64(sr.total)
	}
	return sr.n, 0
}

func (a *Aggregator) sortedKeys() []pendingKey {
	keys := make([]pendingKey, 0, len(a.pending))
	for k := range a.pending {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y pendingKey) int {
		return cmp.Or(cmp.Compare(x.minute, y.minute), cmp.Compare(x.stream, y.stream))
	})
	return keys
}

// send sends every pending datum, oldest first, and removes what CloudWatch
// accepted or refused as invalid.
func (a *Aggregator) send(ctx context.Context, rep *flushReport, dropped, carried *uint64) error {
	keys := a.sortedKeys()
	var errs []error
	for len(keys) > 0 {
		batch, data := a.batch(keys)
		keys = keys[len(batch):]
		cctx, cancel := context.WithTimeout(ctx, a.cfg.SendTimeout)
		_, err := a.api.PutMetricData(cctx, &cloudwatch.PutMetricDataInput{
			Namespace:  aws.String(a.cfg.Namespace),
			MetricData: data,
		})
		cancel()
		if err == nil {
			for _, k := range batch {
				delete(a.pending, k)
			}
			rep.calls++
			rep.data += len(data)
			a.calls.Add(1)
			a.sent.Add(uint64(len(data)))
			continue
		}
		rep.failed++
		a.failures.Add(1)
		err = fmt.Errorf("put %d metric data in namespace %s: %w", len(data), a.cfg.Namespace, err)
		if !invalidRequest(err) {
			return errors.Join(append(errs, err)...) // keep the rest for the next flush
		}
		for _, k := range batch {
			d, c := a.drop(k)
			*dropped += d
			*carried += c
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// batch takes the longest prefix of keys that fits one call and builds its
// data.
func (a *Aggregator) batch(keys []pendingKey) ([]pendingKey, []types.MetricDatum) {
	data := make([]types.MetricDatum, 0, min(len(keys), MaxDataPerCall))
	size := 64 + len(a.cfg.Namespace)
	for i, k := range keys {
		d := a.datum(k)
		n := estimateSize(&d)
		if i > 0 && (i == MaxDataPerCall || size+n > requestBudget) {
			return keys[:i], data
		}
		data = append(data, d)
		size += n
	}
	return keys, data
}

// datum builds the MetricDatum of one pending stream-minute.
func (a *Aggregator) datum(k pendingKey) types.MetricDatum {
	sr := a.pending[k]
	m := a.table[k.stream/a.nroute]
	d := types.MetricDatum{
		MetricName: aws.String(m.Name),
		Unit:       m.Unit,
	}
	if m.Route {
		d.Dimensions = []types.Dimension{{Name: aws.String(RouteDimension), Value: aws.String(a.routes[k.stream%a.nroute])}}
	}
	if !a.cfg.OmitTimestamps {
		d.Timestamp = aws.Time(time.Unix(k.minute*60, 0).UTC())
	}
	if m.Kind == KindCount {
		d.Value = aws.Float64(sr.total)
	} else {
		d.Values, d.Counts = sr.distribution()
	}
	return d
}

// estimateSize is an upper bound of a datum's size in the CBOR body: keys,
// strings and 9 bytes per float.
func estimateSize(d *types.MetricDatum) int {
	n := 128 + len(aws.ToString(d.MetricName)) + len(d.Unit) + 18*len(d.Values)
	for _, dim := range d.Dimensions {
		n += 24 + len(aws.ToString(dim.Name)) + len(aws.ToString(dim.Value))
	}
	return n
}

// invalidRequest tells whether CloudWatch refused a call as invalid, which no
// retry can fix. Throttling, server faults, network errors, timeouts and
// authorization failures are not: their data is kept.
func invalidRequest(err error) bool {
	var (
		ipv *types.InvalidParameterValueException
		ipc *types.InvalidParameterCombinationException
		mrp *types.MissingRequiredParameterException
	)
	if errors.As(err, &ipv) || errors.As(err, &ipc) || errors.As(err, &mrp) {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestEntityTooLarge {
		return true
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	if _, throttle := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]; throttle {
		return false
	}
	switch ae.ErrorCode() {
	case "InvalidParameterValue", "InvalidParameterCombination", "MissingParameter", "MissingRequiredParameter":
		return true
	}
	return false
}
