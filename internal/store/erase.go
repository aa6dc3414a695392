package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Erasing: `worker forget` removes a chat (its messages and its state) and
// `worker forget --older-than` the messages older than an age. Both go
// through Weaviate's batch delete by filter (DELETE /v1/batch/objects with
// a where filter), over REST on both paths, like the muted lookup: an
// operator's command, not the worker's hot path.
//
// Weaviate v1.35.2 (adapters/repos/db/batch.go, DB.BatchDeleteObjects)
// finds every object the filter matches and deletes at most
// QUERY_MAXIMUM_RESULTS of them (10,000 by default) per request, answering
// how many matched and how many it deleted. So a delete is a loop of such
// requests until nothing matched is left (deleteAll; for messages sent
// before a time, windows of sent_at walked back from it: deleteBackwards);
// a dry run (dryRun: true) deletes nothing and answers the count, which is
// how Count* count.
//
// In a messages collection with tenants a batch delete reaches one tenant:
// a chat's erase goes to its tenant (tenantOf), a retention over every
// chat walks the tenants in order, a delete loop in each, and the counts
// add up; without tenants, one loop over the collection (messagesTargets).
// The muted state has no tenants.
//
// The filters read the inverted index: an object whose index entries
// Weaviate lost (see `worker verify`) is neither counted nor deleted.
// `worker verify --chat ID` after an erase scans the object store and shows
// any such leftover.

// Selection says which messages an erase takes: those of ChatID (empty:
// of every chat) sent before Before (zero: whenever sent). One of them must
// be set.
type Selection struct {
	ChatID string
	Before time.Time
}

func (sel Selection) String() string {
	switch {
	case sel.ChatID != "" && !sel.Before.IsZero():
		return fmt.Sprintf("messages of chat %s sent before %s", sel.ChatID, sel.Before.UTC().Format(time.RFC3339))
	case sel.ChatID != "":
		return "messages of chat " + sel.ChatID
	default:
		return "messages sent before " + sel.Before.UTC().Format(time.RFC3339)
	}
}

func (sel Selection) check() *Error {
	if sel.ChatID == "" && sel.Before.IsZero() {
		return &Error{Kind: KindRejected, Detail: "a selection of messages needs a chat or a time"}
	}
	return nil
}

// where is the selection as a REST where filter.
func (sel Selection) where() restWhere { return sel.window(time.Time{}) }

// window is the selection's filter narrowed to messages sent at or after
// from (zero: no lower bound).
func (sel Selection) window(from time.Time) restWhere {
	var ops []restWhere
	if sel.ChatID != "" {
		ops = append(ops, restText(propChatID, sel.ChatID))
	}
	if !from.IsZero() {
		ops = append(ops, restDate("GreaterThanEqual", from))
	}
	if !sel.Before.IsZero() {
		ops = append(ops, restDate("LessThan", sel.Before))
	}
	if len(ops) == 1 {
		return ops[0]
	}
	return restWhere{Operator: "And", Operands: ops}
}

func restDate(operator string, t time.Time) restWhere {
	return restWhere{Path: []string{propSentAt}, Operator: operator, ValueDate: t.UTC().Format(time.RFC3339Nano)}
}

// restWhere is a REST where filter (the JSON shape of Weaviate's
// WhereFilter).
type restWhere struct {
	Operator  string      `json:"operator"`
	Path      []string    `json:"path,omitempty"`
	ValueText string      `json:"valueText,omitempty"`
	ValueDate string      `json:"valueDate,omitempty"`
	Operands  []restWhere `json:"operands,omitempty"`
}

func restText(prop, value string) restWhere {
	return restWhere{Path: []string{prop}, Operator: "Equal", ValueText: value}
}

// target is where a request of an erase goes: a collection, and for the
// messages collection with tenants, one tenant (a batch delete or a read
// by id in a multi-tenant collection names one; a request naming none is
// refused). Every request the erase makes takes its target from
// messagesTargets or stateTarget.
type target struct {
	collection string
	tenant     string // "" for none
}

// messagesTargets are the targets holding the messages of chatID: its
// tenant, or for "" (every chat) every tenant in order (messageTenants, as
// the scan of verify walks them); the collection alone without tenants.
func (s *Store) messagesTargets(ctx context.Context, chatID string) ([]target, error) {
	f, err := s.facts(ctx)
	if err != nil {
		return nil, err
	}
	tenants := f.messageTenants(chatID)
	out := make([]target, len(tenants))
	for i, tenant := range tenants {
		out[i] = target{collection: MessagesCollection, tenant: tenant}
	}
	return out, nil
}

// selected are the targets of sel's messages, once the store is open and
// sel names a chat or a time.
func (s *Store) selected(ctx context.Context, sel Selection) ([]target, error) {
	if s.closed.Load() {
		return nil, s.closedError()
	}
	if err := sel.check(); err != nil {
		return nil, err
	}
	return s.messagesTargets(ctx, sel.ChatID)
}

// stateTarget is the target holding chatID's state, once the store is open
// and chatID is set: the state collection has no tenants (tenants.go).
func (s *Store) stateTarget(chatID string) (target, error) {
	if s.closed.Load() {
		return target{}, s.closedError()
	}
	if chatID == "" {
		return target{}, &Error{Kind: KindRejected, Detail: "chat id is required"}
	}
	return target{collection: StateCollection}, nil
}

// query is the URL query a request to t carries ("" or "?tenant=…").
func (t target) query() string {
	if t.tenant == "" {
		return ""
	}
	return "?" + url.Values{"tenant": {t.tenant}}.Encode()
}

// String names t in errors: the collection, and its tenant if any.
func (t target) String() string {
	if t.tenant == "" {
		return t.collection
	}
	return t.collection + " (tenant " + t.tenant + ")"
}

// deleted is Weaviate's answer to a batch delete.
type deleted struct {
	Matches    int64 `json:"matches"`
	Limit      int64 `json:"limit"`
	Successful int64 `json:"successful"`
	Failed     int64 `json:"failed"`
}

// batchDelete is one DELETE /v1/batch/objects of the objects of t that
// where matches: at most Weaviate's QUERY_MAXIMUM_RESULTS of them are
// deleted (none with dryRun), and the answer says how many matched.
func (s *Store) batchDelete(ctx context.Context, t target, where restWhere, dryRun bool) (deleted, error) {
	body, err := json.Marshal(map[string]any{
		"match":  map[string]any{"class": t.collection, "where": where},
		"output": "minimal",
		"dryRun": dryRun,
	})
	if err != nil {
		return deleted{}, &Error{Kind: KindRejected, Err: err}
	}
	s.calls.deletes.Add(1)
	status, answer, err := s.restBody(ctx, http.MethodDelete, "/batch/objects"+t.query(), body)
	if err == nil && status != http.StatusOK {
		err = s.statusError(status, answer)
	}
	if err != nil {
		s.calls.failed.Add(1)
		return deleted{}, err
	}
	var out struct {
		Results deleted `json:"results"`
	}
	if err := json.Unmarshal(answer, &out); err != nil {
		s.calls.failed.Add(1)
		return deleted{}, &Error{Kind: KindRejected, Detail: "unexpected answer", Err: err}
	}
	return out.Results, nil
}

// deleteStep is one request of a delete loop: it deletes what where
// matches in t, up to QUERY_MAXIMUM_RESULTS, adds that to *total and
// reports it to progress (when set). An object Weaviate failed to delete,
// or matches it deleted none of, is an error.
func (s *Store) deleteStep(ctx context.Context, t target, where restWhere, total *int64, progress func(int64)) (deleted, error) {
	r, err := s.batchDelete(ctx, t, where, false)
	if err != nil {
		return r, err
	}
	*total += r.Successful
	if progress != nil {
		progress(*total)
	}
	switch {
	case r.Failed > 0:
		return r, &Error{Kind: KindUnavailable, Detail: fmt.Sprintf("Weaviate failed to delete %d of %d objects of %s", r.Failed, r.Matches, t)}
	case r.Matches > r.Successful && r.Successful == 0:
		return r, &Error{Kind: KindUnavailable, Detail: fmt.Sprintf("Weaviate matched %d objects of %s and deleted none", r.Matches, t)}
	}
	return r, nil
}

// deleteAll deletes every object of t that where matches, a request of at
// most Weaviate's QUERY_MAXIMUM_RESULTS at a time, until none is left;
// progress, when set, gets the running total after each request. It returns
// how many it deleted. Objects written meanwhile that match are deleted
// too, as long as they come before the last request.
func (s *Store) deleteAll(ctx context.Context, t target, where restWhere, progress func(int64)) (int64, error) {
	var total int64
	for {
		r, err := s.deleteStep(ctx, t, where, &total, progress)
		if err != nil || r.Matches <= r.Successful {
			return total, err
		}
	}
}

// CountMessages counts the stored messages of sel (a dry run of the batch
// delete: nothing is deleted).
func (s *Store) CountMessages(ctx context.Context, sel Selection) (int64, error) {
	n, err := s.countMessages(ctx, sel)
	if err != nil {
		return n, fmt.Errorf("count %s: %w", sel, err)
	}
	return n, nil
}

func (s *Store) countMessages(ctx context.Context, sel Selection) (int64, error) {
	targets, err := s.selected(ctx, sel)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range targets {
		r, err := s.batchDelete(ctx, t, sel.where(), true)
		if err != nil {
			return n, err
		}
		n += r.Matches
	}
	return n, nil
}

// DeleteMessages deletes the stored messages of sel and returns how many it
// deleted; progress, when set, gets the running total after each request
// (one per QUERY_MAXIMUM_RESULTS messages). Messages of sel stored while it
// runs may be left: count them after (CountMessages).
func (s *Store) DeleteMessages(ctx context.Context, sel Selection, progress func(deleted int64)) (int64, error) {
	n, err := s.deleteMessages(ctx, sel, progress)
	if err != nil {
		return n, fmt.Errorf("delete %s (%d deleted): %w", sel, n, err)
	}
	return n, nil
}

func (s *Store) deleteMessages(ctx context.Context, sel Selection, progress func(int64)) (int64, error) {
	targets, err := s.selected(ctx, sel)
	if err != nil {
		return 0, err
	}
	var done int64
	for _, t := range targets {
		before := done
		report := func(n int64) {
			if progress != nil {
				progress(before + n)
			}
		}
		var n int64
		var err error
		if sel.Before.IsZero() {
			n, err = s.deleteAll(ctx, t, sel.where(), report)
		} else {
			n, err = s.deleteBackwards(ctx, t, sel, report)
		}
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Windows of a retention delete (deleteBackwards).
const (
	firstWindow = 24 * time.Hour
	minWindow   = time.Millisecond
)

// deleteBackwards deletes the messages of sel (which has a Before) in
// windows of sent_at, from Before back in time, each narrow enough that one
// request deletes all it matches. One filter over the whole selection would
// be found again in full by every request (Weaviate finds every match
// before it deletes at most QUERY_MAXIMUM_RESULTS): requests × matches, a
// quarter of a million messages per request on average for a first run
// over a million, hours for ten million. A window that matched more than a
// request deleted is narrowed and taken again; one that matched little is
// widened for the next. An empty window asks whether anything older is
// left at all (a dry run of the whole selection below it, which finds only
// what is left), so a gap in the history is crossed in a few widenings, and
// the walk ends when nothing older is left.
func (s *Store) deleteBackwards(ctx context.Context, t target, sel Selection, progress func(int64)) (int64, error) {
	var total int64
	hi, w := sel.Before, firstWindow
	for {
		lo := hi.Add(-w)
		if lo.Year() < 1 { // before any time Weaviate stores: no lower bound
			lo = time.Time{}
		}
		win := Selection{ChatID: sel.ChatID, Before: hi}
		r, err := s.deleteStep(ctx, t, win.window(lo), &total, progress)
		if err != nil {
			return total, err
		}
		if r.Matches > r.Successful { // more than a request takes: the rest of it, narrower
			w = max(w/2, minWindow)
			continue
		}
		if lo.IsZero() { // the window had no lower bound: nothing older is left
			return total, nil
		}
		hi = lo
		if r.Matches == 0 {
			older, err := s.batchDelete(ctx, t, Selection{ChatID: sel.ChatID, Before: hi}.where(), true)
			if err != nil {
				return total, err
			}
			if older.Matches == 0 {
				return total, nil
			}
			w *= 2
		} else if r.Limit > 0 && r.Matches < r.Limit/2 {
			w *= 2
		}
	}
}

// CountState counts the objects of chatID's muted state: its mute and
// unmute entries and its head (state.go).
func (s *Store) CountState(ctx context.Context, chatID string) (int64, error) {
	n, err := s.countState(ctx, chatID)
	if err != nil {
		return n, fmt.Errorf("count the state of chat %s: %w", chatID, err)
	}
	return n, nil
}

func (s *Store) countState(ctx context.Context, chatID string) (int64, error) {
	t, err := s.stateTarget(chatID)
	if err != nil {
		return 0, err
	}
	r, err := s.batchDelete(ctx, t, restText(propChatID, chatID), true)
	if err != nil {
		return 0, err
	}
	head, err := s.headWithoutChat(ctx, t, chatID)
	if err != nil {
		return r.Matches, err
	}
	return r.Matches + head, nil
}

// headWithoutChat is 1 when chatID's head exists and the filter on chat_id
// does not find it (a head holds no chat_id; a state written by an older
// version does, and is counted by the filter), else 0.
func (s *Store) headWithoutChat(ctx context.Context, t target, chatID string) (int64, error) {
	status, body, err := s.rest(ctx, http.MethodGet, "/objects/"+t.collection+"/"+StateID(chatID)+t.query())
	switch {
	case err != nil:
		return 0, err
	case status == http.StatusNotFound:
		return 0, nil
	case status != http.StatusOK:
		return 0, s.statusError(status, body)
	}
	var obj struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		return 0, &Error{Kind: KindRejected, Detail: "unexpected answer", Err: err}
	}
	if _, ok := obj.Properties[propChatID]; ok {
		return 0, nil
	}
	return 1, nil
}

// DeleteState deletes chatID's muted state, entries and head, and returns
// how many objects it deleted. The chat is then as if never muted or
// unmuted; a mute or unmute applied while it runs may be left (count after:
// CountState).
func (s *Store) DeleteState(ctx context.Context, chatID string) (int64, error) {
	n, err := s.deleteState(ctx, chatID)
	if err != nil {
		return n, fmt.Errorf("delete the state of chat %s (%d deleted): %w", chatID, n, err)
	}
	return n, nil
}

func (s *Store) deleteState(ctx context.Context, chatID string) (int64, error) {
	t, err := s.stateTarget(chatID)
	if err != nil {
		return 0, err
	}
	// The entries first, then the head: a reader that finds the head and
	// no entry reads "not muted", as it does with neither.
	n, err := s.deleteAll(ctx, t, restText(propChatID, chatID), nil)
	if err != nil {
		return n, err
	}
	// Weaviate answers 204 to the delete of an object that is not there:
	// the head is looked up first, to count it.
	head, err := s.headWithoutChat(ctx, t, chatID)
	if err != nil || head == 0 {
		return n, err
	}
	s.calls.deletes.Add(1)
	status, body, err := s.rest(ctx, http.MethodDelete, "/objects/"+t.collection+"/"+StateID(chatID)+t.query())
	switch {
	case err != nil:
	case status == http.StatusNoContent || status == http.StatusOK:
		n++
	case status == http.StatusNotFound: // deleted meanwhile
	default:
		err = s.statusError(status, body)
	}
	if err != nil {
		s.calls.failed.Add(1)
	}
	return n, err
}
