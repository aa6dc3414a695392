package store

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/weaviate/weaviate/entities/models"

	"github.com/chatprep/chatprep/internal/tokens"
)

// Tokenizations and data types chatprep's schema uses.
const (
	tokenField      = "field"
	tokenWord       = "word"
	tokenWhitespace = "whitespace"
	typeText        = "text"
	typeDate        = "date"
	typeBool        = "boolean"
	typeInt         = "int"
)

func ptr[T any](v T) *T { return &v }

// idProp is an id-like text: matched whole (tokenization field), filterable,
// not part of BM25. With word tokenization, chat "user-1" would also match
// "user-1-admin".
func idProp(name, description string) *models.Property {
	return &models.Property{
		Name: name, Description: description, DataType: []string{typeText},
		Tokenization: tokenField, IndexFilterable: ptr(true), IndexSearchable: ptr(false),
	}
}

// unindexed is a property only read back, never filtered on.
func unindexed(name, dataType, description string) *models.Property {
	p := &models.Property{Name: name, Description: description, DataType: []string{dataType}, IndexFilterable: ptr(false)}
	if dataType == typeText {
		p.Tokenization = tokenField
		p.IndexSearchable = ptr(false)
	}
	if dataType == typeDate || dataType == typeInt {
		p.IndexRangeFilters = ptr(false)
	}
	return p
}

// MessagesClass is the schema of MessagesCollection: one object per message
// event, no vectorizer (relevance is BM25 on text), multi-tenant (each
// chat's messages in one tenant; see tenants.go), with no tenant made on
// the fly: EnsureSchema makes them all.
func MessagesClass() *models.Class {
	return &models.Class{
		Class:              MessagesCollection,
		Description:        "chatprep: one object per chat message event",
		Vectorizer:         "none",
		MultiTenancyConfig: &models.MultiTenancyConfig{Enabled: true},
		Properties: []*models.Property{
			idProp(propChatID, "the chat"),
			idProp(propRole, "user or assistant"),
			// Only read back: an index on them would cost every write and
			// serve no query. (Existing collections may have them indexed;
			// that only costs their writes.)
			unindexed(propEventID, typeText, "the event (idempotency key)"),
			unindexed(propUserID, typeText, "the sender, when given"),
			unindexed(propChannel, typeText, "the channel, when given"),
			// BM25 alone searches chat_terms (see scopedTerms); only the
			// hybrid search of a collection with a vectorizer searches the
			// text, so only such a collection needs its BM25 index (see
			// checkTextIndex). Without a vectorizer the index would cost
			// every write and serve no query.
			{
				Name: propText, Description: "the message text", DataType: []string{typeText},
				Tokenization: tokenWord, IndexSearchable: ptr(false), IndexFilterable: ptr(false),
			},
			{
				Name: propSentAt, Description: "when the message was sent", DataType: []string{typeDate},
				IndexFilterable: ptr(true), IndexRangeFilters: ptr(true),
			},
			{
				Name: propChatTerms, Description: "the text's terms, scoped to the chat, for BM25 (see storedTerms)", DataType: []string{typeText},
				Tokenization: tokenWhitespace, IndexSearchable: ptr(true), IndexFilterable: ptr(false),
			},
			// The passages' neighbours are found by the minute and the hour
			// they were sent in (see Following): equality lookups, not a
			// range filter.
			{
				Name: propChatTime, Description: "the chat's digest with the hour and with the minute the message was sent in (see Following)", DataType: []string{typeText},
				Tokenization: tokenWhitespace, IndexFilterable: ptr(true), IndexSearchable: ptr(false),
			},
			// The ERP references the text mentions (see internal/refs), as
			// kind:REF tokens; has_refs finds the messages that have any.
			{
				Name: propRefs, Description: "the ERP references the text mentions, kind:REF separated by spaces", DataType: []string{typeText},
				Tokenization: tokenWhitespace, IndexFilterable: ptr(true), IndexSearchable: ptr(false),
			},
			{Name: propHasRefs, Description: "the text mentions an ERP reference", DataType: []string{typeBool}, IndexFilterable: ptr(true)},
			// The text's length in tokens, counted once when stored, in the
			// worker's TOKEN_ENCODING (a message stored under another
			// encoding is counted again when read).
			unindexed(tokensProp(tokens.O200kBase), typeInt, "the text's length in o200k_base tokens"),
			unindexed(tokensProp(tokens.Cl100kBase), typeInt, "the text's length in cl100k_base tokens"),
		},
	}
}

// tokensProp is the property holding a text's length in the encoding.
func tokensProp(encoding string) string { return "tokens_" + encoding }

// StateClass is the schema of StateCollection: one object per mute or
// unmute event of a chat (StateEntryID), found by chat_id and ordered by
// sent_at, and per chat one head read by its id (StateID); see state.go.
func StateClass() *models.Class {
	return &models.Class{
		Class:       StateCollection,
		Description: "chatprep: a chat's muted state",
		Vectorizer:  "none",
		Properties: []*models.Property{
			idProp(propChatID, "the chat"),
			{Name: propMuted, Description: "muted", DataType: []string{typeBool}, IndexFilterable: ptr(true)},
			unindexed(propUntil, typeDate, "the mute ends then; absent: until unmuted"),
			unindexed(propEventID, typeText, "the mute or unmute event"),
			unindexed(propUpdatedAt, typeDate, "when it was applied"),
			// Sorted on: the newest wins.
			{
				Name: propSentAt, Description: "the event's time: its sent_at, or when SQS received it", DataType: []string{typeDate},
				IndexFilterable: ptr(true), IndexRangeFilters: ptr(false),
			},
		},
	}
}

// EnsureSchema creates the collections, or brings existing ones up to date by
// adding missing properties. It is idempotent and safe to run from several
// processes at once and while workers run: a create that loses the race
// (422) is checked against the collection that won. A property whose type or
// indexing conflicts with what chatprep needs is a KindSchema error that says
// what to do; Weaviate cannot change those in place.
//
// It returns once Weaviate can write to both collections (see awaitIndex).
func (s *Store) EnsureSchema(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("ensure schema: %w", s.closedError())
	}
	for _, want := range []*models.Class{s.messagesClass(), StateClass()} {
		have, err := s.ensureClass(ctx, want)
		if err != nil {
			return fmt.Errorf("ensure collection %s: %w", want.Class, err)
		}
		if err := s.awaitIndex(ctx, want.Class); err != nil {
			return fmt.Errorf("ensure collection %s: %w", want.Class, err)
		}
		if want.Class == MessagesCollection {
			f := &facts{vectors: classVectors(have)}
			switch {
			case multiTenant(have):
				if f.tenants, err = s.ensureTenants(ctx); err != nil {
					return fmt.Errorf("ensure collection %s: %w", want.Class, err)
				}
			case multiTenant(want):
				s.log.Warn().Str("collection", want.Class).Msg("the collection was made without multi-tenancy (before chatprep had tenants) " +
					"and Weaviate cannot turn it on: it keeps working, without tenants, and each relevance search walks all of " +
					"Weaviate's unflushed writes (see the README's Performance section)")
			}
			s.known.Store(f)
		}
	}
	return nil
}

// messagesClass is MessagesClass as this store creates it: without
// multi-tenancy when Config.Tenants is negative.
func (s *Store) messagesClass() *models.Class {
	c := MessagesClass()
	if s.cfg.Tenants < 0 {
		c.MultiTenancyConfig = nil
	}
	return c
}

// ensureClass returns the collection as it is after creating or updating it.
func (s *Store) ensureClass(ctx context.Context, want *models.Class) (*models.Class, error) {
	have, err := s.getClass(ctx, want.Class)
	if err != nil {
		return nil, err
	}
	if have == nil {
		if s.testHookBeforeCreate != nil {
			s.testHookBeforeCreate(want.Class)
		}
		createErr := s.createClass(ctx, want)
		if createErr == nil {
			s.log.Info().Str("collection", want.Class).Msg("created Weaviate collection")
			return want, nil
		}
		// Refused or failed: another process may have created it first (422
		// "already exists"; under load the losing create can also fail
		// otherwise), or the definition itself was refused. The
		// collection's existence tells which, without reading the message.
		if ctx.Err() != nil {
			return nil, createErr
		}
		if have, err = s.getClass(ctx, want.Class); err != nil || have == nil {
			return nil, createErr
		}
	}
	return s.reconcile(ctx, want, have)
}

// reconcile adds want's properties missing from have and checks the others.
func (s *Store) reconcile(ctx context.Context, want, have *models.Class) (*models.Class, error) {
	var conflicts []string
	for _, wp := range want.Properties {
		hp := findProperty(have, wp.Name)
		if hp == nil {
			added, err := s.addProperty(ctx, want.Class, wp)
			if err != nil {
				return nil, err
			}
			if added != nil {
				have = added
				hp = findProperty(have, wp.Name)
			}
			if hp == nil {
				continue // added by us: it is what we want
			}
		}
		c, warn := compareProperty(wp, hp)
		if c != "" {
			conflicts = append(conflicts, c)
		}
		if warn != "" {
			s.log.Warn().Str("collection", want.Class).Str("property", wp.Name).Msg(warn)
		}
	}
	if want.Class == MessagesCollection {
		c, warn := checkTextIndex(have)
		if c != "" {
			conflicts = append(conflicts, c)
		}
		if warn != "" {
			s.log.Warn().Str("collection", want.Class).Str("property", propText).Msg(warn)
		}
	}
	if err := conflictError(want.Class, conflicts); err != nil {
		return nil, err
	}
	return have, nil
}

// checkTextIndex checks the text property's BM25 index against the search
// the messages collection gets: a hybrid search (a collection with a
// vectorizer, which a user creates; see classVectors) needs it; BM25 alone
// searches chat_terms, and then the index only costs every write (measured:
// bench row 7). A collection created before chatprep left it out has it:
// that is a warning, not a conflict. Weaviate 1.35 cannot drop a
// property's index in place; 1.36 can (DELETE
// /v1/schema/{class}/properties/{property}/index/searchable), and the
// warning says so rather than doing it: dropping an index is the
// operator's decision, and this version is tested against 1.35 only.
func checkTextIndex(have *models.Class) (conflict, warning string) {
	p := findProperty(have, propText)
	if p == nil {
		return "", ""
	}
	hybrid, searchable := classVectors(have).hybrid, indexOn(p.IndexSearchable)
	switch {
	case hybrid && !searchable:
		return "property " + propText + " is not searchable (BM25): the hybrid search of a collection with a vectorizer needs it", ""
	case !hybrid && searchable:
		return "", fmt.Sprintf("property %s has a BM25 index (indexSearchable) that only a hybrid search uses, and this collection has no vectorizer: "+
			"every write pays for it and no search reads it. Weaviate 1.35 cannot drop it in place; from Weaviate 1.36 on, "+
			"DELETE /v1/schema/%s/properties/%s/index/searchable drops it (a collection created by this version has none)",
			propText, have.Class, propText)
	}
	return "", ""
}

// checkClass is reconcile without changes, for a worker that must not
// change the schema (Ready): a property missing is an error that says to run
// `worker setup`, which adds it. Weaviate's auto-schema would otherwise add
// it on the first write, with its own tokenization and indexes.
func checkClass(want, have *models.Class) error {
	var missing, conflicts []string
	for _, wp := range want.Properties {
		hp := findProperty(have, wp.Name)
		if hp == nil {
			missing = append(missing, wp.Name)
			continue
		}
		if c, _ := compareProperty(wp, hp); c != "" {
			conflicts = append(conflicts, c)
		}
	}
	if want.Class == MessagesCollection {
		if c, _ := checkTextIndex(have); c != "" {
			conflicts = append(conflicts, c)
		}
	}
	if len(missing) > 0 {
		return &Error{Kind: KindSchema, Detail: fmt.Sprintf(
			"collection %s lacks properties this version writes (%s); run `worker setup`, which adds them",
			want.Class, strings.Join(missing, ", "))}
	}
	return conflictError(want.Class, conflicts)
}

// conflictError is the KindSchema error for properties Weaviate cannot change
// in place; nil without conflicts.
func conflictError(class string, conflicts []string) error {
	if len(conflicts) == 0 {
		return nil
	}
	return &Error{Kind: KindSchema, Detail: fmt.Sprintf(
		"collection %s exists with a different schema: %s. Weaviate cannot change this in place: "+
			"move the data to a collection with chatprep's schema, or delete collection %s "+
			"(its objects are lost) and run `worker setup` again",
		class, strings.Join(conflicts, "; "), class)}
}

// addProperty adds p to the class. When another process added it first, it
// returns the class as it is now (to be checked); otherwise nil.
func (s *Store) addProperty(ctx context.Context, class string, p *models.Property) (*models.Class, error) {
	s.calls.schema.Add(1)
	err := s.client.Schema().PropertyCreator().WithClassName(class).WithProperty(p).Do(ctx)
	if err == nil {
		s.log.Info().Str("collection", class).Str("property", p.Name).Msg("added property to Weaviate collection")
		return nil, nil
	}
	s.calls.failed.Add(1)
	addErr := fmt.Errorf("add property %s: %w", p.Name, s.clientError(ctx, err))
	if ctx.Err() != nil {
		return nil, addErr
	}
	// Another process may have added it first: then it is there now.
	now, err := s.getClass(ctx, class)
	if err != nil || now == nil || findProperty(now, p.Name) == nil {
		return nil, addErr
	}
	return now, nil
}

func findProperty(c *models.Class, name string) *models.Property {
	for _, p := range c.Properties {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}

// compareProperty says how have differs from want: a conflict that breaks
// chatprep, or a warning about something that only costs speed.
func compareProperty(want, have *models.Property) (conflict, warning string) {
	var problems []string
	if !slices.Equal(want.DataType, have.DataType) {
		problems = append(problems, fmt.Sprintf("is %s, chatprep needs %s", strings.Join(have.DataType, ","), strings.Join(want.DataType, ",")))
	}
	if want.Tokenization != "" && have.Tokenization != want.Tokenization {
		why := ""
		if want.Tokenization == tokenField {
			why = " (ids would match parts of other ids)"
		}
		problems = append(problems, fmt.Sprintf("has tokenization %q, chatprep needs %q%s", have.Tokenization, want.Tokenization, why))
	}
	if isTrue(want.IndexFilterable) && !indexOn(have.IndexFilterable) {
		problems = append(problems, "is not filterable")
	}
	if isTrue(want.IndexSearchable) && !indexOn(have.IndexSearchable) {
		problems = append(problems, "is not searchable (BM25)")
	}
	if len(problems) > 0 {
		conflict = "property " + want.Name + " " + strings.Join(problems, ", ")
	}
	if isTrue(want.IndexRangeFilters) && !isTrue(have.IndexRangeFilters) {
		warning = "property has no range index (indexRangeFilters): date filters are slower"
	}
	return conflict, warning
}

func isTrue(b *bool) bool { return b != nil && *b }

// indexOn reads an index flag as Weaviate does: absent means on.
func indexOn(b *bool) bool { return b == nil || *b }

// awaitIndexPoll bounds the wait between two looks at a new collection's
// index.
const awaitIndexPoll = 200 * time.Millisecond

// awaitIndex waits until Weaviate has the collection's index, which its
// shards endpoint answers for only then. Weaviate answers a schema change
// once it is agreed, and opens the index after: until then a write to the
// collection fails ("could not find index for class"). That took seconds on
// a loaded machine, and a worker started right after `worker setup` had its
// first writes refused.
func (s *Store) awaitIndex(ctx context.Context, class string) error {
	wait := 10 * time.Millisecond
	for {
		s.calls.schema.Add(1)
		status, body, err := s.rest(ctx, http.MethodGet, "/schema/"+class+"/shards")
		switch {
		case err == nil && status == http.StatusOK:
			return nil
		case err == nil && status != http.StatusNotFound:
			s.calls.failed.Add(1)
			return fmt.Errorf("read shards of collection %s: %w", class, s.statusError(status, body))
		case err != nil && !IsOutage(err):
			s.calls.failed.Add(1)
			return fmt.Errorf("read shards of collection %s: %w", class, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("collection %s exists, but Weaviate has not opened it: %w", class, callError(ctx, context.Cause(ctx)))
		case <-t.C:
		}
		wait = min(2*wait, awaitIndexPoll)
	}
}

// getClass returns the class, or nil if it does not exist.
func (s *Store) getClass(ctx context.Context, name string) (*models.Class, error) {
	s.calls.schema.Add(1)
	class, err := s.client.Schema().ClassGetter().WithClassName(name).Do(ctx)
	if err != nil {
		e := s.clientError(ctx, err)
		if e.Status == http.StatusNotFound {
			return nil, nil
		}
		s.calls.failed.Add(1)
		return nil, fmt.Errorf("read collection %s: %w", name, e)
	}
	return class, nil
}

func (s *Store) createClass(ctx context.Context, c *models.Class) error {
	s.calls.schema.Add(1)
	if err := s.client.Schema().ClassCreator().WithClass(c).Do(ctx); err != nil {
		s.calls.failed.Add(1)
		return fmt.Errorf("create collection %s: %w", c.Class, s.clientError(ctx, err))
	}
	return nil
}
