package store

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/tokens"
)

// Defaults of Config, applied by WithDefaults to zero fields.
const (
	// DefaultMaxConns caps the HTTP connections to Weaviate and keeps as many
	// idle for reuse. It matches the contract's default POOL_SIZE, so every
	// pool goroutine can have a request in flight without opening a new
	// connection.
	DefaultMaxConns = 64
	// DefaultIdleConnTimeout closes idle HTTP connections after this long.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultDialTimeout bounds opening a TCP connection, so an unreachable
	// Weaviate fails calls quickly instead of hanging until their deadline.
	DefaultDialTimeout = 2 * time.Second
	// DefaultRequestTimeout bounds every Weaviate call, also those whose
	// context has no deadline (schema setup, batch flushes).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultBatchSize is the most objects Put and SetMuted send in one
	// batch request.
	DefaultBatchSize = 100
	// DefaultBatchLinger is how long the batcher waits for more objects after
	// the first one before it sends a batch, under load (a Put after a quiet
	// linger time goes at once: internal/batcher).
	DefaultBatchLinger = 2 * time.Millisecond
	// DefaultBatchConcurrency is how many batch requests may be in flight at
	// once; objects arriving meanwhile gather into the next batch.
	DefaultBatchConcurrency = 2
	// DefaultMaxQueryTerms caps the words of a relevance query: a 16 KB
	// message would otherwise make BM25 look up thousands of terms.
	DefaultMaxQueryTerms = 256
	// DefaultHybridAlpha weighs vector against keyword relevance in a hybrid
	// search (Weaviate's own default), used when the messages collection has
	// a vectorizer.
	DefaultHybridAlpha = 0.75
)

// Config configures a Store. The zero value of every field but URL means its
// default.
type Config struct {
	// URL is Weaviate's REST endpoint (WEAVIATE_URL), like
	// http://127.0.0.1:8080. Required.
	URL string
	// APIKey is sent as "Authorization: Bearer" on every REST and gRPC call
	// (WEAVIATE_API_KEY). Empty: no key. It is never logged nor put in an
	// error.
	APIKey string
	// GRPCAddr is Weaviate's gRPC endpoint, host:port (Weaviate's default port
	// is 50051). When set, searches, the muted lookup and batch writes go over
	// gRPC, which costs Weaviate less than GraphQL (see the package doc).
	// Empty: everything goes over REST and GraphQL.
	GRPCAddr string
	// Logger receives the store's few log lines (schema changes and
	// warnings), as given: the caller adds its component field. Message text
	// is never logged. Zero value: no logging.
	Logger zerolog.Logger

	// MaxConns caps HTTP connections to Weaviate and keeps as many idle.
	// Default DefaultMaxConns.
	MaxConns int
	// IdleConnTimeout closes idle HTTP connections. Default
	// DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// DialTimeout bounds connecting to Weaviate. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds every call, whatever its context. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Transport, when set, carries the REST calls instead of the store's
	// own pooled transport (MaxConns, IdleConnTimeout and DialTimeout then
	// do not apply to them): for a proxy or TLS setup of the caller's, and
	// for the benchmark's model of a client that reuses no connection.
	Transport http.RoundTripper

	// BatchSize is the most objects per batch request. Default
	// DefaultBatchSize; 1 sends every object on its own.
	BatchSize int
	// BatchLinger is how long a batch waits for more objects, when objects
	// are arriving (one came less than BatchLinger before its first).
	// Default DefaultBatchLinger; negative: no waiting (a batch takes what
	// has already arrived).
	BatchLinger time.Duration
	// BatchConcurrency is how many batch requests may be in flight. Default
	// DefaultBatchConcurrency.
	BatchConcurrency int
	// Tenants is how many tenants EnsureSchema gives a new messages
	// collection (or one made multi-tenant without tenants). Default
	// DefaultTenants; negative: none, a collection without multi-tenancy
	// as chatprep made them before (tests of such collections). Only the
	// creation reads it: every process learns the tenants from the
	// collection.
	Tenants int

	// MaxQueryTerms caps the words of a relevance query. Default
	// DefaultMaxQueryTerms.
	MaxQueryTerms int
	// HybridAlpha is the hybrid search weight when the messages collection
	// has a vectorizer (1 = vector only). Default DefaultHybridAlpha.
	HybridAlpha float32

	// Tokens, when set, counts texts in the worker's TOKEN_ENCODING: Put
	// stores each message's count with it, and the searches return it in
	// ContextMessage.Tokens (counting, when read, a message stored without
	// a count in this encoding). Nil: no counts.
	Tokens *tokens.Counter
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.MaxConns = cmp.Or(c.MaxConns, DefaultMaxConns)
	c.IdleConnTimeout = cmp.Or(c.IdleConnTimeout, DefaultIdleConnTimeout)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.BatchLinger = cmp.Or(c.BatchLinger, DefaultBatchLinger)
	c.Tenants = cmp.Or(c.Tenants, DefaultTenants)
	c.BatchConcurrency = cmp.Or(c.BatchConcurrency, DefaultBatchConcurrency)
	c.MaxQueryTerms = cmp.Or(c.MaxQueryTerms, DefaultMaxQueryTerms)
	c.HybridAlpha = cmp.Or(c.HybridAlpha, DefaultHybridAlpha)
	return c
}

// validate reports every problem of c (after WithDefaults) at once.
func (c Config) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL is required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("URL %q is not an http(s) URL like http://127.0.0.1:8080", c.URL))
	}
	if c.GRPCAddr != "" {
		if _, port, err := net.SplitHostPort(c.GRPCAddr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("GRPCAddr %q is not host:port", c.GRPCAddr))
		}
	}
	positive := []struct {
		name string
		ok   bool
	}{
		{"MaxConns", c.MaxConns > 0},
		{"IdleConnTimeout", c.IdleConnTimeout > 0},
		{"DialTimeout", c.DialTimeout > 0},
		{"RequestTimeout", c.RequestTimeout > 0},
		{"BatchSize", c.BatchSize > 0},
		{"BatchConcurrency", c.BatchConcurrency > 0},
		{"MaxQueryTerms", c.MaxQueryTerms > 0},
	}
	for _, p := range positive {
		if !p.ok {
			errs = append(errs, fmt.Errorf("%s must be positive", p.name))
		}
	}
	if c.HybridAlpha < 0 || c.HybridAlpha > 1 {
		errs = append(errs, fmt.Errorf("HybridAlpha %v is not within [0, 1]", c.HybridAlpha))
	}
	return errors.Join(errs...)
}
