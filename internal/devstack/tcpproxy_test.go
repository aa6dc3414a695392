package devstack_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/chatprep/chatprep/internal/devstack"
)

func startProxy(t *testing.T, target string) *devstack.TCPProxy {
	t.Helper()
	p, err := devstack.StartTCPProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// get does one GET through client and returns the body and how long it took.
func get(t *testing.T, client *http.Client, url string) (string, time.Duration, error) {
	t.Helper()
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return "", time.Since(start), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), time.Since(start), err
}

func TestTCPProxyForwardsDelaysAndBreaks(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pong "+r.URL.Path) //nolint:errcheck
	}))
	defer srv.Close()
	p := startProxy(t, srv.Listener.Addr().String())
	transport := &http.Transport{MaxIdleConnsPerHost: 1}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	body, fast, err := get(t, client, p.URL()+"/a")
	if err != nil || body != "pong /a" {
		t.Fatalf("through the proxy: %q, %v", body, err)
	}

	const d = 250 * time.Millisecond
	p.SetDelay(d)
	// The same keep-alive connection is slowed too: both directions, so at
	// least 2d per round trip.
	body, slow, err := get(t, client, p.URL()+"/b")
	if err != nil || body != "pong /b" {
		t.Fatalf("delayed: %q, %v", body, err)
	}
	if slow < 2*d {
		t.Errorf("delayed round trip took %v, want at least %v", slow, 2*d)
	}
	p.SetDelay(0)
	if _, again, err := get(t, client, p.URL()+"/c"); err != nil || again >= 2*d {
		t.Errorf("after SetDelay(0): %v, %v (first call took %v)", again, err, fast)
	}

	// Down: the open connection breaks and new ones are reset.
	p.SetDown(true)
	if body, _, err := get(t, client, p.URL()+"/d"); err == nil {
		t.Errorf("down: got %q, want an error", body)
	}
	if body, _, err := get(t, client, p.URL()+"/e"); err == nil {
		t.Errorf("down, new connection: got %q, want an error", body)
	}
	p.SetDown(false)
	if body, _, err := get(t, client, p.URL()+"/f"); err != nil || body != "pong /f" {
		t.Errorf("up again: %q, %v", body, err)
	}
}

// TestTCPProxyCarriesGRPC: HTTP/2 and gRPC pass unchanged (Weaviate's gRPC
// port sits behind such a proxy in the fault suite).
func TestTCPProxyCarriesGRPC(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(ln) //nolint:errcheck // ends with Stop
	defer gs.Stop()
	p := startProxy(t, ln.Addr().String())
	conn, err := grpc.NewClient(p.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC through the proxy: %v, %v", resp, err)
	}
	p.SetDelay(200 * time.Millisecond)
	short, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	if _, err := healthpb.NewHealthClient(conn).Check(short, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("a call with a deadline below the delay succeeded")
	}
}

// TestTCPProxyTargetGoneAndClose: with nothing listening behind it the proxy
// resets each connection; Close returns at once even with delayed data
// pending, and the port no longer answers.
func TestTCPProxyTargetGoneAndClose(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	p := startProxy(t, gone)
	client := &http.Client{Timeout: 5 * time.Second}
	if body, _, err := get(t, client, p.URL()+"/x"); err == nil {
		t.Fatalf("target gone: got %q, want an error", body)
	}

	reached, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(reached)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "late") //nolint:errcheck
	}))
	defer srv.Close()
	q, err := devstack.StartTCPProxy(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := get(t, client, q.URL()+"/held")
		errc <- err
	}()
	select {
	case <-reached:
	case err := <-errc:
		t.Fatalf("request ended before reaching the server: %v", err)
	}
	// The answer is written after the delay is set: the proxy holds it.
	q.SetDelay(time.Hour)
	close(release)
	start := time.Now()
	if err := q.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with delayed data pending", took)
	}
	if err := <-errc; err == nil {
		t.Error("the delayed request succeeded after Close")
	}
	if c, err := net.DialTimeout("tcp", q.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts connections after Close")
	}
}
