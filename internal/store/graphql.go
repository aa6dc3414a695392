package store

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"
	"github.com/weaviate/weaviate/entities/models"
)

// graphQLPath asks Weaviate over GraphQL (searches) and REST (batch
// writes), through the Weaviate client: the path when gRPC is off or
// unreachable. The client writes values into the query text with Go's %q;
// every value chatprep passes is safe there: ids and roles are printable
// (contract), dates are RFC 3339, and the search query holds only letters,
// digits and spaces (keywordQuery), plus the hex digits and colon of a
// chat's scope (scopedTerms).
type graphQLPath struct{ s *Store }

var _ path = graphQLPath{}

func (graphQLPath) name() string { return "graphql" }
func (graphQLPath) ready() error { return nil }
func (graphQLPath) close()       {}

func whereText(prop, value string) *filters.WhereBuilder {
	return filters.Where().WithPath([]string{prop}).WithOperator(filters.Equal).WithValueText(value)
}

// whereSentAtNotAfter is the sent_at <= before filter; nil (none) for the
// zero time.
func whereSentAtNotAfter(before time.Time) *filters.WhereBuilder {
	if before.IsZero() {
		return nil
	}
	return filters.Where().WithPath([]string{propSentAt}).WithOperator(filters.LessThanEqual).WithValueDate(before.UTC())
}

// whereAnd is the conjunction of the filters that are not nil.
func whereAnd(ws ...*filters.WhereBuilder) *filters.WhereBuilder {
	var out []*filters.WhereBuilder
	for _, w := range ws {
		if w != nil {
			out = append(out, w)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return filters.Where().WithOperator(filters.And).WithOperands(out)
}

func fields(names []string, additional ...string) []graphql.Field {
	fs := make([]graphql.Field, 0, len(names)+1)
	for _, n := range names {
		fs = append(fs, graphql.Field{Name: n})
	}
	if len(additional) > 0 {
		add := graphql.Field{Name: "_additional"}
		for _, a := range additional {
			add.Fields = append(add.Fields, graphql.Field{Name: a})
		}
		fs = append(fs, add)
	}
	return fs
}

var stateFields = fields(stateProps)

// messages is a Get on the messages collection, in chatID's tenant.
func (q graphQLPath) messages(ctx context.Context, chatID string) (*graphql.GetBuilder, error) {
	tenant, err := q.s.tenantOf(ctx, chatID)
	if err != nil {
		return nil, err
	}
	return q.s.client.GraphQL().Get().WithClassName(MessagesCollection).WithTenant(tenant), nil
}

func (q graphQLPath) history(ctx context.Context, chatID string, role event.Role, before time.Time, limit int) ([]event.ContextMessage, error) {
	var roleFilter *filters.WhereBuilder
	if role != "" {
		roleFilter = whereText(propRole, string(role))
	}
	where := whereAnd(whereText(propChatID, chatID), roleFilter, whereSentAtNotAfter(before))
	get, err := q.messages(ctx, chatID)
	if err != nil {
		return nil, err
	}
	rows, err := q.s.graphQLGet(ctx, get.
		WithFields(fields(q.s.msgProps)...).
		WithWhere(where).
		WithSort(graphql.Sort{Path: []string{propSentAt}, Order: graphql.Desc}).
		WithLimit(limit), MessagesCollection)
	if err != nil {
		return nil, err
	}
	msgs := make([]event.ContextMessage, len(rows))
	for i, r := range rows {
		msgs[i] = q.s.messageFrom(gqlRow(r))
	}
	return msgs, nil
}

// fetch runs a filtered search (see fetchQuery).
func (q graphQLPath) fetch(ctx context.Context, fq fetchQuery) ([]row, error) {
	ws := []*filters.WhereBuilder{whereText(propChatID, fq.chatID)}
	if len(fq.anyOf) > 0 {
		ws = append(ws, filters.Where().WithPath([]string{fq.anyProp}).WithOperator(filters.ContainsAny).WithValueText(fq.anyOf...))
	}
	if fq.trueProp != "" {
		ws = append(ws, filters.Where().WithPath([]string{fq.trueProp}).WithOperator(filters.Equal).WithValueBoolean(true))
	}
	ws = append(ws, whereSentAtNotAfter(fq.before))
	get, err := q.messages(ctx, fq.chatID)
	if err != nil {
		return nil, err
	}
	get = get.
		WithFields(fields(fq.props)...).
		WithWhere(whereAnd(ws...)).
		WithLimit(fq.limit)
	if fq.newestFirst {
		get = get.WithSort(graphql.Sort{Path: []string{propSentAt}, Order: graphql.Desc})
	}
	rows, err := q.s.graphQLGet(ctx, get, MessagesCollection)
	if err != nil {
		return nil, err
	}
	out := make([]row, len(rows))
	for i, r := range rows {
		out[i] = gqlRow(r)
	}
	return out, nil
}

func (q graphQLPath) relevant(ctx context.Context, chatID string, rq relevanceQuery, vi vectorInfo, before time.Time, limit int) ([]event.ContextMessage, error) {
	where := whereAnd(whereText(propChatID, chatID), whereSentAtNotAfter(before))
	get, err := q.messages(ctx, chatID)
	if err != nil {
		return nil, err
	}
	get = get.
		WithFields(fields(q.s.msgProps, "score")...).
		WithWhere(where).
		WithLimit(limit)
	if vi.hybrid {
		h := (&graphql.HybridArgumentBuilder{}).WithQuery(rq.query).WithProperties([]string{rq.prop}).
			WithAlpha(q.s.cfg.HybridAlpha).WithFusionType(graphql.RelativeScore)
		if vi.target != "" {
			h = h.WithTargetVectors(vi.target)
		}
		get = get.WithHybrid(h)
	} else {
		get = get.WithBM25((&graphql.BM25ArgumentBuilder{}).WithQuery(rq.query).WithProperties(rq.prop))
	}
	rows, err := q.s.graphQLGet(ctx, get, MessagesCollection)
	if err != nil {
		return nil, err
	}
	msgs := make([]event.ContextMessage, len(rows))
	for i, row := range rows {
		msgs[i] = q.s.messageFrom(gqlRow(row))
		if add, ok := row["_additional"].(map[string]any); ok {
			if score, ok := graphQLScore(add["score"]); ok {
				msgs[i].Score = &score
			}
		}
	}
	return msgs, nil
}

func (q graphQLPath) states(ctx context.Context, chatID string, limit int) ([]stateEntry, error) {
	rows, err := q.s.graphQLGet(ctx, q.s.client.GraphQL().Get().
		WithClassName(StateCollection).
		WithFields(stateFields...).
		WithWhere(whereText(propChatID, chatID)).
		WithSort(graphql.Sort{Path: []string{propSentAt}, Order: graphql.Desc}).
		WithLimit(limit), StateCollection)
	if err != nil {
		return nil, err
	}
	entries := make([]stateEntry, len(rows))
	for i, row := range rows {
		str := func(k string) string { v, _ := row[k].(string); return v }
		entries[i].eventID = str(propEventID)
		entries[i].muted, _ = row[propMuted].(bool)
		entries[i].sentAt, _ = parseDate(str(propSentAt))
		if until, ok := parseDate(str(propUntil)); ok {
			entries[i].until = &until
		}
	}
	return entries, nil
}

// graphQLGet runs a Get query and returns the class's rows. A GraphQL error
// comes with HTTP 200 and no client error: the answer's Errors are checked
// every time.
func (s *Store) graphQLGet(ctx context.Context, get *graphql.GetBuilder, class string) ([]map[string]any, error) {
	resp, err := get.Do(ctx)
	if err != nil {
		return nil, s.clientError(ctx, err)
	}
	if len(resp.Errors) > 0 {
		return nil, s.graphQLError(ctx, graphQLMessages(resp.Errors))
	}
	getData, ok := resp.Data["Get"].(map[string]any)
	if !ok {
		return nil, &Error{Kind: KindRejected, Detail: "GraphQL answer without Get"}
	}
	list, _ := getData[class].([]any)
	rows := make([]map[string]any, 0, len(list))
	for _, item := range list {
		if row, ok := item.(map[string]any); ok {
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func graphQLMessages(errs []*models.GraphQLError) []string {
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Message)
		}
	}
	return msgs
}

// gqlRow is a GraphQL answer's object as a row.
type gqlRow map[string]any

func (r gqlRow) text(name string) string { v, _ := r[name].(string); return v }

func (r gqlRow) number(name string) int64 {
	switch v := r[name].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}

// graphQLScore reads _additional.score, which GraphQL returns as a string.
func graphQLScore(v any) (float64, bool) {
	switch v := v.(type) {
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	case float64:
		return v, true
	}
	return 0, false
}

func (q graphQLPath) batch(ctx context.Context, items []*batchItem) ([]*Error, error) {
	objs := make([]*models.Object, len(items))
	for i, it := range items {
		objs[i] = &models.Object{
			Class:      it.obj.collection,
			Tenant:     it.obj.tenant,
			ID:         strfmt.UUID(it.obj.id),
			Properties: map[string]any(it.obj.props),
		}
	}
	resp, err := q.s.client.Batch().ObjectsBatcher().WithObjects(objs...).Do(ctx)
	if err != nil {
		return nil, q.s.clientError(ctx, err)
	}
	// The answer lists the objects in request order; match by id anyway (an
	// id may be in the batch twice: two deliveries of one event).
	byID := make(map[string][]int, len(items))
	for i, it := range items {
		byID[it.obj.id] = append(byID[it.obj.id], i)
	}
	errs := make([]*Error, len(items))
	seen := make([]bool, len(items))
	for _, r := range resp {
		idx := byID[string(r.ID)]
		if len(idx) == 0 {
			continue
		}
		i := idx[0]
		byID[string(r.ID)] = idx[1:]
		seen[i] = true
		if r.Result != nil && r.Result.Errors != nil && len(r.Result.Errors.Error) > 0 {
			msgs := make([]string, 0, len(r.Result.Errors.Error))
			for _, e := range r.Result.Errors.Error {
				if e != nil {
					msgs = append(msgs, e.Message)
				}
			}
			errs[i] = &Error{Kind: KindRejected, Detail: excerpt(strings.Join(msgs, "; "))}
		}
	}
	for i := range errs {
		if !seen[i] && errs[i] == nil {
			errs[i] = &Error{Kind: KindUnconfirmed, Detail: "object missing from the batch answer"}
		}
	}
	return errs, nil
}

func (q graphQLPath) find(ctx context.Context, f findQuery) ([]string, error) {
	ws := []*filters.WhereBuilder{whereText(propChatID, f.chatID)}
	if f.role != "" {
		ws = append(ws, whereText(propRole, string(f.role)))
	}
	ws = append(ws, filters.Where().WithPath([]string{"id"}).WithOperator(filters.ContainsAny).WithValueText(f.ids...))
	get, err := q.messages(ctx, f.chatID)
	if err != nil {
		return nil, err
	}
	get = get.
		WithFields(graphql.Field{Name: propEventID}).
		WithWhere(whereAnd(ws...)).
		WithLimit(len(f.ids))
	if f.bm25 != nil {
		get = get.WithBM25((&graphql.BM25ArgumentBuilder{}).WithQuery(f.bm25.query).WithProperties(f.bm25.prop))
	}
	rows, err := q.s.graphQLGet(ctx, get, MessagesCollection)
	if err != nil {
		return nil, err
	}
	found := make([]string, 0, len(rows))
	for _, row := range rows {
		if id, ok := row[propEventID].(string); ok {
			found = append(found, id)
		}
	}
	return found, nil
}
