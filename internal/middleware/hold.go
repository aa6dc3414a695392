package middleware

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/handler"
)

// Defaults of HoldConfig.
const (
	// DefaultHoldFor bounds holding a message, counted from its receipt: a
	// restart or failover of Weaviate, not an outage that needs an operator.
	DefaultHoldFor = 2 * time.Minute
)

// DefaultHoldBackoff is the wait between tries in place: 500 ms doubling
// to 30 s.
var DefaultHoldBackoff = backoff.Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second}

// HoldConfig configures Hold.
type HoldConfig struct {
	// For bounds how long a message is held, from its receipt; after that
	// its error goes to the consumer, which gives it back with a back-off.
	// Default DefaultHoldFor; negative: never hold.
	For time.Duration
	// Backoff is the wait before each retry. Default DefaultHoldBackoff.
	Backoff backoff.Policy
	// Stop ends holding when done (the worker's stop: a held message is
	// then given back at once, for another worker).
	Stop context.Context
	// Held, when set, counts the retries in place.
	Held *atomic.Int64
	// Logger gets one warning per held message (rate-limited).
	Logger zerolog.Logger
}

// Hold retries a message whose handler failed transiently (see
// handler.IsTransient) in place: the message keeps its lease (the
// heartbeat extends it while it is held) and, on a FIFO queue, its chat's
// later messages wait behind it, so an outage costs no receive and breaks no
// order. Every receive counts towards MAX_RECEIVE_COUNT, and giving a valid
// event back during a Weaviate outage would dead-letter it.
func Hold(cfg HoldConfig) handler.Middleware {
	if cfg.For == 0 {
		cfg.For = DefaultHoldFor
	}
	if cfg.Backoff.Base <= 0 {
		cfg.Backoff = DefaultHoldBackoff
	}
	warn := cfg.Logger.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second})
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
			for attempt := 0; ; attempt++ {
				if r := handler.ReportFrom(ctx); r != nil && attempt > 0 {
					r.Reset() // the log line tells the last try
				}
				err := next.Handle(ctx, m)
				if err == nil || cfg.For < 0 || !handler.IsTransient(err) || ctx.Err() != nil || stopped(cfg.Stop) {
					return err
				}
				wait := cfg.Backoff.Delay(attempt)
				if time.Since(m.ReceivedAt)+wait > cfg.For {
					return err
				}
				if attempt == 0 {
					warn.Warn().Err(err).Str("message_id", m.ID).Int("receive_count", m.ReceiveCount).
						Msg("dependency failed: message held, to be retried here")
				}
				if cfg.Held != nil {
					cfg.Held.Add(1)
				}
				wctx, cancel := until(ctx, cfg.Stop)
				ok := backoff.Sleep(wctx, wait)
				cancel()
				if !ok {
					return err
				}
			}
		})
	}
}

func stopped(stop context.Context) bool { return stop != nil && stop.Err() != nil }
