package kumofix

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Endpoint is one more endpoint to a Proxy, with faults of its own: the
// same emulator and the same proxy state as URL (a message sent through one
// endpoint is received through any other, deduplication ids and long polls
// are shared, calls are counted in Calls), but SetFault on it affects only
// the calls made through it. A fault test gives each part that runs at once
// with others (a scenario's workers) an endpoint, so that no part feels
// another's fault.
type Endpoint struct {
	srv    *http.Server
	ln     net.Listener
	faults faultSlot
}

// NewEndpoint starts an endpoint on a free loopback port. Close stops it;
// the proxy's Close stops those still open.
func (p *Proxy) NewEndpoint() (*Endpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Endpoint{ln: ln}
	e.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, &e.faults) })}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return nil, net.ErrClosed
	}
	p.endpoints = append(p.endpoints, e)
	p.mu.Unlock()
	go e.srv.Serve(ln) //nolint:errcheck // ends with Close
	return e, nil
}

// URL is the endpoint, http://127.0.0.1:PORT.
func (e *Endpoint) URL() string { return "http://" + e.ln.Addr().String() }

// SetFault makes this endpoint answer calls with f(api) instead of
// forwarding them, as Proxy.SetFault does for URL; nil forwards everything.
func (e *Endpoint) SetFault(f func(api string) Fault) { e.faults.set(f) }

// Close stops the endpoint (more than once is fine).
func (e *Endpoint) Close() { e.srv.Close() }

// faultSlot holds an endpoint's fault function.
type faultSlot struct {
	mu sync.Mutex
	f  func(api string) Fault
}

func (s *faultSlot) set(f func(api string) Fault) {
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
}

// get is the fault function; nil for a nil slot (an endpoint without
// faults) or when none is set.
func (s *faultSlot) get() func(api string) Fault {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}
