package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of Config; CONTRACT.md's where the contract names one.
const (
	// DefaultNamespace is METRICS_NAMESPACE's default.
	DefaultNamespace = "ChatPrep"
	// DefaultFlushInterval is METRICS_FLUSH_INTERVAL's default.
	DefaultFlushInterval = 60 * time.Second
	// DefaultMaxPending bounds the metric data kept for sending: almost three
	// hours of every stream while CloudWatch is down (with the built-in
	// routes, at most 23 streams a minute), about 20 MB at worst (a datum
	// holds at most 150 values).
	DefaultMaxPending = 4000
	// DefaultSendTimeout bounds one PutMetricData call, the SDK's own retries
	// included.
	DefaultSendTimeout = 10 * time.Second
	// DefaultFinalFlushTimeout bounds the flush Run makes after its context
	// ends. It is short because it runs after SHUTDOWN_TIMEOUT and must fit
	// before ECS's stopTimeout.
	DefaultFinalFlushTimeout = 4 * time.Second
	// DefaultRetryMin is the first back-off after a failed flush; each further
	// failure doubles it, up to the flush interval.
	DefaultRetryMin = time.Second
)

// CloudWatch's limits, from the PutMetricData API reference.
const (
	// MaxDataPerCall is the most metric data one PutMetricData call takes.
	MaxDataPerCall = 1000
	// MaxValuesPerDatum is the most distinct values in one datum's Values.
	MaxValuesPerDatum = 150
	// MaxRequestBytes is the size limit of one PutMetricData request (1 MB).
	// The aggregator keeps its estimate of each request's uncompressed size
	// below 90% of it.
	MaxRequestBytes = 1_000_000
	// MaxDatumAge is how old a datum's timestamp may be: CloudWatch accepts
	// two weeks; the aggregator drops windows ten minutes before that, to
	// leave room for the call itself and clock skew.
	MaxDatumAge = 14*24*time.Hour - 10*time.Minute
	// MaxRoutes bounds Config.Routes: each route adds a stream per [Route]
	// metric, and CloudWatch bills per stream.
	MaxRoutes = 100
	// MaxDuration caps recorded durations (longer ones are bugs, not
	// latencies), so that a minute's nanosecond sums cannot overflow.
	MaxDuration = 24 * time.Hour
	// maxDimensionValue is CloudWatch's limit on a dimension value's length.
	maxDimensionValue = 1024
)

// DefaultRoutes returns the contract's built-in routes, the default of
// Config.Routes.
func DefaultRoutes() []string { return []string{"odoo_erp", "general"} }

// Config configures an Aggregator. The zero value of every field but Logger
// means its default; the zero Config is right for real CloudWatch.
type Config struct {
	// Namespace is the CloudWatch namespace (METRICS_NAMESPACE).
	// Default DefaultNamespace.
	Namespace string

	// FlushInterval is how often Run sends what was aggregated
	// (METRICS_FLUSH_INTERVAL). Default DefaultFlushInterval.
	FlushInterval time.Duration

	// OmitTimestamps leaves the Timestamp off every datum, so CloudWatch
	// files it under the minute it arrives rather than the minute it was
	// recorded. Only for emulators that refuse timestamps (kumo): set it from
	// METRICS_TIMESTAMPS=false. Default false: timestamps on. (The field is
	// negative so that the zero Config is right for real CloudWatch.)
	OmitTimestamps bool

	// Routes are the known values of the Route dimension; any other route,
	// and the empty route, is recorded as OtherRoute. At most MaxRoutes.
	// Default DefaultRoutes() (the contract's odoo_erp and general); pass the
	// route names of ROUTES_FILE when it replaces the rules.
	Routes []string

	// MaxPending bounds the metric data (one per metric stream and minute)
	// kept for sending while CloudWatch is slow or down. Past it, the oldest
	// minutes are dropped first, and their number of values is reported as
	// MetricsDropped. It must hold at least one minute of every stream:
	// 11 metrics × (len(Routes)+1) routes. Default DefaultMaxPending.
	MaxPending int

	// SendTimeout bounds each PutMetricData call. Default DefaultSendTimeout.
	SendTimeout time.Duration

	// FinalFlushTimeout bounds the last flush Run makes after its context
	// ends. Default DefaultFinalFlushTimeout.
	FinalFlushTimeout time.Duration

	// RetryMin is Run's first back-off after a failed flush, doubled per
	// further failure up to FlushInterval. Default DefaultRetryMin.
	RetryMin time.Duration

	// Logger receives one line per flush and Run's rate-limited errors, as
	// given: the caller names the component. The zero value logs nothing.
	Logger zerolog.Logger

	// Now is the clock that places values in their minute (tests inject
	// one). Default time.Now.
	Now func() time.Time
}

// withDefaults returns c with every unset field at its default.
func (c Config) withDefaults() Config {
	c.Namespace = cmp.Or(c.Namespace, DefaultNamespace)
	c.FlushInterval = cmp.Or(c.FlushInterval, DefaultFlushInterval)
	if len(c.Routes) == 0 {
		c.Routes = DefaultRoutes()
	}
	c.MaxPending = cmp.Or(c.MaxPending, DefaultMaxPending)
	c.SendTimeout = cmp.Or(c.SendTimeout, DefaultSendTimeout)
	c.FinalFlushTimeout = cmp.Or(c.FinalFlushTimeout, DefaultFinalFlushTimeout)
	c.RetryMin = cmp.Or(c.RetryMin, DefaultRetryMin)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate reports every invalid field of a Config with defaults applied.
func (c Config) validate() error {
	var errs []error
	if len(c.Namespace) > 255 || strings.HasPrefix(c.Namespace, "AWS/") || strings.HasPrefix(c.Namespace, ":") {
		errs = append(errs, fmt.Errorf("invalid Namespace %q: must be 1-255 characters and not start with AWS/ or ':'", c.Namespace))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"FlushInterval", c.FlushInterval},
		{"SendTimeout", c.SendTimeout},
		{"FinalFlushTimeout", c.FinalFlushTimeout},
		{"RetryMin", c.RetryMin},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("invalid %s %v: must not be negative", d.name, d.v))
		}
	}
	if c.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("invalid MaxPending %d: must not be negative", c.MaxPending))
	}
	if len(c.Routes) > MaxRoutes {
		errs = append(errs, fmt.Errorf("invalid Routes: %d routes, at most %d (each adds a metric stream per [Route] metric)", len(c.Routes), MaxRoutes))
	}
	seen := make(map[string]bool, len(c.Routes))
	for _, r := range c.Routes {
		switch {
		case r == "":
			errs = append(errs, errors.New("invalid Routes: a route name is empty"))
		case len(r) > maxDimensionValue:
			errs = append(errs, fmt.Errorf("invalid Routes: route %.20q… is longer than CloudWatch's %d-byte dimension value", r, maxDimensionValue))
		case seen[r]:
			errs = append(errs, fmt.Errorf("invalid Routes: route %q is listed twice", r))
		}
		seen[r] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid metrics configuration: %w", err)
	}
	return nil
}
