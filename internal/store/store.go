package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/rs/zerolog"
	"github.com/weaviate/weaviate-go-client/v4/weaviate"
	"github.com/weaviate/weaviate/entities/models"
)

// Collection names. Weaviate capitalises class names; these are exactly what
// EnsureSchema creates.
const (
	// MessagesCollection holds one object per stored message event.
	MessagesCollection = "ChatMessage"
	// StateCollection holds one object per mute or unmute event, and a
	// head per chat that had one (see state.go).
	StateCollection = "ChatState"
)

// grpcMaxMessage bounds gRPC messages both ways: a full batch of 16 KB texts
// is about 2 MB, a search answer far less.
const grpcMaxMessage = 32 << 20

// path is how the store asks Weaviate for searches and batch writes: over
// gRPC (grpcPath) or over GraphQL and REST (graphQLPath), one chosen by New.
// The muted lookup (a REST read by id, then for a chat ever muted a search
// of its state entries) and the schema calls are REST on both.
type path interface {
	name() string
	// history and relevant filter on sent_at <= before, or not at all for the
	// zero time.
	history(ctx context.Context, chatID string, role event.Role, before time.Time, limit int) ([]event.ContextMessage, error)
	relevant(ctx context.Context, chatID string, q relevanceQuery, vi vectorInfo, before time.Time, limit int) ([]event.ContextMessage, error)
	// batch writes the items in one request: the error Weaviate reported
	// for each item's object (nil for none), or the request's error. The
	// store then applies the write-confirmation rule (confirm).
	batch(ctx context.Context, items []*batchItem) ([]*Error, error)
	// find returns the event ids of the messages among q.ids that q's
	// filter (and BM25 query, when set) finds (see Unfindable).
	find(ctx context.Context, q findQuery) ([]string, error)
	// states returns up to limit of the chat's mute and unmute entries,
	// newest first (see state.go).
	states(ctx context.Context, chatID string, limit int) ([]stateEntry, error)
	// fetch is a filtered search of the chat's messages (see fetchQuery).
	fetch(ctx context.Context, q fetchQuery) ([]row, error)
	// ready fails while the path cannot work (its connection is failing).
	ready() error
	close()
}

// Store is chatprep's Weaviate store: message history, relevance search,
// idempotent writes and the chats' muted state. One Store per process; it is
// safe for concurrent use and holds one pooled HTTP transport, one Weaviate
// client and (with Config.GRPCAddr) one gRPC connection for all calls.
type Store struct {
	cfg       Config
	log       zerolog.Logger
	transport http.RoundTripper
	http      *http.Client
	client    *weaviate.Client
	restBase  string // URL + "/v1"
	auth      string // "Bearer <key>" or empty; never logged

	// paths is the search path in use: gRPC, or GraphQL and REST. New
	// chooses it; when Weaviate was down then, the first Ready that
	// reaches its REST endpoint decides (decideGRPC).
	paths    atomic.Pointer[chosenPath]
	decideMu sync.Mutex

	batcher *writes
	known   atomic.Pointer[facts] // the messages collection's; nil until learned
	// msgProps are the properties a search returns of a message: event_id,
	// role, text, sent_at and, with Config.Tokens, its count.
	msgProps []string
	calls    counters

	closeOnce sync.Once
	closed    atomic.Bool

	// testHookBeforeCreate, when set, runs between finding a collection
	// missing and creating it: tests make another process win the race.
	testHookBeforeCreate func(class string)
}

// New builds a Store for cfg. It does not need Weaviate to be up: calls fail
// with a transient *Error until it is. (The Weaviate client asks the server's
// version once while New runs; when that fails, nothing chatprep uses
// depends on it.)
func New(cfg Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("weaviate store config: %w", err)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("weaviate store config: %w", err)
	}
	s := &Store{
		cfg:      cfg,
		log:      cfg.Logger,
		restBase: strings.TrimRight(cfg.URL, "/") + "/v1",
	}
	if cfg.APIKey != "" {
		s.auth = "Bearer " + cfg.APIKey
	}
	s.msgProps = []string{propEventID, propRole, propText, propSentAt}
	if cfg.Tokens != nil {
		s.msgProps = append(s.msgProps, tokensProp(cfg.Tokens.Name()))
	}
	pooled := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   cfg.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          cfg.MaxConns,
		MaxIdleConnsPerHost:   cfg.MaxConns,
		MaxConnsPerHost:       cfg.MaxConns,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ExpectContinueTimeout: time.Second,
	}
	// With its own http.Client the Weaviate client ignores its Timeout and
	// AuthConfig: the client's timeout is ours, the key goes in as a header.
	s.transport = pooled
	if cfg.Transport != nil {
		s.transport = cfg.Transport
	}
	s.http = &http.Client{Transport: s.transport, Timeout: cfg.RequestTimeout}
	var headers map[string]string
	if s.auth != "" {
		headers = map[string]string{"Authorization": s.auth}
	}
	s.client = weaviate.New(weaviate.Config{
		Scheme:           u.Scheme,
		Host:             strings.TrimRight(strings.TrimPrefix(cfg.URL, u.Scheme+"://"), "/"),
		ConnectionClient: s.http,
		Headers:          headers,
	})
	s.paths.Store(&chosenPath{path: graphQLPath{s}})
	if cfg.GRPCAddr != "" {
		g, err := dialGRPC(s, u.Scheme == "https")
		if err != nil {
			s.closeIdle()
			return nil, err
		}
		s.chooseGRPC(g)
	}
	s.batcher = newBatcher(batcherConfig{
		size:        cfg.BatchSize,
		linger:      cfg.BatchLinger,
		concurrency: cfg.BatchConcurrency,
		timeout:     cfg.RequestTimeout,
	}, s.sendBatch)
	return s, nil
}

// chosenPath is the search path in use; pending while Weaviate has not been
// reached, so whether gRPC answers where REST does is not known yet.
type chosenPath struct {
	path
	pending *grpcPath
}

func (s *Store) path() path { return s.paths.Load().path }

// chooseGRPC keeps the gRPC path if its endpoint answers within
// DialTimeout. If Weaviate is not reachable at all yet (it comes up with
// both), gRPC is used and the choice is pending until the first Ready that
// reaches the REST endpoint. If only the REST endpoint answers, the address
// is wrong or blocked: see useGraphQL.
func (s *Store) chooseGRPC(g *grpcPath) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	defer cancel()
	if g.reachable(ctx) {
		s.paths.Store(&chosenPath{path: g})
		return
	}
	restCtx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	defer cancel()
	if _, _, err := s.rest(restCtx, http.MethodGet, "/.well-known/live"); err != nil {
		s.log.Info().Str("grpc_addr", g.addr).Str("weaviate_url", s.cfg.URL).
			Msg("Weaviate not reachable yet over REST nor gRPC: the first call that reaches it decides between gRPC and GraphQL")
		s.paths.Store(&chosenPath{path: g, pending: g})
		return
	}
	s.useGraphQL(g)
}

// decideGRPC settles a pending choice once Weaviate's REST endpoint has
// answered (Ready): gRPC if it answers within DialTimeout, else GraphQL.
func (s *Store) decideGRPC(ctx context.Context) {
	s.decideMu.Lock()
	defer s.decideMu.Unlock()
	g := s.paths.Load().pending
	if g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	if g.reachable(ctx) {
		s.paths.Store(&chosenPath{path: g})
		return
	}
	if ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded {
		return // the caller gave up: still pending
	}
	s.useGraphQL(g)
}

// useGraphQL gives up the gRPC path g whose endpoint does not answer while
// Weaviate's REST endpoint does (a wrong or blocked address): one warning
// naming WEAVIATE_GRPC_ADDR, and the searches go over GraphQL for the life
// of the Store.
func (s *Store) useGraphQL(g *grpcPath) {
	s.paths.Store(&chosenPath{path: graphQLPath{s}})
	g.close()
	s.log.Warn().Str("grpc_addr", g.addr).Float64("waited_ms", float64(s.cfg.DialTimeout.Milliseconds())).
		Msg("WEAVIATE_GRPC_ADDR: Weaviate's gRPC endpoint does not answer while its REST endpoint does; " +
			"searches use GraphQL (slower, more Weaviate CPU). Fix the address, open the port, or set WEAVIATE_GRPC_ADDR=off")
}

func (s *Store) closeIdle() {
	if t, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// SearchPath names how searches reach Weaviate: "grpc" or "graphql".
func (s *Store) SearchPath() string { return s.path().name() }

// Close sends the objects Put and SetMuted are still holding, waits for
// batches in flight, and closes the connections. Calls after Close fail with
// KindClosed. Close is idempotent.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.batcher.close()
		s.path().close()
		s.closeIdle()
	})
}

func (s *Store) closedError() *Error {
	return &Error{Kind: KindClosed, Err: ErrClosed}
}

// Ready tells whether the store can work: Weaviate answers an authenticated
// call (so a refused API key makes it not ready), both collections exist
// with every property this version writes (checkClass), and the gRPC
// connection, when used, is not failing. Two small REST calls (the
// collections' schemas); app calls it until it succeeds before receiving.
func (s *Store) Ready(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("weaviate ready: %w", s.closedError())
	}
	s.calls.ready.Add(1)
	err := s.readyClass(ctx, MessagesClass())
	if err == nil {
		err = s.readyClass(ctx, StateClass())
	}
	if err == nil {
		_, err = s.facts(ctx) // the tenants, complete
	}
	if err == nil {
		s.decideGRPC(ctx)
		err = s.path().ready()
	}
	if err != nil {
		s.calls.failed.Add(1)
		return fmt.Errorf("weaviate ready: %w", err)
	}
	return nil
}

// readyClass checks that want's collection exists with every property this
// version writes.
func (s *Store) readyClass(ctx context.Context, want *models.Class) error {
	status, body, err := s.rest(ctx, http.MethodGet, "/schema/"+want.Class)
	switch {
	case err != nil:
		return err
	case status == http.StatusNotFound:
		return &Error{Kind: KindRejected, Status: status, Detail: "collection " + want.Class + " does not exist; run `worker setup`"}
	case status != http.StatusOK:
		return s.statusError(status, body)
	}
	var have models.Class
	if err := json.Unmarshal(body, &have); err != nil {
		return &Error{Kind: KindRejected, Status: status, Detail: "unreadable schema of " + want.Class, Err: err}
	}
	return checkClass(want, &have)
}

// counters count Weaviate calls by kind; cheap enough for every call.
type counters struct {
	history, relevant, following, references, muted, states, batches, objects, schema, ready, failed, refetched, deletes atomic.Uint64
}

// Stats are the store's Weaviate calls since New, by kind.
type Stats struct {
	History  uint64 // history searches (one per History call)
	Relevant uint64 // relevance searches (one per Relevant call with a searchable text)
	// Following counts the searches for passages' neighbours (one or two
	// per Following call with hits).
	Following uint64
	// References counts the searches for a chat's ERP references.
	References uint64
	Muted      uint64 // reads of a chat's state head by id (Muted and SetMuted each make one)
	States     uint64 // searches of a chat's mute and unmute entries (a Muted of a chat that has them)
	Batches    uint64 // batch write requests (Put and SetMuted, many objects each)
	Objects    uint64 // objects sent in batch requests
	Schema     uint64 // schema reads and changes
	Ready      uint64 // readiness probes
	Deletes    uint64 // batch deletes and counts (dry runs), deletes by id (worker forget)
	Failed     uint64 // calls of any kind that failed
	// Refetched counts searches made again with the sent_at filter, because
	// messages newer than the event crowded the first answer (counted in
	// History and Relevant too).
	Refetched uint64
}

// Calls is the number of requests sent to Weaviate.
func (st Stats) Calls() uint64 {
	return st.History + st.Relevant + st.Following + st.References + st.Muted + st.States + st.Batches + st.Schema + st.Ready + st.Deletes
}

// Stats returns the call counters.
func (s *Store) Stats() Stats {
	return Stats{
		History:  s.calls.history.Load(),
		Relevant: s.calls.relevant.Load(),

		Following:  s.calls.following.Load(),
		References: s.calls.references.Load(),
		Muted:      s.calls.muted.Load(),
		States:     s.calls.states.Load(),
		Batches:    s.calls.batches.Load(),
		Objects:    s.calls.objects.Load(),
		Schema:     s.calls.schema.Load(),
		Deletes:    s.calls.deletes.Load(),
		Ready:      s.calls.ready.Load(),
		Failed:     s.calls.failed.Load(),

		Refetched: s.calls.refetched.Load(),
	}
}
