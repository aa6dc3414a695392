// Package store is chatprep's Weaviate store: the recent messages of a chat,
// relevance search over its older messages and the messages that follow a
// hit, the ERP references a chat mentioned, idempotent storing of message
// events (with their terms, token count, references and hour), and each
// chat's muted state. It talks to Weaviate through
// github.com/weaviate/weaviate-go-client/v4 and, when Config.GRPCAddr is set,
// through Weaviate's gRPC API (the protobuf types of
// github.com/weaviate/weaviate/grpc/generated/protocol/v1).
//
// # Collections
//
// EnsureSchema creates two collections with an explicit schema (Weaviate runs
// with auto-schema off), idempotently and safely from several processes:
//
//   - MessagesCollection (ChatMessage), one object per message event, id
//     MessageID(chat id, event id): chat_id, event_id, role, user_id and
//     channel as text with tokenization field, filterable, not BM25-searchable
//     (with word tokenization chat "user-1" would match "user-1-admin"); text
//     with word tokenization and no index, unless the collection has a
//     vectorizer: then BM25-searchable, the keyword half of the hybrid search
//     (see checkTextIndex); sent_at a date with a range index; chat_terms, the text's
//     terms (internal/terms: stems without stop words) behind a digest of the
//     chat, whitespace tokenization, BM25-searchable (the BM25 search);
//     chat_time, the chat's digest with the hour and with the minute of
//     sent_at, two tokens, whitespace, filterable (Following); refs, the text's ERP references as kind:REF,
//     whitespace, filterable, and has_refs, boolean, filterable
//     (References); tokens_o200k_base and tokens_cl100k_base, ints, not
//     indexed (the count in the worker's encoding; Config.Tokens); no
//     vectorizer (a collection created with one makes Relevant hybrid).
//     Multi-tenant: each chat's messages in tenant hash(chat id) mod N, N
//     (DefaultTenants, 64) recorded in the tenants' names chats-I-of-N, all
//     made by EnsureSchema, read from the collection by every other process
//     (see Tenants). A collection made before multi-tenancy keeps working
//     without tenants.
//   - StateCollection (ChatState), one object per mute or unmute event, id
//     StateEntryID(chat id, event id): chat_id, muted, until, event_id,
//     sent_at (the event's time), updated_at; and per chat that has them a
//     head, id StateID(chat id), that says so (state.go: why the state is
//     never overwritten).
//
// # Calls
//
// One Store per process holds one pooled HTTP transport (Config.MaxConns
// connections kept alive), one Weaviate client and at most one gRPC
// connection; nothing is opened per message.
//
//   - History (one role) and Recent (both) are one filtered search (chat,
//     role) sorted by sent_at descending with a limit, reversed to oldest
//     first. Weaviate cannot combine sort with BM25, so relevance is a
//     separate query.
//   - Relevant is a BM25 search on chat_terms filtered to the chat, or a
//     hybrid search on text when the collection has a vectorizer (hybrid
//     without one fails on the server). The query is the text's terms only
//     (see keywordQuery and queryTerms): user text is always data, never
//     query syntax, whatever quotes, braces, control characters, invalid
//     UTF-8 or emoji it holds, and a 16 KB message is capped at
//     Config.MaxQueryTerms words.
//   - Following is one search for the messages in the hits' minutes and
//     the two after (chat_time ContainsAny), from which each hit's next
//     messages are picked, and for the hits whose followers are not all
//     there, one more for their hours and the hours after (ReplyWindow).
//   - References is one search for the chat's messages with has_refs,
//     sorted by sent_at descending.
//   - Muted is one REST GET of the chat's state head by its deterministic
//     id; for a chat that was ever muted or unmuted, then a search of its
//     entries sorted by sent_at. The newest entry is the state.
//   - Put and SetMuted hand their object to a batcher: concurrent calls share
//     one batch request (replace semantics, so a redelivered event stays one
//     object), each caller gets its own object's result (see Writes), and a
//     caller that gives up never fails the others.
//
// Searches, the muted lookup and batch writes use gRPC when Config.GRPCAddr is
// set, else GraphQL and REST. The gRPC search replies are decoded straight
// from the wire into the few fields a result uses (grpcreply.go), not
// through the generated types' reflection. Every GraphQL answer's Errors are checked: a
// GraphQL error (also "429 Too many requests") comes with HTTP 200.
//
// # Writes: what counts as stored
//
// A write that Weaviate did not confirm is never counted as stored. Weaviate
// v1.35.2 answers a batch request with an error per failed object, and
// reports the failure of a whole shard on one object only:
//
//   - Shard.PutObjectBatch (adapters/repos/db/shard_write_batch_objects.go,
//     lines 33-41) returns []error{err}, one error for the whole batch, when
//     the shard is read-only (isReadOnly, shard_status.go: a shard Weaviate
//     set READONLY when its disk passed DISK_USE_READONLY_PERCENTAGE, or an
//     operator did through PUT /v1/schema/{collection}/shards/{shard});
//   - Index.putObjectBatch (adapters/repos/db/index.go, lines 1141-1222)
//     groups the objects by shard, sets errs = []error{err} when the shard
//     cannot be had (getShardForDirectLocalOperation fails, line 1198: a
//     shard that cannot be opened), or takes PutObjectBatch's slice (line
//     1204), and then copies that slice position by position (lines
//     1211-1214): only the group's first object gets the error; every other
//     object of that shard comes back with none, as if written;
//   - DB.BatchPutObjects (adapters/repos/db/batch.go, lines 103-117) does
//     that per collection, so in a request that mixes collections it is the
//     first object of each collection's shard.
//
// TestReadOnlyShard checks this against the real server on both paths. So
// the rule (confirm): where Weaviate reports an error for any object of a
// collection, no object of that collection in that request counts as
// stored, and the collection's shard status (GET
// /v1/schema/{collection}/shards, one call, only then) says what the error
// was. The error text is not read: it cannot tell a shard's failure from an
// object's. A READONLY shard fails every object with KindReadOnly; a shard
// status that cannot be read, or any status but READY and INDEXING, fails
// every object with that failure (unavailable, a refused key); with every
// shard writable the refused object is KindRejected and the others
// KindUnconfirmed (transient: written again, an idempotent replace). With
// one shard per collection, as Weaviate creates on one node, that is the
// whole request's objects of that collection; with several shards it fails
// more than needed, never less. An object missing from the answer is
// KindUnconfirmed too.
//
// # Errors
//
// Every failed call returns an error wrapping *Error, whose Kind classifies
// it, the same way on both paths:
//
//	failure                                   REST / GraphQL                     gRPC                                  Kind
//	no answer (refused, reset, DNS)           network error                      Unavailable, Aborted, no status       KindUnavailable   outage
//	Weaviate (or a proxy) failed the call     5xx, 408; a GraphQL error*          Unknown, Internal*                    KindUnavailable   outage
//	overloaded                                429; GraphQL "429 Too many…"        ResourceExhausted                     KindOverloaded    outage
//	the call's deadline passed                context deadline                   DeadlineExceeded                      KindTimeout       outage
//	the caller cancelled                      context canceled                   Canceled                              KindCanceled
//	key refused or missing, not allowed       401, 403                           Unauthenticated, PermissionDenied,
//	                                                                             Unknown/Internal*                     KindUnauthorized  lasting
//	a shard read-only (writes)                batch object error + READONLY shard (see Writes)                         KindReadOnly      lasting
//	write not confirmed (writes)              another object of the batch failed (see Writes)                          KindUnconfirmed
//	the request itself refused                other 4xx; object error, shard ok  InvalidArgument, NotFound, …          KindRejected
//	collection missing                        404 from the schema                Unknown/Internal*                     KindRejected
//	schema conflict                           —                                  —                                     KindSchema
//	store closed                              —                                  —                                     KindClosed
//
// (*) A gRPC Unknown or Internal says only "it failed": Weaviate answers
// every plain error of its own so (a refused key too, "extract auth: …",
// the reason only in its text) and so does a proxy in front of it. A
// GraphQL error in a 200 answer is the same failure on the other path. Both
// are classified by asking Weaviate's REST API what state it is in
// (diagnose: one authenticated call, GET /v1/schema/ChatMessage/shards): a
// 401 or 403 makes it KindUnauthorized, a 404 of the collection
// KindRejected, no answer an outage; with REST answering normally,
// Weaviate failed this one call: KindUnavailable, as an HTTP 500 is.
// TestOneClassificationForBothPaths (a failing proxy), TestAPIKey,
// TestReadOnlyShard and TestWeaviateDown check each kind on both paths
// against the real server.
//
// Outages (Kind.Outage) may go away by themselves; lasting faults
// (Kind.Lasting) last until someone changes something and fail every such
// call meanwhile; both are Weaviate's faults (Kind.Fault, IsFault), which
// the worker's circuit breaker counts (one lasting fault opens it at once),
// holding its messages instead of failing them. Check is the breaker's
// half-open check: Ready, and every shard writable. Transient tells whether
// the request itself is at fault (rejected, schema conflict) or not. Use
// errors.As, KindOf, IsOutage, IsLasting, IsFault or Transient, never the
// text. Messages say what was being done ("history of chat c-1 (user):
// ...") and never contain the API key or more than a short excerpt of
// Weaviate's answer.
//
// # Verify and repair
//
// ScanMessages reads the messages collection from Weaviate's object store
// (its cursor, by id), Unfindable asks the worker's searches for them by id,
// and Reindex makes Weaviate write a message's index entries anew (a replace
// of an identical object is skipped by Weaviate: see Reindex). They are
// `worker verify` (internal/verify).
//
// # Bulk loads and erasing
//
// PutMessages writes a batch of message events as Put writes each one (the
// same object in its chat's tenant, the same write path and
// confirmation), for `worker import` (internal/importer). CountMessages and
// DeleteMessages take a Selection (a chat, messages sent before a time, or
// both), CountState and DeleteState a chat's muted state, for `worker
// forget` (internal/forget): Weaviate's batch delete by filter over REST,
// looped past QUERY_MAXIMUM_RESULTS (erase.go). Each of their requests
// names its collection and tenant through a target (messagesTargets,
// stateTarget): a chat's messages in its tenant, every chat's tenant by
// tenant, in the order the scan of verify walks them.
//
// # Cost
//
// Measured with bench_test.go on 2 cores shared by Weaviate v1.35.2, the
// benchmark and other work (numbers vary by half between runs; the ratios
// hold): 200 chats of 50 messages, 32 concurrent callers. gRPC searches cost
// Weaviate about half of GraphQL ones (history ~2000/s against ~1100/s,
// relevance ~1850/s against ~1050/s); the REST GET by id is the cheapest
// muted lookup (~14900/s; gRPC search by id ~11200/s, GraphQL ~3700/s);
// batched Puts store ~4100 objects/s (~32 per request) against ~1700/s one
// object per request.
//
// Weaviate's BM25 cost grows with the objects in the active memtable of the
// searched property: v1.35.2 walks that whole memtable on every BM25 query
// to average the property's lengths. With the default memtable lifetime
// (45-60 s of writes) relevance fell to ~60 searches/s while 300 messages/s
// arrived; with PERSISTENCE_MEMTABLES_MAX_ACTIVE_DURATION_SECONDS=5,
// PERSISTENCE_MEMTABLES_MIN_ACTIVE_DURATION_SECONDS=1 and
// PERSISTENCE_MEMTABLES_FLUSH_DIRTY_AFTER_SECONDS=5 it was ~650-900/s
// (USE_BLOCKMAX_WAND=false alone: ~360/s). That is server configuration
// that Weaviate Cloud users cannot make; the tenants (below) keep the walk
// small on Weaviate's own settings. The tests' server uses the tuned values
// unless WEAVIATE_DEFAULTS=1.
//
// # Tenants
//
// Why the messages collection is multi-tenant, and N, measured with `go test
// -run '^$' -bench Tenancy ./bench/` (bench/tenancy_test.go): the worker's
// Weaviate calls for each event (two history searches, the relevance search,
// the muted lookup, the store), open loop at 100 events/s over 50 chats of
// 50 messages, for 60 s, on a fresh Weaviate with its own memtable
// settings, 2 cores shared with other work:
//
//	tenants   Weaviate CPU / event   GetPropLengths' share of Weaviate's CPU (pprof)
//	none      34-38 ms at 2 events/s (at 100 events/s Weaviate saturates: writes time out after 30 s)   75%
//	16        7.8 ms                 31%
//	64        6.3-8.0 ms             18-19%
//	256       6.5 ms                 13%
//
// Without tenants the seed's 2,500 messages alone, still in the memtable,
// make every relevance search walk some 40,000 postings. With tenants each
// search walks its tenant's: a chat's own recent writes and those of the
// chats that share its tenant. Past 64 the gain is small here (50 chats at
// 2 events/s each: a chat's own writes are what is left), while each tenant
// is a shard with its own buckets, files (1,435-1,624 in the data directory
// with 64 tenants, 1,928 with 256) and flushes: 64 is the default. Where
// the memtables are flushed every few seconds (the devstack's tuned
// settings, -tenancy.tuned) the tenants cost nothing: at 40 events/s,
// alternating, two rounds each, Weaviate spent 13 and 14 ms of CPU per
// event without tenants and 9.8 and 11 ms with 64. The muted state is read
// by id and by filter, never by BM25, and has no tenants.
package store
