//go:build !unix

package partitionlog

// processFileLimit is unknown here: the cache takes a conservative default.
func processFileLimit() (int64, bool) { return 0, false }
