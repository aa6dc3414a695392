package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/weaviate/weaviate/entities/models"
)

// Tenants. The messages collection is multi-tenant: each chat's messages
// live in tenant hash(chat id) mod N (tenantOf), each tenant a shard of its
// own, with its own in-memory write buffers (memtables). Weaviate v1.35.2's
// BM25 walks the searched property's whole active and flushing memtable on
// every query to average the property's lengths
// (lsmkv.Bucket.GetAveragePropertyLength, bucket.go line 2097, calling
// Memtable.GetPropLengths, memtable.go line 584), and with Weaviate's own
// settings a memtable holds the last minute of writes (it is flushed once
// it has been dirty for PERSISTENCE_MEMTABLES_FLUSH_DIRTY_AFTER_SECONDS,
// 60 s, unless it reaches its size limit first). In one shard every
// relevance search walks everyone's last minute; in a tenant, an Nth of it.
// A chat's history and relevance searches stay in one tenant, so they are
// the same searches as before, on a smaller shard.
//
// N is recorded in the collection itself: the tenants are named
// chats-I-of-N (tenantName), `worker setup` creates all N (EnsureSchema,
// with Config.Tenants, DefaultTenants for a new collection), and every
// other process reads N from the names once (facts) and refuses to work
// while the set is not complete. So every worker and command agrees on
// where a chat lives, and N cannot change under a running worker. A
// collection made before multi-tenancy (Weaviate cannot turn it on later)
// keeps working without tenants: every request then names none.
//
// Every request about a chat's messages names its tenant through tenantOf:
// the gRPC and GraphQL searches, the batch writes (writeObject.tenant, so
// Put and the bulk loads of PutMessages alike), the REST reads and
// replaces of verify, the counts and deletes of an erase (erase.go); what
// is about every chat's messages, the scan of verify and a retention over
// all chats, walks the tenants in order (messageTenants). The chats' muted state (StateCollection) is read by id and by a
// filter, never by BM25: it has no tenants.

// DefaultTenants is how many tenants EnsureSchema gives a new messages
// collection: with Weaviate's own memtable settings each relevance search
// then walks a 64th of the last minute's writes, while 64 shards cost a
// single node little (see the Tenants section of the package doc for the
// measurements).
const DefaultTenants = 64

// tenantName is the name of tenant i of n.
func tenantName(i, n int) string { return fmt.Sprintf("chats-%03d-of-%03d", i, n) }

// parseTenant reads a tenantName; false for any other name.
func parseTenant(name string) (i, n int, ok bool) {
	if _, err := fmt.Sscanf(name, "chats-%d-of-%d", &i, &n); err != nil || n < 1 || i < 0 || i >= n || tenantName(i, n) != name {
		return 0, 0, false
	}
	return i, n, true
}

// tenantIndex is chatID's tenant among n: the first 8 bytes of its SHA-256,
// mod n.
func tenantIndex(chatID string, n int) int {
	sum := sha256.Sum256([]byte(chatID))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(n))
}

// TenantIndex is the index of chatID's tenant among n tenants, as the
// store places it (tenant I of n holds the chats whose index is I). For
// models of what a tenant holds (bench/recall: BM25's N and mean length
// are a tenant's); the store's own requests use tenantOf.
func TenantIndex(chatID string, n int) int { return tenantIndex(chatID, n) }

// facts are what a Store learns once about the messages collection: neither
// can change while the collection exists.
type facts struct {
	vectors vectorInfo
	tenants int // 0: the collection has no multi-tenancy
}

// tenant is chatID's tenant, "" without tenants.
func (f *facts) tenant(chatID string) string {
	if f.tenants == 0 {
		return ""
	}
	return tenantName(tenantIndex(chatID, f.tenants), f.tenants)
}

// tenantNames are every tenant's name, in order.
func (f *facts) tenantNames() []string {
	out := make([]string, f.tenants)
	for i := range out {
		out[i] = tenantName(i, f.tenants)
	}
	return out
}

// messageTenants are the tenants that hold the messages of chatID, or of
// every chat when chatID is "": its own tenant, or every tenant in order;
// [""] (one request naming none) without tenants. The one walk over the
// tenants: the scan of verify and the erases of every chat take it from
// here.
func (f *facts) messageTenants(chatID string) []string {
	switch {
	case f.tenants == 0:
		return []string{""}
	case chatID != "":
		return []string{f.tenant(chatID)}
	}
	return f.tenantNames()
}

// tenantOf is the tenant of the messages collection that holds chatID's
// messages, "" when the collection has no tenants: the one place every
// request about a chat's messages takes its tenant from. It learns the
// collection's tenants on first use (see facts).
func (s *Store) tenantOf(ctx context.Context, chatID string) (string, error) {
	f, err := s.facts(ctx)
	if err != nil {
		return "", err
	}
	return f.tenant(chatID), nil
}

// facts returns what the store knows about the messages collection,
// reading it once (the collection's schema, and its tenants when it has
// multi-tenancy): from EnsureSchema, Ready or the first call that needs it.
// A collection missing, or its tenants incomplete, is an error and is not
// remembered, so a later call reads again.
func (s *Store) facts(ctx context.Context) (*facts, error) {
	if f := s.known.Load(); f != nil {
		return f, nil
	}
	class, err := s.getClass(ctx, MessagesCollection)
	if err != nil {
		return nil, err
	}
	if class == nil {
		return nil, &Error{Kind: KindRejected, Detail: "collection " + MessagesCollection + " does not exist; run `worker setup`"}
	}
	f := &facts{vectors: classVectors(class)}
	if multiTenant(class) {
		names, err := s.tenantList(ctx)
		if err != nil {
			return nil, err
		}
		n, missing, err := tenantSet(names)
		if err == nil && (n == 0 || len(missing) > 0) {
			err = &Error{Kind: KindRejected, Detail: fmt.Sprintf("collection %s has %d of its tenants; run `worker setup`", MessagesCollection, n-len(missing))}
		}
		if err != nil {
			return nil, err
		}
		f.tenants = n
	}
	s.known.Store(f)
	return f, nil
}

func multiTenant(c *models.Class) bool {
	return c.MultiTenancyConfig != nil && c.MultiTenancyConfig.Enabled
}

// tenantSet reads the layout from the collection's tenant names: n, and the
// names of tenants 0..n-1 that are missing. A name that is not chatprep's,
// or names of two different n, are a KindSchema error. No names: n is 0.
func tenantSet(names []string) (n int, missing []string, err error) {
	have := map[int]bool{}
	for _, name := range names {
		i, m, ok := parseTenant(name)
		if !ok {
			return 0, nil, &Error{Kind: KindSchema, Detail: fmt.Sprintf("collection %s has tenant %q, which chatprep did not make (it names them chats-I-of-N)", MessagesCollection, name)}
		}
		if n != 0 && m != n {
			return 0, nil, &Error{Kind: KindSchema, Detail: fmt.Sprintf("collection %s has tenants of %d and of %d", MessagesCollection, n, m)}
		}
		n, have[i] = m, true
	}
	for i := range n {
		if !have[i] {
			missing = append(missing, tenantName(i, n))
		}
	}
	return n, missing, nil
}

// tenantList is the names of the messages collection's tenants.
func (s *Store) tenantList(ctx context.Context) ([]string, error) {
	s.calls.schema.Add(1)
	status, body, err := s.rest(ctx, http.MethodGet, "/schema/"+MessagesCollection+"/tenants")
	if err == nil && status != http.StatusOK {
		err = s.statusError(status, body)
	}
	var ts []struct {
		Name string `json:"name"`
	}
	if err == nil {
		if jerr := json.Unmarshal(body, &ts); jerr != nil {
			err = &Error{Kind: KindRejected, Detail: "unexpected answer", Err: jerr}
		}
	}
	if err != nil {
		s.calls.failed.Add(1)
		return nil, fmt.Errorf("read the tenants of %s: %w", MessagesCollection, err)
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return names, nil
}

// ensureTenants gives the multi-tenant messages collection every tenant of
// its layout: the n its tenants' names record, or, when it has none yet
// (just created), Config.Tenants. Creating a tenant that exists succeeds,
// so two setups at once agree.
func (s *Store) ensureTenants(ctx context.Context) (int, error) {
	names, err := s.tenantList(ctx)
	if err != nil {
		return 0, err
	}
	n, missing, err := tenantSet(names)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		if s.cfg.Tenants < 1 {
			return 0, &Error{Kind: KindSchema, Detail: fmt.Sprintf("collection %s is multi-tenant and has no tenants, and this setup makes none (Tenants %d)", MessagesCollection, s.cfg.Tenants)}
		}
		n = s.cfg.Tenants
		missing = (&facts{tenants: n}).tenantNames()
	}
	for part := range slices.Chunk(missing, 100) {
		body := make([]map[string]string, len(part))
		for i, name := range part {
			body[i] = map[string]string{"name": name}
		}
		b, _ := json.Marshal(body)
		s.calls.schema.Add(1)
		status, answer, err := s.restBody(ctx, http.MethodPost, "/schema/"+MessagesCollection+"/tenants", b)
		if err == nil && status != http.StatusOK {
			err = s.statusError(status, answer)
		}
		if err != nil {
			s.calls.failed.Add(1)
			return 0, fmt.Errorf("create tenants %s… of %s: %w", part[0], MessagesCollection, err)
		}
	}
	if len(missing) > 0 {
		s.log.Info().Str("collection", MessagesCollection).Int("tenants", n).Int("created", len(missing)).Msg("created Weaviate tenants")
	}
	return n, nil
}

// Layout says how the messages collection is laid out, as EnsureSchema or
// the first call learned it: "messages in 64 tenants", or for a collection
// made before multi-tenancy, that it has none.
func (s *Store) Layout() string {
	f := s.known.Load()
	switch {
	case f == nil:
		return "layout not read yet"
	case f.tenants == 0:
		return "messages without tenants: the collection predates them, see docs/DEPLOY.md"
	}
	return fmt.Sprintf("messages in %d tenants", f.tenants)
}

// ChatTenant is the tenant that holds chatID's messages among names, the
// messages collection's tenants as Weaviate lists them (GET
// /v1/schema/ChatMessage/tenants); "" for none (a collection without
// multi-tenancy). For tools and tests that ask Weaviate themselves; the
// store's own requests use tenantOf.
func ChatTenant(chatID string, names []string) (string, error) {
	n, missing, err := tenantSet(names)
	if err == nil && len(missing) > 0 {
		err = &Error{Kind: KindRejected, Detail: fmt.Sprintf("collection %s has %d of its tenants", MessagesCollection, n-len(missing))}
	}
	if err != nil {
		return "", err
	}
	return (&facts{tenants: n}).tenant(chatID), nil
}
