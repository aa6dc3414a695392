package app

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/backoff"
	"github.com/chatprep/chatprep/internal/consumer"
	"github.com/chatprep/chatprep/internal/health"
)

// weaviateRetry is the wait between tries to reach Weaviate at start: at
// most 5 s, so a worker is ready within seconds of Weaviate answering.
var weaviateRetry = backoff.Policy{Base: 250 * time.Millisecond, Max: 5 * time.Second}

// weaviateTryTimeout bounds one try.
const weaviateTryTimeout = 5 * time.Second

// weaviateLogEvery rate-limits the "not reached yet" warning: the first
// try's, then one per period with the tries so far.
const weaviateLogEvery = 30 * time.Second

// readier is a store that can say whether it works (store.Store.Ready).
type readier interface {
	Ready(ctx context.Context) error
}

// awaitWeaviate tries st.Ready until it succeeds once, then marks up
// reached; the consumer's gate holds receiving until then, so the worker
// takes no message it could not process. A store without Ready (the
// benchmark's stand-in) is reached at once. It stops when ctx ends.
func awaitWeaviate(ctx context.Context, st any, up *health.Dependency, log zerolog.Logger, url string) {
	r, ok := st.(readier)
	if !ok {
		up.Reach()
		return
	}
	start := time.Now()
	warn := log.Sample(&zerolog.BurstSampler{Burst: 1, Period: weaviateLogEvery})
	for try := 0; ; try++ {
		tryCtx, cancel := context.WithTimeout(ctx, weaviateTryTimeout)
		err := r.Ready(tryCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			up.Reach()
			if try > 0 {
				log.Info().Str("weaviate_url", url).Int("tries", try+1).
					Float64("waited_ms", float64(time.Since(start).Microseconds())/1000).Msg("weaviate reached: receiving starts")
			}
			return
		}
		up.Waiting(err.Error())
		wait := weaviateRetry.Delay(try)
		warn.Warn().Err(err).Str("weaviate_url", url).Int("tries", try+1).Float64("retry_in_ms", float64(wait.Milliseconds())).
			Msg("weaviate not reached yet: the worker receives nothing until it is; check WEAVIATE_URL, WEAVIATE_API_KEY and that `worker setup` ran")
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// afterGate is the consumer's gate: closed until first is, then then's.
type afterGate struct {
	first <-chan struct{}
	then  consumer.Gate
}

func (g afterGate) Wait(ctx context.Context) error {
	select {
	case <-g.first:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.then.Wait(ctx)
}

// clientLogMode is what the AWS SDK logs besides its warnings: its retries
// at LOG_LEVEL=debug and below, nothing else.
func clientLogMode(lvl zerolog.Level) aws.ClientLogMode {
	if lvl <= zerolog.DebugLevel {
		return aws.LogRetries
	}
	return 0
}
