package store

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	pb "github.com/weaviate/weaviate/grpc/generated/protocol/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/chatprep/chatprep/internal/event"
)

// grpcPath asks Weaviate over gRPC: searches with the protobuf API (no
// GraphQL parsing on the server) and batch writes. It connects lazily, on
// the first call, and reconnects quickly (at most every 2s) after Weaviate
// comes back.
type grpcPath struct {
	s    *Store
	addr string
	conn *grpc.ClientConn
	api  pb.WeaviateClient
}

var _ path = (*grpcPath)(nil)

func (g *grpcPath) name() string { return "grpc" }

// ready fails while the connection is failing.
func (g *grpcPath) ready() error {
	if g.conn.GetState() == connectivity.TransientFailure {
		return &Error{Kind: KindUnavailable, Detail: "gRPC connection to " + g.addr + " is failing"}
	}
	return nil
}

func (g *grpcPath) close() { _ = g.conn.Close() } // only fails if already closed

// reachable connects and reports whether the connection is ready before
// ctx ends.
func (g *grpcPath) reachable(ctx context.Context) bool {
	g.conn.Connect()
	for {
		st := g.conn.GetState()
		if st == connectivity.Ready {
			return true
		}
		if !g.conn.WaitForStateChange(ctx, st) {
			return false
		}
	}
}

// gRPC flow-control windows (see dialGRPC): a stream's, wider than any
// reply chatprep asks for (the largest, a relevance search, is a few dozen
// texts of at most 16 KB), and the connection's, for a few of them at once.
// A larger reply still arrives, in steps.
const (
	grpcStreamWindow = 4 << 20
	grpcConnWindow   = 8 << 20
)

// dialGRPC sets up the gRPC path to s.cfg.GRPCAddr (TLS when Weaviate's URL
// is https).
func dialGRPC(s *Store, tlsOn bool) (*grpcPath, error) {
	creds := insecure.NewCredentials()
	if tlsOn {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   2 * time.Second,
			},
			MinConnectTimeout: s.cfg.DialTimeout,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(grpcMaxMessage),
			grpc.MaxCallSendMsgSize(grpcMaxMessage),
		),
		// Fixed flow-control windows wide enough for any reply: with
		// gRPC's default (64 KiB, grown by its bandwidth estimator) the
		// client pings and sends window updates as replies arrive. A
		// relevance search's client CPU went from 672-707 to 543-544 µs a
		// call (BenchmarkRelevant/grpc, client-cpu-µs/call, A/B/A/B in one
		// run). The windows bound what may be in flight, they allocate
		// nothing.
		grpc.WithInitialWindowSize(grpcStreamWindow),
		grpc.WithInitialConnWindowSize(grpcConnWindow),
	}
	if s.auth != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{md: map[string]string{"authorization": s.auth}, tls: tlsOn}))
	}
	conn, err := grpc.NewClient(s.cfg.GRPCAddr, opts...)
	if err != nil {
		return nil, fmt.Errorf("weaviate store: gRPC connection to %s: %w", s.cfg.GRPCAddr, err)
	}
	return &grpcPath{s: s, addr: s.cfg.GRPCAddr, conn: conn, api: pb.NewWeaviateClient(conn)}, nil
}

// bearer puts the API key on every gRPC call.
type bearer struct {
	md  map[string]string
	tls bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return b.md, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.tls }

// The properties the muted lookup returns; a message's are the Store's
// msgProps.
var stateProps = []string{propEventID, propMuted, propUntil, propSentAt}

func textEqual(prop, value string) *pb.Filters {
	return &pb.Filters{
		Operator:  pb.Filters_OPERATOR_EQUAL,
		Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: prop}},
		TestValue: &pb.Filters_ValueText{ValueText: value},
	}
}

// sentAtNotAfter is the sent_at <= before filter; nil (none) for the zero
// time.
func sentAtNotAfter(before time.Time) *pb.Filters {
	if before.IsZero() {
		return nil
	}
	return &pb.Filters{
		Operator:  pb.Filters_OPERATOR_LESS_THAN_EQUAL,
		Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: propSentAt}},
		TestValue: &pb.Filters_ValueText{ValueText: before.UTC().Format(time.RFC3339Nano)},
	}
}

// and is the conjunction of the filters that are not nil.
func and(fs ...*pb.Filters) *pb.Filters {
	out := fs[:0:0]
	for _, f := range fs {
		if f != nil {
			out = append(out, f)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return &pb.Filters{Operator: pb.Filters_OPERATOR_AND, Filters: out}
}

func (g *grpcPath) history(ctx context.Context, chatID string, role event.Role, before time.Time, limit int) ([]event.ContextMessage, error) {
	tenant, err := g.s.tenantOf(ctx, chatID)
	if err != nil {
		return nil, err
	}
	var roleFilter *pb.Filters
	if role != "" {
		roleFilter = textEqual(propRole, string(role))
	}
	reply, err := g.search(ctx, &pb.SearchRequest{
		Collection:  MessagesCollection,
		Tenant:      tenant,
		Properties:  &pb.PropertiesRequest{NonRefProperties: g.s.msgProps},
		Metadata:    &pb.MetadataRequest{},
		Limit:       uint32(limit),
		SortBy:      []*pb.SortBy{{Ascending: false, Path: []string{propSentAt}}},
		Filters:     and(textEqual(propChatID, chatID), roleFilter, sentAtNotAfter(before)),
		Uses_127Api: true,
	})
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	msgs := make([]event.ContextMessage, len(reply.results))
	for i := range reply.results {
		msgs[i] = g.s.messageFrom(&reply.results[i])
	}
	return msgs, nil
}

// fetch runs a filtered search (see fetchQuery).
func (g *grpcPath) fetch(ctx context.Context, q fetchQuery) ([]row, error) {
	fs := []*pb.Filters{textEqual(propChatID, q.chatID)}
	if len(q.anyOf) > 0 {
		fs = append(fs, &pb.Filters{
			Operator:  pb.Filters_OPERATOR_CONTAINS_ANY,
			Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: q.anyProp}},
			TestValue: &pb.Filters_ValueTextArray{ValueTextArray: &pb.TextArray{Values: q.anyOf}},
		})
	}
	if q.trueProp != "" {
		fs = append(fs, &pb.Filters{
			Operator:  pb.Filters_OPERATOR_EQUAL,
			Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: q.trueProp}},
			TestValue: &pb.Filters_ValueBoolean{ValueBoolean: true},
		})
	}
	fs = append(fs, sentAtNotAfter(q.before))
	tenant, err := g.s.tenantOf(ctx, q.chatID)
	if err != nil {
		return nil, err
	}
	req := &pb.SearchRequest{
		Collection:  MessagesCollection,
		Tenant:      tenant,
		Properties:  &pb.PropertiesRequest{NonRefProperties: q.props},
		Metadata:    &pb.MetadataRequest{},
		Limit:       uint32(q.limit),
		Filters:     and(fs...),
		Uses_127Api: true,
	}
	if q.newestFirst {
		req.SortBy = []*pb.SortBy{{Ascending: false, Path: []string{propSentAt}}}
	}
	reply, err := g.search(ctx, req)
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	rows := make([]row, len(reply.results))
	for i := range reply.results {
		rows[i] = &reply.results[i]
	}
	return rows, nil
}

func (g *grpcPath) relevant(ctx context.Context, chatID string, q relevanceQuery, vi vectorInfo, before time.Time, limit int) ([]event.ContextMessage, error) {
	tenant, err := g.s.tenantOf(ctx, chatID)
	if err != nil {
		return nil, err
	}
	req := &pb.SearchRequest{
		Collection:  MessagesCollection,
		Tenant:      tenant,
		Properties:  &pb.PropertiesRequest{NonRefProperties: g.s.msgProps},
		Metadata:    &pb.MetadataRequest{Score: true},
		Limit:       uint32(limit),
		Filters:     and(textEqual(propChatID, chatID), sentAtNotAfter(before)),
		Uses_127Api: true,
	}
	if vi.hybrid {
		req.HybridSearch = &pb.Hybrid{
			Query:      q.query,
			Properties: []string{q.prop},
			Alpha:      g.s.cfg.HybridAlpha,
			FusionType: pb.Hybrid_FUSION_TYPE_RELATIVE_SCORE,
		}
		if vi.target != "" {
			req.HybridSearch.Targets = &pb.Targets{TargetVectors: []string{vi.target}}
		}
	} else {
		req.Bm25Search = &pb.BM25{Query: q.query, Properties: []string{q.prop}}
	}
	reply, err := g.search(ctx, req)
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	msgs := make([]event.ContextMessage, len(reply.results))
	for i := range reply.results {
		r := &reply.results[i]
		msgs[i] = g.s.messageFrom(r)
		if r.scorePresent {
			score := float64(r.score)
			msgs[i].Score = &score
		}
	}
	return msgs, nil
}

func (g *grpcPath) states(ctx context.Context, chatID string, limit int) ([]stateEntry, error) {
	reply, err := g.search(ctx, &pb.SearchRequest{
		Collection:  StateCollection,
		Properties:  &pb.PropertiesRequest{NonRefProperties: stateProps},
		Metadata:    &pb.MetadataRequest{},
		Limit:       uint32(limit),
		SortBy:      []*pb.SortBy{{Ascending: false, Path: []string{propSentAt}}},
		Filters:     textEqual(propChatID, chatID),
		Uses_127Api: true,
	})
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	entries := make([]stateEntry, len(reply.results))
	for i := range reply.results {
		r := &reply.results[i]
		entries[i] = stateEntry{eventID: r.text(propEventID), muted: r.boolean(propMuted)}
		entries[i].sentAt, _ = parseDate(r.text(propSentAt))
		if until, ok := parseDate(r.text(propUntil)); ok {
			entries[i].until = &until
		}
	}
	return entries, nil
}

// search runs a Search call, its reply decoded by replyCodec.
func (g *grpcPath) search(ctx context.Context, req *pb.SearchRequest) (*searchReply, error) {
	var reply searchReply
	if err := g.conn.Invoke(ctx, searchMethod, req, &reply, searchCall); err != nil {
		return nil, err
	}
	return &reply, nil
}

// row is one object of a search answer, over either path.
type row interface {
	text(name string) string
	number(name string) int64
}

// messageFrom reads a message from a search answer's object (msgProps):
// its Tokens from the stored count, or counted now when the message was
// stored without one in this encoding.
func (s *Store) messageFrom(r row) event.ContextMessage {
	m := event.ContextMessage{
		EventID: r.text(propEventID),
		Role:    event.Role(r.text(propRole)),
		Text:    r.text(propText),
	}
	m.SentAt, _ = parseDate(r.text(propSentAt))
	if s.cfg.Tokens != nil {
		m.Tokens = int(r.number(tokensProp(s.cfg.Tokens.Name())))
		if m.Tokens == 0 && m.Text != "" {
			m.Tokens = s.cfg.Tokens.Count(m.Text)
		}
	}
	return m
}

// parseDate reads a date as Weaviate returns it (RFC 3339); false when
// empty or unreadable.
func parseDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

func (g *grpcPath) batch(ctx context.Context, items []*batchItem) ([]*Error, error) {
	objs := make([]*pb.BatchObject, len(items))
	for i, it := range items {
		fields := make(map[string]*structpb.Value, len(it.obj.props))
		for k, v := range it.obj.props {
			switch v := v.(type) {
			case string:
				fields[k] = structpb.NewStringValue(v)
			case bool:
				fields[k] = structpb.NewBoolValue(v)
			case int:
				fields[k] = structpb.NewNumberValue(float64(v))
			}
		}
		objs[i] = &pb.BatchObject{
			Uuid:       it.obj.id,
			Collection: it.obj.collection,
			Tenant:     it.obj.tenant,
			Properties: &pb.BatchObject_Properties{NonRefProperties: &structpb.Struct{Fields: fields}},
		}
	}
	reply, err := g.api.BatchObjects(ctx, &pb.BatchObjectsRequest{Objects: objs})
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	errs := make([]*Error, len(items))
	for _, e := range reply.GetErrors() {
		if i := int(e.GetIndex()); i >= 0 && i < len(errs) {
			errs[i] = &Error{Kind: KindRejected, Detail: excerpt(e.GetError())}
		}
	}
	return errs, nil
}

// idIn is the filter "the object id is one of ids".
func idIn(ids []string) *pb.Filters {
	return &pb.Filters{
		Operator:  pb.Filters_OPERATOR_CONTAINS_ANY,
		Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: "_id"}},
		TestValue: &pb.Filters_ValueTextArray{ValueTextArray: &pb.TextArray{Values: ids}},
	}
}

func (g *grpcPath) find(ctx context.Context, q findQuery) ([]string, error) {
	filter := and(textEqual(propChatID, q.chatID), idIn(q.ids))
	if q.role != "" {
		filter = and(textEqual(propChatID, q.chatID), textEqual(propRole, string(q.role)), idIn(q.ids))
	}
	tenant, err := g.s.tenantOf(ctx, q.chatID)
	if err != nil {
		return nil, err
	}
	req := &pb.SearchRequest{
		Collection:  MessagesCollection,
		Tenant:      tenant,
		Properties:  &pb.PropertiesRequest{NonRefProperties: []string{propEventID}},
		Metadata:    &pb.MetadataRequest{},
		Limit:       uint32(len(q.ids)),
		Filters:     filter,
		Uses_127Api: true,
	}
	if q.bm25 != nil {
		req.Bm25Search = &pb.BM25{Query: q.bm25.query, Properties: []string{q.bm25.prop}}
	}
	reply, err := g.search(ctx, req)
	if err != nil {
		return nil, g.s.grpcError(ctx, err)
	}
	found := make([]string, len(reply.results))
	for i := range reply.results {
		found[i] = reply.results[i].text(propEventID)
	}
	return found, nil
}
