package bench

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/chatprep/chatprep/bench/workload"
	"github.com/chatprep/chatprep/internal/devstack"
	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/route"
	"github.com/chatprep/chatprep/internal/store"
)

// The seed's table: one message's preprocessing latency when every
// Weaviate call crosses a network of the given one-way latency, for the
// Lambda's two designs and chatprep.
//
// The model of the network: the devstack's delaying TCP proxy in front of
// Weaviate's REST and gRPC ports adds the latency to every chunk both ways,
// and a new connection first waits 2 round trips (TCP, then TLS 1.3: a
// production Weaviate, Weaviate Cloud for one, is reached over HTTPS). The
// model of the seed: its Lambda asked Weaviate over REST and GraphQL (the
// Python client of the time had no gRPC) on a new connection per call
// ("connection pooling planned next"): the serial design one call after
// another, the 5-thread executor all five at once. chatprep keeps its
// connections and searches over gRPC. With those, the seed's own figures
// come back: about 3 s serial and 0.6 s on the executor at 100 ms one way
// against the seed's 2–3 s and 0.8–1.2 s.

// seedDelays are the one-way latencies of the table.
var seedDelays = []time.Duration{20 * time.Millisecond, 100 * time.Millisecond}

// seedRow is one latency's measurements.
type seedRow struct {
	delay   time.Duration
	calls   []designResult // one call kind at a time, chatprep's store: the single calls
	designs []designResult // serial, executor5, chatprep
}

// slowestCall is the single call kind with the highest p50.
func (r seedRow) slowestCall() designResult {
	return slices.MaxFunc(r.calls, func(a, b designResult) int {
		return cmp.Compare(percentile(a.lat, 50), percentile(b.lat, 50))
	})
}

func (r seedRow) design(name string) designResult {
	for _, d := range r.designs {
		if d.name == name {
			return d
		}
	}
	return designResult{}
}

// weaviateProxies starts the devstack's delaying proxies in front of w's
// REST and gRPC ports, each new connection first waiting two round trips
// (TCP, then TLS 1.3); stop closes both.
func weaviateProxies(w *devstack.Weaviate) (rest, grpc *devstack.TCPProxy, stop func(), err error) {
	if rest, err = devstack.StartTCPProxy(strings.TrimPrefix(w.URL, "http://")); err != nil {
		return nil, nil, nil, err
	}
	if grpc, err = devstack.StartTCPProxy(w.GRPCAddr); err != nil {
		rest.Close()
		return nil, nil, nil, err
	}
	for _, proxy := range []*devstack.TCPProxy{rest, grpc} {
		proxy.SetConnectRoundTrips(2)
	}
	return rest, grpc, func() { rest.Close(); grpc.Close() }, nil
}

// seedTable measures the table on p's Weaviate, events per latency.
func seedTable(ctx context.Context, p *phase, perDelay map[time.Duration]int) ([]seedRow, error) {
	rest, grpc, stop, err := weaviateProxies(p.stack.Weaviate)
	if err != nil {
		return nil, err
	}
	defer stop()
	pooled, err := store.New(store.Config{URL: rest.URL(), GRPCAddr: grpc.Addr()})
	if err != nil {
		return nil, err
	}
	defer pooled.Close()
	// The seed's client: REST and GraphQL, a new connection per call.
	seedStore := func() (*store.Store, func()) {
		st, err := store.New(store.Config{URL: rest.URL(), Transport: &http.Transport{DisableKeepAlives: true}})
		if err != nil {
			panic(err) // only a bad config fails New, and this one is fixed
		}
		return st, st.Close
	}
	shared := func() (*store.Store, func()) { return pooled, func() {} }

	var rows []seedRow
	start := workload.EventBase.Add(time.Hour)
	for i, d := range seedDelays {
		rest.SetDelay(d)
		grpc.SetDelay(d)
		n := perDelay[d]
		next := func(name string) []workload.Event {
			evs := workload.Events(fmt.Sprintf("seed%d-%s", i, name), n, 1, start)
			start = start.Add(time.Second)
			return evs
		}
		row := seedRow{delay: d}
		// Warm chatprep's connections, as a running worker has them.
		if _, err := oneAtATime(ctx, "warm", shared, next("warm")[:3], serialDesign); err != nil {
			return rows, err
		}
		for _, k := range workerCalls {
			call := k
			r, err := oneAtATime(ctx, call.name, shared, next("call"), func(ctx context.Context, st *store.Store, ev event.Event, _ *route.Router) error {
				return call.do(ctx, st, ev)
			})
			if err != nil {
				return rows, err
			}
			row.calls = append(row.calls, r)
		}
		serial, err := oneAtATime(ctx, "serial", seedStore, next("serial"), serialDesign)
		if err != nil {
			return rows, err
		}
		exec5, err := oneAtATime(ctx, "executor5", seedStore, next("exec5"), executorDesign)
		if err != nil {
			return rows, err
		}
		// The seed's work (no neighbours, no references), then v3's.
		chat, err := chatprepOneAtATime(ctx, pooled, next("chatprep"), "chatprep", pipeline.Config{NoNeighbours: true, NoReferences: true})
		if err != nil {
			return rows, err
		}
		v3, err := chatprepOneAtATime(ctx, pooled, next("chatprepv3"), "chatprep-v3", pipeline.Config{})
		if err != nil {
			return rows, err
		}
		row.designs = []designResult{serial, exec5, chat, v3}
		rows = append(rows, row)
	}
	return rows, nil
}
