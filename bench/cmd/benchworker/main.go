// Command benchworker is `worker run` for the benchmark only: the same
// app.Run as the worker binary, configured by the same environment, with two
// things the worker binary does not have and must not grow:
//
//   - -store memory replaces Weaviate with memstore.BenchOnlyMemoryStore,
//     which answers at once, so that what is measured is the worker's own
//     cost (bench row 3);
//   - -cpuprofile and -memprofile write pprof CPU and allocation profiles
//     of the run.
//
// It stops on SIGINT or SIGTERM like the worker.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/chatprep/chatprep/bench/memstore"
	"github.com/chatprep/chatprep/internal/app"
	"github.com/chatprep/chatprep/internal/config"
)

func main() {
	storeKind := flag.String("store", "weaviate", "weaviate (WEAVIATE_URL, as the worker) or memory (the benchmark-only in-memory stand-in)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the run to this file")
	flag.Parse()
	if err := run(*storeKind, *cpuProfile, *memProfile); err != nil {
		fmt.Fprintln(os.Stderr, "benchworker:", err)
		os.Exit(1)
	}
}

func run(storeKind, cpuProfile, memProfile string) error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	app.TuneGC(os.Getenv) // as worker run does
	opts := app.Options{Stdout: os.Stdout, Version: "bench"}
	switch storeKind {
	case "weaviate":
	case "memory":
		opts.Store = memstore.New()
	default:
		return fmt.Errorf("-store %q: want weaviate or memory", storeKind)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg, opts); err != nil {
		return err
	}
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return nil
}
