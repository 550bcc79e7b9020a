package compact

// SetCacheLimit sets the bound of decoded objects held at once (tests force rereads with it) and
// returns a func restoring it.
func SetCacheLimit(n int64) (restore func()) {
	old := cacheLimit
	cacheLimit = n
	return func() { cacheLimit = old }
}
