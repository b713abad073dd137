package dynamo

import (
	"testing"
	"time"
)

// SetBackoff shortens the retry backoff for one test.
func SetBackoff(t *testing.T, base, max time.Duration) {
	b, m := retryBase, retryMax
	retryBase, retryMax = base, max
	t.Cleanup(func() { retryBase, retryMax = b, m })
}
