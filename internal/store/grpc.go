package store

import (
	"context"
	"time"

	"github.com/chatprep/chatprep/internal/event"
	pb "github.com/weaviate/weaviate/grpc/generated/protocol/v1"
)

// The properties each search returns.
var (
	historyProps  = []string{propEventID, propText, propSentAt}
	relevantProps = []string{propEventID, propRole, propText, propSentAt}
	stateProps    = []string{propMuted, propUntil}
)

func textEqual(prop, value string) *pb.Filters {
	return &pb.Filters{
		Operator:  pb.Filters_OPERATOR_EQUAL,
		Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: prop}},
		TestValue: &pb.Filters_ValueText{ValueText: value},
	}
}

func sentAtNotAfter(before time.Time) *pb.Filters {
	return &pb.Filters{
		Operator:  pb.Filters_OPERATOR_LESS_THAN_EQUAL,
		Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: propSentAt}},
		TestValue: &pb.Filters_ValueText{ValueText: before.UTC().Format(time.RFC3339Nano)},
	}
}

func and(fs ...*pb.Filters) *pb.Filters {
	return &pb.Filters{Operator: pb.Filters_OPERATOR_AND, Filters: fs}
}

func (s *Store) historyGRPC(ctx context.Context, chatID string, role event.Role, before time.Time, limit int) ([]event.ContextMessage, error) {
	reply, err := s.grpc.Search(ctx, &pb.SearchRequest{
		Collection:  MessagesCollection,
		Properties:  &pb.PropertiesRequest{NonRefProperties: historyProps},
		Metadata:    &pb.MetadataRequest{},
		Limit:       uint32(limit),
		SortBy:      []*pb.SortBy{{Ascending: false, Path: []string{propSentAt}}},
		Filters:     and(textEqual(propChatID, chatID), textEqual(propRole, string(role)), sentAtNotAfter(before)),
		Uses_127Api: true,
	})
	if err != nil {
		return nil, s.grpcError(ctx, err)
	}
	msgs := make([]event.ContextMessage, len(reply.Results))
	for i, r := range reply.Results {
		msgs[i] = messageFromGRPC(r)
		msgs[i].Role = role
	}
	return msgs, nil
}

func (s *Store) relevantGRPC(ctx context.Context, chatID, query string, vi vectorInfo, before time.Time, limit int) ([]event.ContextMessage, error) {
	req := &pb.SearchRequest{
		Collection:  MessagesCollection,
		Properties:  &pb.PropertiesRequest{NonRefProperties: relevantProps},
		Metadata:    &pb.MetadataRequest{Score: true},
		Limit:       uint32(limit),
		Filters:     and(textEqual(propChatID, chatID), sentAtNotAfter(before)),
		Uses_127Api: true,
	}
	if vi.hybrid {
		req.HybridSearch = &pb.Hybrid{
			Query:      query,
			Properties: []string{propText},
			Alpha:      s.cfg.HybridAlpha,
			FusionType: pb.Hybrid_FUSION_TYPE_RELATIVE_SCORE,
		}
		if vi.target != "" {
			req.HybridSearch.Targets = &pb.Targets{TargetVectors: []string{vi.target}}
		}
	} else {
		req.Bm25Search = &pb.BM25{Query: query, Properties: []string{propText}}
	}
	reply, err := s.grpc.Search(ctx, req)
	if err != nil {
		return nil, s.grpcError(ctx, err)
	}
	msgs := make([]event.ContextMessage, len(reply.Results))
	for i, r := range reply.Results {
		msgs[i] = messageFromGRPC(r)
		if md := r.GetMetadata(); md != nil && md.GetScorePresent() {
			score := float64(md.GetScore())
			msgs[i].Score = &score
		}
	}
	return msgs, nil
}

func (s *Store) mutedGRPC(ctx context.Context, chatID string) (chatState, error) {
	reply, err := s.grpc.Search(ctx, &pb.SearchRequest{
		Collection: StateCollection,
		Properties: &pb.PropertiesRequest{NonRefProperties: stateProps},
		Metadata:   &pb.MetadataRequest{},
		Limit:      1,
		Filters: &pb.Filters{
			Operator:  pb.Filters_OPERATOR_EQUAL,
			Target:    &pb.FilterTarget{Target: &pb.FilterTarget_Property{Property: "_id"}},
			TestValue: &pb.Filters_ValueText{ValueText: StateID(chatID)},
		},
		Uses_127Api: true,
	})
	if err != nil {
		return chatState{}, s.grpcError(ctx, err)
	}
	if len(reply.Results) == 0 {
		return chatState{}, nil
	}
	fields := reply.Results[0].GetProperties().GetNonRefProps().GetFields()
	st := chatState{muted: fields[propMuted].GetBoolValue()}
	if until, ok := parseDate(fields[propUntil].GetDateValue()); ok {
		st.until = &until
	}
	return st, nil
}

func messageFromGRPC(r *pb.SearchResult) event.ContextMessage {
	fields := r.GetProperties().GetNonRefProps().GetFields()
	m := event.ContextMessage{
		EventID: fields[propEventID].GetTextValue(),
		Role:    event.Role(fields[propRole].GetTextValue()),
		Text:    fields[propText].GetTextValue(),
	}
	m.SentAt, _ = parseDate(fields[propSentAt].GetDateValue())
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
