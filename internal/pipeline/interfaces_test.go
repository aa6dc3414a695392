package pipeline_test

import (
	"testing"

	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/metrics"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/pool"
	"github.com/chatprep/chatprep/internal/publish"
	"github.com/chatprep/chatprep/internal/route"
	"github.com/chatprep/chatprep/internal/store"
)

// The real collaborators satisfy the interfaces the pipeline declares.
var (
	_ pipeline.Store     = (*store.Store)(nil)
	_ pipeline.Publisher = (*publish.Publisher)(nil)
	_ pipeline.Pool      = (*pool.Pool)(nil)
	_ pipeline.Router    = (*route.Router)(nil)
	_ pipeline.Metrics   = (*metrics.Aggregator)(nil)
	_ handler.Handler    = (*pipeline.Handler)(nil)
)

// TestMetricNamesMatchTheMetricsPackage: the pipeline's own constants carry
// the contract's names, as the metrics package exports them.
func TestMetricNamesMatchTheMetricsPackage(t *testing.T) {
	t.Parallel()
	for mine, theirs := range map[string]string{
		pipeline.MetricMessageHistoryDuration:  metrics.MessageHistoryDuration,
		pipeline.MetricRelevanceSearchDuration: metrics.RelevanceSearchDuration,
		pipeline.MetricPreprocessingDuration:   metrics.PreprocessingDuration,
		pipeline.MetricHandlerTotalDuration:    metrics.HandlerTotalDuration,
		pipeline.MetricMessagesProcessed:       metrics.MessagesProcessed,
		pipeline.MetricMessagesDegraded:        metrics.MessagesDegraded,
		pipeline.MetricMessagesMuted:           metrics.MessagesMuted,
	} {
		if mine != theirs {
			t.Errorf("pipeline uses %q where the metrics package says %q", mine, theirs)
		}
	}
}
