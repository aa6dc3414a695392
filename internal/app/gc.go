package app

import "runtime/debug"

// GC settings of a worker whose operator set none.
const (
	// GCPercent lets the heap grow to five times the live heap between
	// collections. The worker's live heap is a few tens of MB while the
	// garbage it makes per event (results, SDK requests, search answers)
	// is large: at Go's default of 100 the collector took about a third of
	// the worker's CPU (bench row 4: 235 µs of CPU per event at 100, 160 µs
	// at 400).
	GCPercent = 400
	// MemoryLimit is the soft limit under which the collector works harder
	// instead of growing the heap further (1 GiB; the task definition gives
	// the worker 2 GB).
	MemoryLimit = 1 << 30
)

// TuneGC applies GCPercent and MemoryLimit unless the Go runtime's own
// GOGC and GOMEMLIMIT (read through getenv) say otherwise.
func TuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
