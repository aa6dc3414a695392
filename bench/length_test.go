package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/store"
)

// Cost by a chat's length: the worker's Weaviate calls for chats that hold
// 10, 100 and 1,000 messages, side by side in one collection, so users see
// how the cost of an event grows with its chat's history.

// chatLengths are the lengths measured, and how many chats of each.
var chatLengths = []struct{ messages, chats int }{{10, 40}, {100, 40}, {1000, 8}}

// lengthResult is one length's closed-loop run.
type lengthResult struct {
	messages int
	limitResult
}

// lengthChat is chat i of the chats of length n.
func lengthChat(n, i int) string { return fmt.Sprintf("bench:len%d-%03d", n, i) }

// seedLengths stores every length's chats in p's Weaviate.
func seedLengths(ctx context.Context, st *store.Store) error {
	var chats []string
	var sizes []int
	for _, l := range chatLengths {
		for i := range l.chats {
			chats, sizes = append(chats, lengthChat(l.messages, i)), append(sizes, l.messages)
		}
	}
	return seedN(ctx, st, chats, sizes)
}

// lengths runs the worker's mix for each length's chats, concurrency loops
// for slice each.
func lengths(ctx context.Context, p *phase, concurrency int, slice time.Duration) ([]lengthResult, error) {
	var out []lengthResult
	for _, l := range chatLengths {
		chats := make([]string, l.chats)
		for i := range chats {
			chats[i] = lengthChat(l.messages, i)
		}
		events := workload.EventsFor(fmt.Sprintf("len%d", l.messages), chats, 400, workload.EventBase)
		settle(ctx, p.stack.Weaviate.Pid()) // the last length's writes flushed
		r, err := closedLoop(ctx, p, events, concurrency, slice, workerMix)
		if err != nil {
			return out, err
		}
		out = append(out, lengthResult{messages: l.messages, limitResult: r})
	}
	return out, nil
}
