// Package storetest reads what a worker stored in Weaviate, from outside:
// over Weaviate's REST and GraphQL APIs directly, not through the store
// package's client, so that a test sees the objects as Weaviate holds them:
// a chat's stored messages and their count (in the chat's tenant when the
// collection has tenants), one event's message by its deterministic id,
// whether an object exists.
//
// The whole-worker tests use it (package app's, the worker binary's, the
// chaos suite's); it takes from package store only the names the contract
// fixes (the collection, the tenant and object ids).
package storetest
