package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/chatprep/chatprep/internal/event"
)

// The searches Unfindable checks, as it names them.
const (
	// SearchHistory is the filter the history searches use: chat_id and
	// role (and sent_at, when they are made again with it).
	SearchHistory = "history"
	// SearchRelevance is the relevance search: BM25 on the chat's scoped
	// terms (on the text, for a collection with a vectorizer), filtered to
	// the chat.
	SearchRelevance = "relevance"
)

// StoredMessage is a message object as ScanMessages read it from the object
// store: what Unfindable needs to ask the worker's searches for it.
type StoredMessage struct {
	ID      string // the object id, MessageID(ChatID, EventID)
	ChatID  string
	EventID string
	Role    event.Role
	// Cursor is where ScanMessages goes on after this message: its tenant
	// and its id (the id alone without tenants).
	Cursor string
	// terms is what the relevance search would ask to find this message:
	// its own words, as Relevant asks (empty: it has no searchable word,
	// and relevance can never find it).
	terms relevanceQuery
}

// findQuery asks which of ids (all of chatID) a search finds: the chat_id
// filter, with role when set, with a BM25 query when bm25 is set.
type findQuery struct {
	chatID string
	role   event.Role
	ids    []string
	bm25   *relevanceQuery
}

// scanPage is the REST answer of GET /v1/objects.
type scanPage struct {
	Objects []struct {
		ID         string         `json:"id"`
		Properties map[string]any `json:"properties"`
	} `json:"objects"`
}

// ScanMessages returns up to limit message objects that follow after (""
// for the first page, else the Cursor of the last message of the page
// before), read with Weaviate's cursor over its object store: the objects
// as they are, whatever the inverted indexes hold. It goes through the
// tenants in order, each in id order; a page holds one tenant's objects.
// An empty page is the end.
func (s *Store) ScanMessages(ctx context.Context, after string, limit int) ([]StoredMessage, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("scan messages: %w", s.closedError())
	}
	f, err := s.facts(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan messages: %w", err)
	}
	tenants := f.messageTenants("")
	tenant, id, _ := strings.Cut(after, "/")
	if f.tenants == 0 {
		tenant, id = "", after
	}
	for i := max(0, slices.Index(tenants, tenant)); i < len(tenants); i, id = i+1, "" {
		page, err := s.scanTenant(ctx, f.vectors, tenants[i], id, limit)
		if err != nil || len(page) > 0 {
			return page, err
		}
	}
	return nil, nil
}

// scanTenant is one page of ScanMessages in one tenant ("" for none).
func (s *Store) scanTenant(ctx context.Context, vi vectorInfo, tenant, after string, limit int) ([]StoredMessage, error) {
	q := url.Values{"class": {MessagesCollection}, "limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	status, body, err := s.rest(ctx, http.MethodGet, "/objects?"+q.Encode())
	if err == nil && status != http.StatusOK {
		err = s.statusError(status, body)
	}
	if err != nil {
		s.calls.failed.Add(1)
		return nil, fmt.Errorf("scan messages after %q: %w", after, err)
	}
	var page scanPage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("scan messages: %w", &Error{Kind: KindRejected, Detail: "unexpected answer", Err: err})
	}
	out := make([]StoredMessage, 0, len(page.Objects))
	for _, o := range page.Objects {
		str := func(k string) string { v, _ := o.Properties[k].(string); return v }
		m := StoredMessage{ID: o.ID, ChatID: str(propChatID), EventID: str(propEventID), Role: event.Role(str(propRole)), Cursor: o.ID}
		if tenant != "" {
			m.Cursor = tenant + "/" + o.ID
		}
		m.terms = s.relevanceQuery(m.ChatID, str(propText), vi)
		out = append(out, m)
	}
	return out, nil
}

// relevanceQuery is what Relevant asks for text in chat: the chat's scoped
// terms on chat_terms, or for a hybrid search the words on the text. The
// zero value when text has no searchable word.
func (s *Store) relevanceQuery(chatID, text string, vi vectorInfo) relevanceQuery {
	if vi.hybrid {
		return relevanceQuery{query: keywordQuery(text, s.cfg.MaxQueryTerms), prop: propText}
	}
	return relevanceQuery{query: queryTerms(chatID, text, s.cfg.MaxQueryTerms), prop: propChatTerms}
}

// findChunk is how many messages one check asks about: the filter's id
// list, and the BM25 query's words (a message's own words, at most
// MaxQueryTerms each).
const findChunk = 20

// Unfindable tells which of msgs (stored messages of one chat, as
// ScanMessages read them) the worker's searches miss: for each message
// missed, the searches that miss it (SearchHistory, SearchRelevance). The
// history check asks the chat_id and role filter with the messages' ids;
// the relevance check asks the BM25 search with the messages' own words,
// filtered to the chat and their ids (a message without a searchable word
// is not asked: relevance cannot find it by design). A message is found by
// relevance when at least one of its words' index entries is there.
// (Hybrid's vector half is not checked.)
func (s *Store) Unfindable(ctx context.Context, chatID string, msgs []StoredMessage) (map[string][]string, error) {
	missing := map[string][]string{}
	byRole := map[event.Role][]StoredMessage{}
	for _, m := range msgs {
		byRole[m.Role] = append(byRole[m.Role], m)
	}
	for role, ms := range byRole {
		for chunk := range chunks(ms, 5*findChunk) {
			if err := s.check(ctx, findQuery{chatID: chatID, role: role}, chunk, SearchHistory, missing); err != nil {
				return nil, err
			}
		}
	}
	var searchable []StoredMessage
	for _, m := range msgs {
		if m.terms.query != "" {
			searchable = append(searchable, m)
		}
	}
	for chunk := range chunks(searchable, findChunk) {
		words := make([]string, len(chunk))
		for i, m := range chunk {
			words[i] = m.terms.query
		}
		q := relevanceQuery{query: strings.Join(words, " "), prop: chunk[0].terms.prop}
		if err := s.check(ctx, findQuery{chatID: chatID, bm25: &q}, chunk, SearchRelevance, missing); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// check asks q about ms and notes in missing, under search, each message
// it does not find.
func (s *Store) check(ctx context.Context, q findQuery, ms []StoredMessage, search string, missing map[string][]string) error {
	q.ids = make([]string, len(ms))
	for i, m := range ms {
		q.ids[i] = m.ID
	}
	s.calls.history.Add(1)
	found, err := s.path().find(ctx, q)
	if err != nil {
		s.calls.failed.Add(1)
		return fmt.Errorf("check the %s search of chat %s: %w", search, q.chatID, err)
	}
	seen := make(map[string]bool, len(found))
	for _, id := range found {
		seen[id] = true
	}
	for _, m := range ms {
		if !seen[m.EventID] {
			missing[m.ID] = append(missing[m.ID], search)
		}
	}
	return nil
}

// chunks yields xs in pieces of at most n.
func chunks[T any](xs []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(xs) > 0 {
			k := min(n, len(xs))
			if !yield(xs[:k]) {
				return
			}
			xs = xs[k:]
		}
	}
}

// ErrGone says an object to reindex no longer exists (erased meanwhile).
var ErrGone = fmt.Errorf("object no longer exists")

// Reindex makes Weaviate write every index entry of the message object id
// anew, without changing the object. Weaviate v1.35.2 skips a replace
// whose properties and vectors equal the stored object's entirely (object,
// indexes and all: adapters/repos/db/shard_write_put.go,
// determineInsertStatus and compareObjsForInsertStatus), and with other
// properties it writes only the changed properties' entries (the delta): so
// storing the same object again cannot bring back a lost entry. A replace
// with a different vector moves the object to a new internal document id,
// and that writes every property's entries for the new one. So Reindex
// replaces the object twice, with the same properties: once with another
// vector (a one-dimensional one on a collection without a vectorizer, else
// its own nudged), then with the vector it had (none, or its own). Each
// replace is the whole object, so a worker's write in between, or a
// Reindex cut off between the two, leaves a complete object, indexed; the
// worst left behind is a stray vector that BM25 and filters never read.
// ErrGone when the object does not exist. id is the object of a message of
// chatID (StoredMessage.ChatID and ID), which says its tenant.
func (s *Store) Reindex(ctx context.Context, chatID, id string) error {
	tenant, err := s.tenantOf(ctx, chatID)
	if err != nil {
		return fmt.Errorf("reindex message %s: %w", id, err)
	}
	path := "/objects/" + MessagesCollection + "/" + url.PathEscape(id)
	query := url.Values{"include": {"vector"}}
	if tenant != "" {
		query.Set("tenant", tenant)
	}
	status, body, err := s.rest(ctx, http.MethodGet, path+"?"+query.Encode())
	switch {
	case err != nil:
	case status == http.StatusNotFound:
		return fmt.Errorf("reindex message %s: %w", id, ErrGone)
	case status != http.StatusOK:
		err = s.statusError(status, body)
	}
	if err != nil {
		return fmt.Errorf("reindex message %s: %w", id, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return fmt.Errorf("reindex message %s: %w", id, &Error{Kind: KindRejected, Detail: "unexpected answer", Err: err})
	}
	keep := map[string]any{"class": MessagesCollection, "id": id, "properties": obj["properties"]}
	nudged := map[string]any{"class": MessagesCollection, "id": id, "properties": obj["properties"]}
	if tenant != "" {
		keep["tenant"], nudged["tenant"] = tenant, tenant
		query.Del("include")
		path += "?" + query.Encode()
	}
	switch {
	case obj["vectors"] != nil && len(obj["vectors"].(map[string]any)) > 0:
		vs := obj["vectors"].(map[string]any)
		other := make(map[string]any, len(vs))
		for name, v := range vs {
			other[name] = nudge(v)
		}
		keep["vectors"], nudged["vectors"] = vs, other
	case obj["vector"] != nil && len(asFloats(obj["vector"])) > 0:
		keep["vector"], nudged["vector"] = obj["vector"], nudge(obj["vector"])
	default:
		nudged["vector"] = []float64{1}
	}
	for _, o := range []map[string]any{nudged, keep} {
		b, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("reindex message %s: %w", id, err)
		}
		status, body, err := s.restBody(ctx, http.MethodPut, path, b)
		if err == nil && status != http.StatusOK {
			err = s.statusError(status, body)
		}
		if err != nil {
			s.calls.failed.Add(1)
			return fmt.Errorf("reindex message %s: %w", id, err)
		}
	}
	return nil
}

func asFloats(v any) []any {
	xs, _ := v.([]any)
	return xs
}

// nudge is vector v with its first component moved a little.
func nudge(v any) any {
	xs := asFloats(v)
	if len(xs) == 0 {
		return []float64{1}
	}
	out := make([]any, len(xs))
	copy(out, xs)
	if f, ok := out[0].(float64); ok {
		out[0] = f + 1e-3
	}
	return out
}
