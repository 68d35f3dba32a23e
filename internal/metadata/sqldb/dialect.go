package sqldb

// The package writes one SQL for both databases. Where their functions
// differ, queries ask for the dialect's spelling here.

// fn names a scalar function in the database's dialect, by SQLite's name:
// "instr" (1-based position of a substring, 0 if absent), "max" (the
// greater of two values; an aggregate of one in PostgreSQL) and
// "group_concat" (an aggregate joining strings with a separator).
func (db *DB) fn(sqliteName string) string {
	if !db.postgres {
		return sqliteName
	}
	switch sqliteName {
	case "instr":
		return "strpos"
	case "max":
		return "GREATEST"
	case "group_concat":
		return "string_agg"
	}
	panic("sqldb: no PostgreSQL spelling for " + sqliteName)
}

// jsonStrings is a subquery over the strings of a JSON array given as one
// text parameter: a list of any length in one placeholder.
func (db *DB) jsonStrings() string {
	if db.postgres {
		return `SELECT json_array_elements_text(CAST(? AS json))`
	}
	return `SELECT value FROM json_each(?)`
}
