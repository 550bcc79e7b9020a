//go:build !cgo

package readme

// duckDB is nil without cgo: the DuckDB tests skip (testenv.Cgo).
var duckDB func(query string) (cols []string, rows [][]any, err error)
