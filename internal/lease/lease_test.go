package lease_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"

	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/lease"
	"github.com/chatprep/chatprep/internal/sqsbatch"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// extender is a hand-written fake: answer decides each change's outcome.
type extender struct {
	mu     sync.Mutex
	calls  int
	answer func(call int, v sqsbatch.Visibility) error
	before func(call int) // runs before answering, outside the lock
}

var _ lease.Extender = (*extender)(nil)

func (e *extender) ChangeVisibility(_ context.Context, changes []sqsbatch.Visibility) []error {
	e.mu.Lock()
	call := e.calls
	e.calls++
	e.mu.Unlock()
	if e.before != nil {
		e.before(call)
	}
	errs := make([]error, len(changes))
	for i, v := range changes {
		if e.answer != nil {
			errs[i] = e.answer(call, v)
		}
	}
	return errs
}

func run(t *testing.T, ext lease.Extender) *lease.Keeper {
	t.Helper()
	k, err := lease.New(ext, lease.Config{VisibilityTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { k.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return k
}

// TestHeldLeaseOutlivesItsVisibility: a lease held for three visibility
// timeouts is extended in time, every time, and is not lost.
func TestHeldLeaseOutlivesItsVisibility(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		extensions := make(chan sqsbatch.Visibility, 100)
		ext := &extender{answer: func(_ int, v sqsbatch.Visibility) error { extensions <- v; return nil }}
		k := run(t, ext)
		lost := make(chan string, 1)
		l := k.Hold("r-1", time.Now(), func(why string) { lost <- why })
		deadline := time.Now().Add(time.Second)
		for range 3 {
			select {
			case v := <-extensions:
				if v.Receipt != "r-1" || v.Timeout != time.Second {
					t.Fatalf("extension %+v", v)
				}
				if time.Now().After(deadline) {
					t.Fatal("extended after the deadline")
				}
				deadline = time.Now().Add(time.Second)
			case why := <-lost:
				t.Fatalf("lease lost: %s", why)
			}
		}
		// The third extension may still be in flight (the fake reports it
		// before answering): then End holds the action back until it returns,
		// and that extension is not counted, the lease having ended.
		ran := make(chan struct{})
		if !k.End(l, func() { close(ran) }) {
			t.Fatal("End reported a held lease lost")
		}
		<-ran
		if s := k.Stats(); s.Extended < 2 || s.Lost != 0 {
			t.Errorf("stats %+v, want at least the first two extensions counted and nothing lost", s)
		}
	})
}

// TestEndWaitsForTheExtensionInFlight: ending a lease while its extension
// is in flight runs the owner's action only once that call returned.
func TestEndWaitsForTheExtensionInFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		inCall, release := make(chan struct{}), make(chan struct{})
		ext := &extender{before: func(call int) {
			if call == 0 {
				close(inCall)
				<-release
			}
		}}
		k := run(t, ext)
		l := k.Hold("r-1", time.Now(), nil)
		<-inCall
		ran := make(chan struct{})
		if !k.End(l, func() { close(ran) }) {
			t.Fatal("End reported the lease lost")
		}
		select {
		case <-ran:
			t.Fatal("the action ran while the extension was in flight")
		default:
		}
		close(release)
		<-ran
	})
}

// TestRefusedReceiptLosesTheLease: a permanent refusal loses the lease at
// once; its owner hears why, and End reports it.
func TestRefusedReceiptLosesTheLease(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ext := &extender{answer: func(int, sqsbatch.Visibility) error {
			return &sqsbatch.Error{Op: "ChangeMessageVisibilityBatch", Code: "ReceiptHandleIsInvalid", SenderFault: true}
		}}
		k := run(t, ext)
		lost := make(chan string, 1)
		l := k.Hold("r-1", time.Now(), func(why string) { lost <- why })
		<-lost
		if k.End(l, func() { t.Error("the action of a lost lease ran") }) {
			t.Error("End of a lost lease reported true")
		}
		if s := k.Stats(); s.Lost != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

// TestFailingExtensionsLoseTheLeaseAtItsDeadline: failures that are not
// SQS refusing the receipt handle — an entry failed on SQS's side, or the
// whole call failed, even for a reason that will not pass by itself
// (expired credentials) — are retried until the deadline, then the lease is
// lost, not before.
func TestFailingExtensionsLoseTheLeaseAtItsDeadline(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]error{
		"entry failed on SQS's side": &sqsbatch.Error{Op: "ChangeMessageVisibilityBatch", Code: "InternalError"},
		"call failed for good": &sqsbatch.Error{Op: "ChangeMessageVisibilityBatch",
			Err: &smithy.GenericAPIError{Code: "ExpiredToken", Message: "the security token expired", Fault: smithy.FaultClient}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { testLostAtDeadline(t, fail) })
		})
	}
}

// testLostAtDeadline is one case of
// TestFailingExtensionsLoseTheLeaseAtItsDeadline, in virtual time.
func testLostAtDeadline(t *testing.T, fail error) {
	ext := &extender{answer: func(int, sqsbatch.Visibility) error { return fail }}
	k := run(t, ext)
	lost := make(chan string, 1)
	start := time.Now()
	k.Hold("r-1", start, func(why string) { lost <- why })
	why := <-lost
	if since := time.Since(start); since < time.Second {
		t.Errorf("lost after %v (%s), before its deadline", since, why)
	}
	ext.mu.Lock()
	defer ext.mu.Unlock()
	if ext.calls < 2 {
		t.Errorf("%d extension calls: not retried", ext.calls)
	}
}
