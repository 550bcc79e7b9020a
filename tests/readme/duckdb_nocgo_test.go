//go:build !cgo

package readme

// duckDB is nil without cgo: TestSQL skips (testenv.Cgo).
var duckDB func(query string) (int, error)
