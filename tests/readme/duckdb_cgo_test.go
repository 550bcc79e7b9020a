//go:build cgo

package readme

import (
	"database/sql"
	"fmt"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver
)

// duckDB runs one query in an in-memory DuckDB and returns how many rows it produced; nil when
// built without cgo.
var duckDB = func(query string) (int, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return 0, fmt.Errorf("open DuckDB: %w", err)
	}
	defer db.Close()
	rows, err := db.Query(query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}
