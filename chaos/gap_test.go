package chaos_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/devstack/weaviatetest"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/store"
	"github.com/chatprep/chatprep/internal/store/storetest"
	"github.com/chatprep/chatprep/internal/verify"
)

var gapKills = flag.Int("chaos.gap", 0, "TestIndexGapAfterKills: SIGKILL Weaviate during writes up to this many times, "+
	"until `worker verify` finds an index gap (default: 2 in the short form, 40 in the long)")

// gapWriters write at once: as many as a worker's pool (64) and more, so
// that batches hold dozens of objects, as a busy worker's do. Weaviate
// writes a batch's objects first and their index entries after, each LSM
// bucket through its own buffered log that is flushed when the batch ends
// (adapters/repos/db/shard_write_batch_objects.go, flushWALs): a SIGKILL
// in between keeps what the large objects overflowed to the log and loses
// the small index entries still buffered. With batches of a few objects
// nothing overflows and the whole batch is lost together.
const gapWriters = 128

// TestIndexGapAfterKills hunts the fault seen once in a long chaos run:
// after a SIGKILL, Weaviate keeps an object but not all of its index
// entries. It SIGKILLs a Weaviate server (the devstack's settings) at a
// random moment while gapWriters writers store messages, restarts it, and runs
// verify over everything written so far; it stops at the first gap, or
// after -chaos.gap kills. Whatever gaps it finds, verify --repair must
// repair them all (asserted). It logs how many kills it took, and how many
// acknowledged writes were lost by id altogether (Weaviate's durability,
// reported, not asserted).
func TestIndexGapAfterKills(t *testing.T) {
	parallel(t)
	kills := *gapKills
	if kills == 0 {
		kills = 2
		if *full {
			kills = 40
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(kills)*time.Minute+5*time.Minute)
	defer cancel()
	w := weaviatetest.Start(t, devstack.WeaviateOptions{})
	newStore := func() *store.Store {
		st, err := store.New(store.Config{URL: w.URL, GRPCAddr: w.GRPCAddr})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := newStore()
	if err := st.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	var acked sync.Map // [chat, event id] of every Put that returned nil
	written := 0
	for kill := 1; kill <= kills; kill++ {
		st := newStore()
		wctx, stop := context.WithCancel(ctx)
		var n atomic.Int64
		var wg sync.WaitGroup
		for g := range gapWriters {
			wg.Go(func() {
				for i := 0; wctx.Err() == nil; i++ {
					chat := fmt.Sprintf("k%d-c%d", kill, (g*7+i)%48)
					id := fmt.Sprintf("k%d-g%d-%d", kill, g, i)
					role := event.RoleUser
					if i%2 == 1 {
						role = event.RoleAssistant
					}
					ev := event.Event{EventID: id, ChatID: chat, Role: role, SentAt: time.Now().UTC(),
						Text: fmt.Sprintf("%s order S%05d delivery %s invoice", vocabulary[i%len(vocabulary)], i, vocabulary[(g+i)%len(vocabulary)])}
					if err := st.Put(wctx, ev); err == nil {
						acked.Store([2]string{chat, id}, true)
						n.Add(1)
					}
				}
			})
		}
		pause(ctx, time.Duration(500+rng.IntN(4000))*time.Millisecond)
		w.Kill()
		stop()
		wg.Wait()
		st.Close()
		written += int(n.Load())
		if err := w.Restart(ctx); err != nil {
			t.Fatal(err)
		}

		st = newStore()
		if err := st.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		scanned, missing := checkRound(ctx, t, st, fmt.Sprintf("k%d-", kill))
		// Every acknowledged write read by id, eight at a time (thousands
		// of reads: one after another they were most of the test's time).
		var lost atomic.Int64
		readFrom := time.Now()
		byID := storetest.Reader{URL: w.URL}
		keys := make(chan [2]string)
		var readers sync.WaitGroup
		for range 8 {
			readers.Go(func() {
				for key := range keys {
					if props, err := byID.Get(ctx, key[0], key[1]); err == nil && props == nil {
						lost.Add(1)
					}
				}
			})
		}
		acked.Range(func(k, _ any) bool {
			keys <- k.([2]string)
			return true
		})
		close(keys)
		readers.Wait()
		t.Logf("kill %d: %d acknowledged writes so far, %d objects, %d of this round's missed by a search, %d acknowledged writes not there by id (read in %v)",
			kill, written, scanned, missing, lost.Load(), time.Since(readFrom).Round(100*time.Millisecond))
		if missing == 0 {
			st.Close()
			continue
		}
		var out bytes.Buffer
		if _, err := verify.Run(ctx, st, verify.Options{Out: &out}); err != nil {
			t.Fatal(err)
		}
		t.Logf("index gap after %d SIGKILLs during writes (%d acknowledged writes):\n%s", kill, written, out.String())
		rep, err := verify.Run(ctx, st, verify.Options{Out: io.Discard, Repair: true})
		if err != nil || rep.Repaired != rep.Missing {
			t.Errorf("verify --repair: %+v, %v; want every gap repaired", rep, err)
		}
		if rep, err := verify.Run(ctx, st, verify.Options{Out: io.Discard}); err != nil || rep.Missing != 0 {
			t.Errorf("verify after the repair: %+v, %v; want nothing missing", rep, err)
		}
		st.Close()
		return
	}
	t.Logf("no index gap after %d SIGKILLs during writes (%d acknowledged writes)", kills, written)
}

// checkRound asks the worker's searches for every stored message of the
// chats named with prefix (one round's), as verify does, and returns how
// many objects it scanned and how many of those messages a search missed.
func checkRound(ctx context.Context, t *testing.T, st *store.Store, prefix string) (scanned, missing int) {
	t.Helper()
	byChat := map[string][]store.StoredMessage{}
	for after := ""; ; {
		page, err := st.ScanMessages(ctx, after, verify.DefaultPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		scanned += len(page)
		for _, m := range page {
			if strings.HasPrefix(m.ChatID, prefix) {
				byChat[m.ChatID] = append(byChat[m.ChatID], m)
			}
		}
		after = page[len(page)-1].Cursor
	}
	for chat, ms := range byChat {
		miss, err := st.Unfindable(ctx, chat, ms)
		if err != nil {
			t.Fatal(err)
		}
		missing += len(miss)
	}
	return scanned, missing
}
