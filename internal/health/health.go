// Package health serves the worker's health endpoint: /healthz (the process
// is alive), /readyz (the worker consumes) and /debug/vars. `worker
// healthcheck` and ECS container health checks ask /readyz.
//
// Readiness (CONTRACT.md, Health) is answered from the dependencies the
// worker must have reached once since it started (Require: for the worker,
// Weaviate and the input queue, which it reaches with a ReceiveMessage that
// succeeds, so it then consumes), until Stop (SIGTERM). It is 200 only when
// every dependency was reached and the worker is not stopping; otherwise
// 503, with a body that names what is not reached yet and why, or says
// "stopping". A dependency that was reached stays reached:
// a later outage pauses the worker, which resumes by itself, and replacing
// the task would not bring the dependency back.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/logbridge"
)

// Status values of a /readyz body.
const (
	StatusReady    = "ready"
	StatusNotReady = "not ready"
	StatusStopping = "stopping"
)

// Server is the health endpoint.
type Server struct {
	mux      *http.ServeMux
	stopping atomic.Bool
	detail   atomic.Pointer[func() map[string]any]
	srv      *http.Server
	ln       net.Listener

	mu   sync.Mutex
	deps []*Dependency
}

// Listen binds addr (host:port; port 0 picks a free one). The server
// answers not ready until every Require'd dependency is reached (with none,
// it is ready at once). The HTTP server's own errors go to log at warn.
func Listen(addr string, log zerolog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health endpoint on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	s := &Server{ln: ln, mux: mux}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: stdlog.New(logbridge.Writer(log, zerolog.WarnLevel), "", 0)}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health endpoint: %w", err)
	}
	return nil
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

// HandleVars serves vars() as JSON at /debug/vars: the worker's counters
// (messages, SQS and Weaviate calls, pool, metrics, goroutines, memory), for
// operators, the benchmark and the fault suite. Call before Serve.
func (s *Server) HandleVars(vars func() map[string]any) {
	s.mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, vars())
	})
}

// Stop makes /readyz answer 503 "stopping" from now on (SIGTERM: the
// worker drains and exits).
func (s *Server) Stop() { s.stopping.Store(true) }

// SetDetail sets a function whose result is shown in /readyz answers (for
// example the circuit breaker's state).
func (s *Server) SetDetail(f func() map[string]any) { s.detail.Store(&f) }

// Require adds a dependency readiness waits for, under name (its key in
// the /readyz body). Call before Serve.
func (s *Server) Require(name string) *Dependency {
	d := &Dependency{name: name, reached: make(chan struct{})}
	s.mu.Lock()
	s.deps = append(s.deps, d)
	s.mu.Unlock()
	return d
}

// Dependency is something the worker must have reached once since it
// started before it is ready. Safe for concurrent use.
type Dependency struct {
	name    string
	once    sync.Once
	reached chan struct{}
	why     atomic.Pointer[string]
}

// Reach marks the dependency reached, for good.
func (d *Dependency) Reach() { d.once.Do(func() { close(d.reached) }) }

// Reached is closed once the dependency is reached.
func (d *Dependency) Reached() <-chan struct{} { return d.reached }

// IsReached tells whether the dependency was reached.
func (d *Dependency) IsReached() bool {
	select {
	case <-d.reached:
		return true
	default:
		return false
	}
}

// Waiting says why the dependency is not reached yet (the last error of a
// try, or what it waits for); /readyz shows it until Reach.
func (d *Dependency) Waiting(why string) { d.why.Store(&why) }

func (d *Dependency) state() map[string]any {
	if d.IsReached() {
		return map[string]any{"reached": true}
	}
	st := map[string]any{"reached": false}
	if why := d.why.Load(); why != nil {
		st["waiting"] = *why
	}
	return st
}

// readyz answers 200 {"status":"ready", …} or 503 with status "not ready"
// (and not_reached, the names of the dependencies not reached yet) or
// "stopping"; each dependency's state under its name, and the detail.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{}
	if f := s.detail.Load(); f != nil {
		for k, v := range (*f)() {
			body[k] = v
		}
	}
	s.mu.Lock()
	deps := s.deps
	s.mu.Unlock()
	notReached := []string{}
	for _, d := range deps {
		body[d.name] = d.state()
		if !d.IsReached() {
			notReached = append(notReached, d.name)
		}
	}
	switch {
	case s.stopping.Load():
		body["status"] = StatusStopping
	case len(notReached) > 0:
		body["status"] = StatusNotReady
		body["not_reached"] = notReached
	default:
		body["status"] = StatusReady
		writeJSON(w, http.StatusOK, body)
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// Close closes the listener of a server that never served (Shutdown stops
// one that did).
func (s *Server) Close() error {
	err := s.srv.Close()
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
