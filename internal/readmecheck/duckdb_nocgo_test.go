//go:build !cgo

package readmecheck_test

// runDuckDB: the DuckDB driver needs cgo; without it only the static checks run.
func runDuckDB(string) ([]column, [][]any, error) { return nil, nil, errNoDuckDB }
