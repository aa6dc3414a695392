package logbridge

import (
	"github.com/go-logr/logr"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
)

// SetOTel points OpenTelemetry's process-global error handler and logger
// at log. The SDK reports a failed export, a bad OTEL_* value or a dropped
// attribute only through them (there is no per-provider hook), and by
// default prints them as plain text on stderr. Its errors (a collector
// that is down fails a batch every few seconds) and warnings come out at
// warn, its info and debug lines are dropped, rate-limited like every
// bridge. Only the message and the error are kept, never the SDK's
// key-value pairs: they may hold a header's value (an exporter's API key).
// SetGlobal calls it; tests of tracing may call it alone.
func SetOTel(log zerolog.Logger) {
	log = limited(log)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn().Err(err).Msg("OpenTelemetry SDK error; traces may be lost, events are not")
	}))
	otel.SetLogger(logr.New(otelSink{log: log}))
}

// otelSink is a logr.LogSink for the SDK's internal logger: its warnings
// are V(1), info V(4), debug V(8).
type otelSink struct{ log zerolog.Logger }

var _ logr.LogSink = otelSink{}

func (otelSink) Init(logr.RuntimeInfo)  {}
func (otelSink) Enabled(level int) bool { return level <= 1 }
func (s otelSink) Info(_ int, msg string, _ ...any) {
	s.log.Warn().Msg("OpenTelemetry SDK: " + msg)
}
func (s otelSink) Error(err error, msg string, _ ...any) {
	s.log.Warn().Err(err).Msg("OpenTelemetry SDK: " + msg)
}
func (s otelSink) WithValues(...any) logr.LogSink { return s }
func (s otelSink) WithName(string) logr.LogSink   { return s }
