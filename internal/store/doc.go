// Package store is chatprep's Weaviate store: the recent messages of a chat by
// role, relevance search over its older messages, idempotent storing of
// message events, and each chat's muted state. It talks to Weaviate through
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
//     with word tokenization, BM25-searchable; sent_at a date with a range
//     index; no vectorizer.
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
//   - History is one filtered search (chat, role, sent_at <= before) sorted by
//     sent_at descending with a limit, reversed to oldest first. Weaviate
//     cannot combine sort with BM25, so relevance is a separate query.
//   - Relevant is a BM25 search on text filtered to the chat and sent_at, or
//     a hybrid search when the collection has a vectorizer (hybrid without
//     one fails on the server). The query is the text's words only (see
//     keywordQuery): user text is always data, never query syntax, whatever
//     quotes, braces, control characters, invalid UTF-8 or emoji it holds, and
//     a 16 KB message is capped at Config.MaxQueryTerms words.
//   - Muted is one REST GET of the chat's state head by its deterministic
//     id; for a chat that was ever muted or unmuted, then a search of its
//     entries sorted by sent_at. The newest entry is the state.
//   - Put and SetMuted hand their object to a batcher: concurrent calls share
//     one batch request (replace semantics, so a redelivered event stays one
//     object), each caller gets its own object's result, and a caller that
//     gives up never fails the others.
//
// Searches, the muted lookup and batch writes use gRPC when Config.GRPCAddr is
// set, else GraphQL and REST. The gRPC search replies are decoded straight
// from the wire into the few fields a result uses (grpcreply.go), not
// through the generated types' reflection. Every GraphQL answer's Errors are checked: a
// GraphQL error (also "429 Too many requests") comes with HTTP 200.
//
// # Errors
//
// Every failed call returns an error wrapping *Error, whose Kind tells
// outages (unavailable, overloaded, timeout) from the rest (unauthorized,
// rejected, schema conflict, closed); its Transient method tells whether the
// request itself is at fault (rejected, schema conflict) or not. Use
// errors.As, KindOf, IsOutage or Transient, never the text. Messages say what was being done ("history of
// chat c-1 (user): ...") and never contain the API key or more than a short
// excerpt of Weaviate's answer.
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
// text property: v1.35.2 walks that whole memtable on every BM25 query to
// average the text lengths. With the default memtable lifetime (45-60 s of
// writes) relevance fell to ~60 searches/s while 300 messages/s arrived; with
// PERSISTENCE_MEMTABLES_MAX_ACTIVE_DURATION_SECONDS=5,
// PERSISTENCE_MEMTABLES_MIN_ACTIVE_DURATION_SECONDS=1 and
// PERSISTENCE_MEMTABLES_FLUSH_DIRTY_AFTER_SECONDS=5 it was ~650-900/s
// (USE_BLOCKMAX_WAND=false alone: ~360/s). That is server configuration,
// outside this package; the tests' server uses the tuned values.
package store
