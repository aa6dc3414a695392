// Package health serves the worker's health endpoint: /healthz (the process
// is alive) and /readyz (the worker is consuming). `worker healthcheck` and
// ECS container health checks ask /readyz.
//
// Readiness deliberately ignores Weaviate's state: when Weaviate is away the
// worker pauses receiving and recovers by itself, and replacing the task
// would not bring Weaviate back. The body says what is degraded instead.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Server is the health endpoint.
type Server struct {
	mux    *http.ServeMux
	ready  atomic.Bool
	detail atomic.Pointer[func() map[string]any]
	srv    *http.Server
	ln     net.Listener
}

// Listen binds addr (host:port; port 0 picks a free one). The server answers
// not ready until SetReady(true).
func Listen(addr string) (*Server, error) {
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
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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

// SetReady says whether the worker is consuming.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// SetDetail sets a function whose result is shown in /readyz answers (for
// example the circuit breaker's state).
func (s *Server) SetDetail(f func() map[string]any) { s.detail.Store(&f) }

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{}
	if f := s.detail.Load(); f != nil {
		for k, v := range (*f)() {
			body[k] = v
		}
	}
	if !s.ready.Load() {
		body["status"] = "not ready"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ready"
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}
