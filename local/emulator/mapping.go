package emulator

import (
	"time"

	"github.com/wsbind/wsbind/infra"
	"github.com/wsbind/wsbind/internal/emulated/streams"
)

// itemsTable is the items table's logical id in the template.
const itemsTable = "ItemsTable"

// mappingConfig is the stream mapping's configuration as the template
// declares it for the items table's stream (infra.StreamMappingOf reads
// it): BatchSize, MaximumBatchingWindowInSeconds, MaximumRetryAttempts and
// BisectBatchOnFunctionError; a setting the template omits, or gives as an
// intrinsic, keeps streams' default. MaximumRetryAttempts 0 (no retries)
// keeps it too: streams.Config cannot say it.
func mappingConfig(t infra.Template) streams.Config {
	var cfg streams.Config
	m, ok := infra.StreamMappingOf(t, itemsTable)
	if !ok {
		return cfg
	}
	if n := m.BatchSize; n != nil && *n > 0 {
		cfg.BatchSize = *n
	}
	if n := m.MaximumBatchingWindowInSeconds; n != nil && *n > 0 {
		cfg.MaximumBatchingWindow = time.Duration(*n) * time.Second
	}
	if n := m.MaximumRetryAttempts; n != nil && *n != 0 {
		cfg.MaximumRetryAttempts = *n // -1: forever, as streams reads it too
	}
	if b := m.BisectBatchOnFunctionError; b != nil {
		cfg.BisectBatchOnFunctionError = *b
	}
	return cfg
}
