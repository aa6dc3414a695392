package devstack

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// TCPProxy forwards TCP connections on a loopback port to a target address,
// and can make them slow or break them, for fault tests. It knows nothing of
// the protocol, so it serves Weaviate's REST (HTTP/1.1) and gRPC (HTTP/2)
// ports alike: point WEAVIATE_URL and WEAVIATE_GRPC_ADDR of a worker at two
// proxies in front of the real server.
type TCPProxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup // the accept loop and every connection's pumps

	mu     sync.Mutex
	delay  time.Duration
	setup  int // round trips a new connection costs before its first data (see SetConnectRoundTrips)
	down   bool
	closed bool
	conns  map[*proxyConn]struct{}
}

// proxyConn is one client connection and its connection to the target.
type proxyConn struct {
	client, upstream net.Conn
	once             sync.Once
	done             chan struct{} // closed by close
}

// close ends both sides; a client sees a reset, not an orderly end.
func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.done)
		if tc, ok := c.client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST
		}
		c.client.Close()
		if c.upstream != nil {
			c.upstream.Close()
		}
	})
}

// StartTCPProxy listens on a free loopback port and forwards each
// connection to target (host:port).
func StartTCPProxy(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start TCP proxy to %s: %w", target, err)
	}
	p := &TCPProxy{target: target, ln: ln, conns: map[*proxyConn]struct{}{}, setup: 1}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's address, 127.0.0.1:PORT.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// URL is "http://" + Addr(), for a REST endpoint behind the proxy.
func (p *TCPProxy) URL() string { return "http://" + p.Addr() }

// SetDelay makes every chunk of data, in either direction, arrive d after
// the proxy read it: a one-way latency of d, so a request and its answer
// take at least 2d longer. A new connection also waits a round trip (2d)
// before its first data goes through, as a TCP handshake costs on a real
// network (the proxy's own accept is local and free; see
// SetConnectRoundTrips for TLS): a client that opens a connection per call
// pays for it, one that reuses them does not.
// Throughput is kept (chunks are not serialised behind each other's
// delay). It applies to data read from now on, on new and open connections;
// 0 forwards at once.
func (p *TCPProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = max(d, 0)
	p.mu.Unlock()
}

// SetConnectRoundTrips sets how many round trips (each 2×delay) a new
// connection waits before its first data: 1 by default, a TCP handshake; 2
// models a TLS 1.3 endpoint (TCP, then TLS), 3 TLS 1.2.
func (p *TCPProxy) SetConnectRoundTrips(n int) {
	p.mu.Lock()
	p.setup = max(n, 0)
	p.mu.Unlock()
}

// SetDown(true) breaks every open connection (the client sees a reset) and
// resets each new one at once, as a server that went away would;
// SetDown(false) forwards again.
func (p *TCPProxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	var open []*proxyConn
	if down {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		c.close()
	}
}

// Close stops listening, breaks every open connection and waits for the
// proxy's goroutines to end.
func (p *TCPProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	open := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		open = append(open, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range open {
		c.close()
	}
	p.wg.Wait()
	return err
}

func (p *TCPProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		c := &proxyConn{client: client, done: make(chan struct{})}
		p.mu.Lock()
		if p.down || p.closed {
			p.mu.Unlock()
			c.close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *TCPProxy) serve(c *proxyConn) {
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return // the client sees a reset, as if the target refused it
	}
	p.mu.Lock()
	c.upstream = upstream
	broken := p.down || p.closed
	p.mu.Unlock()
	if broken { // SetDown or Close ran while we dialled
		upstream.Close()
		return
	}
	p.mu.Lock()
	handshake := 2 * p.delay * time.Duration(p.setup)
	p.mu.Unlock()
	if handshake > 0 {
		t := time.NewTimer(handshake)
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return
		}
	}
	var both sync.WaitGroup
	both.Go(func() { p.pump(c, c.upstream, c.client) })
	both.Go(func() { p.pump(c, c.client, c.upstream) })
	both.Wait()
}

// chunk is data read from one side, due to be written to the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst, each chunk held back by the delay in force when
// it was read. When either side ends, the whole connection ends.
func (p *TCPProxy) pump(c *proxyConn, dst, src net.Conn) {
	defer c.close()
	chunks := make(chan chunk, 64)
	var writer sync.WaitGroup
	writer.Go(func() {
		defer func() {
			c.close()
			for range chunks { // let the reader finish
			}
		}()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for ch := range chunks {
			if wait := time.Until(ch.due); wait > 0 {
				timer.Reset(wait) // the latency being simulated
				select {
				case <-timer.C:
				case <-c.done:
					return
				}
			}
			if _, err := dst.Write(ch.data); err != nil {
				return
			}
		}
	})
	defer writer.Wait()
	defer close(chunks)
	for {
		buf := make([]byte, 32*1024)
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			chunks <- chunk{data: buf[:n], due: time.Now().Add(d)}
		}
		if err != nil {
			return // EOF, a reset or closed by us: the connection ends either way
		}
	}
}
