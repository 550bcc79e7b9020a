//go:build cgo

package readme

import (
	"database/sql"
	"fmt"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver
)

// duckDB runs one query in an in-memory DuckDB and returns its column names and rows (NULL as
// nil); nil when built without cgo.
var duckDB = func(query string) (cols []string, rows [][]any, err error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, nil, fmt.Errorf("open DuckDB: %w", err)
	}
	defer db.Close()
	r, err := db.Query(query)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	if cols, err = r.Columns(); err != nil {
		return nil, nil, err
	}
	for r.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		rows = append(rows, row)
	}
	return cols, rows, r.Err()
}
