package main

import (
	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/config"
	"github.com/chatprep/chatprep/internal/store"
)

// storeConfig is the Weaviate store's configuration for cfg.
func storeConfig(cfg config.Config, log zerolog.Logger) store.Config {
	return store.Config{
		URL:      cfg.WeaviateURL,
		APIKey:   cfg.WeaviateAPIKey,
		GRPCAddr: cfg.WeaviateGRPCAddr,
		MaxConns: cfg.PoolSize,
		Logger:   log.With().Str("component", "store").Logger(),
	}
}

func nopLogger() zerolog.Logger { return zerolog.Nop() }
