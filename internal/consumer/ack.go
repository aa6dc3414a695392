package consumer

import (
	"context"
	"time"

	"github.com/chatprep/chatprep/internal/batcher"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

// Acknowledgement calls in flight at once.
const (
	deleteWorkers = 4
	changeWorkers = 2
)

// acker sends the consumer's acknowledgements: deletes of finished
// messages, and visibility changes (back-offs and releases) of the others,
// each in batches of up to ten gathered for at most Config.FlushInterval.
type acker struct {
	r       *run
	deletes *batcher.Batcher[*delivery]
	changes *batcher.Batcher[change]
}

// change is one visibility change: a back-off, or a release (0).
type change struct {
	d   *delivery
	vis time.Duration
}

func newAcker(r *run) (*acker, error) {
	a := &acker{r: r}
	var err error
	// Their buffers hold every message that can be in flight, so adding
	// never waits: an acknowledgement is never held up behind another.
	a.deletes, err = batcher.New(batcher.Config{
		MaxItems: sqsbatch.MaxEntries, Linger: r.cfg.FlushInterval, Concurrency: deleteWorkers, Buffer: r.cfg.MaxInFlight,
	}, nil, a.flushDeletes)
	if err != nil {
		return nil, err
	}
	a.changes, err = batcher.New(batcher.Config{
		MaxItems: sqsbatch.MaxEntries, Linger: r.cfg.FlushInterval, Concurrency: changeWorkers, Buffer: r.cfg.MaxInFlight,
	}, nil, a.flushChanges)
	if err != nil {
		a.deletes.Close(context.Background()) //nolint:errcheck // holds nothing yet
		return nil, err
	}
	return a, nil
}

// delete queues d's delete.
func (a *acker) delete(d *delivery) {
	if err := a.deletes.Add(context.Background(), d); err != nil {
		a.failed(d, "delete", err)
	}
}

// change queues d's visibility change.
func (a *acker) change(d *delivery, vis time.Duration) {
	if err := a.changes.Add(context.Background(), change{d, vis}); err != nil {
		a.failed(d, what(vis), err)
	}
}

func what(vis time.Duration) string {
	if vis == 0 {
		return "release"
	}
	return "back-off"
}

// close flushes what is queued within ctx.
func (a *acker) close(ctx context.Context) {
	_ = a.deletes.Close(ctx) // what it cut off is reported by its flushes
	_ = a.changes.Close(ctx)
}

func (a *acker) flushDeletes(ctx context.Context, ds []*delivery) {
	receipts := make([]string, len(ds))
	for i, d := range ds {
		receipts[i] = d.lease.Receipt()
	}
	for i, err := range a.r.c.queue.Delete(ctx, receipts) {
		if err != nil {
			if ds[i].lostAck {
				a.r.c.stats.lostDeleteFailed.Add(1)
			}
			a.failed(ds[i], "delete", err)
			continue
		}
		a.r.c.stats.deleted.Add(1)
		if ds[i].lostAck {
			a.r.c.stats.lostDeleted.Add(1)
		}
		a.r.done(ds[i])
	}
}

func (a *acker) flushChanges(ctx context.Context, cs []change) {
	vs := make([]sqsbatch.Visibility, len(cs))
	for i, c := range cs {
		vs[i] = sqsbatch.Visibility{Receipt: c.d.lease.Receipt(), Timeout: c.vis}
	}
	for i, err := range a.r.c.queue.ChangeVisibility(ctx, vs) {
		if err != nil {
			a.failed(cs[i].d, what(cs[i].vis), err)
			continue
		}
		if cs[i].vis == 0 {
			a.r.c.stats.released.Add(1)
		}
		a.r.done(cs[i].d)
	}
}

// failed reports a message whose acknowledgement was given up and frees its
// slot. It comes back after its visibility timeout, so a finished message
// may be handled again (SQS delivers at least once).
func (a *acker) failed(d *delivery, what string, err error) {
	a.r.c.stats.ackErrors.Add(1)
	a.r.warnLog.Error().Err(err).Str("message_id", d.ID).Str("ack", what).
		Msg("acknowledgement failed: message comes back after its visibility timeout")
	a.r.done(d)
}
