package storecopy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// batchRows is how many rows one INSERT carries: few round trips, and far
// below PostgreSQL's limit of 65535 parameters for the widest table.
const batchRows = 500

// copyTable streams one table from the source into the target in batches.
func copyTable(ctx context.Context, src, dst *sqlx.Tx, t table) error {
	rows, err := src.QueryContext(ctx, `SELECT `+t.columnList()+` FROM `+t.name+` ORDER BY `+t.order)
	if err != nil {
		return fmt.Errorf("storecopy: source: read %s: %w", t.name, err)
	}
	defer func() { _ = rows.Close() }() // read-only
	var (
		batch []any
		n     int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		if _, err := dst.ExecContext(ctx, insertStatement(t, n), batch...); err != nil {
			return fmt.Errorf("storecopy: target: write %s: %w", t.name, err)
		}
		batch, n = batch[:0], 0
		return nil
	}
	raw := make([]any, len(t.columns))
	ptrs := make([]any, len(t.columns))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("storecopy: source: read %s: %w", t.name, err)
		}
		for i, c := range t.columns {
			v, err := convert(raw[i], c.kind)
			if err != nil {
				return fmt.Errorf("storecopy: source: %s.%s: %w", t.name, c.name, err)
			}
			batch = append(batch, v)
		}
		if n++; n == batchRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("storecopy: source: read %s: %w", t.name, err)
	}
	return flush()
}

// insertStatement is INSERT INTO t (…) VALUES ($1, …), (…) for n rows.
func insertStatement(t table, n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.name + " (" + t.columnList() + ") VALUES ")
	p := 1
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range t.columns {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(p))
			p++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// convert turns a SQLite value into the PostgreSQL column's, refusing
// anything the schema does not allow rather than guessing.
func convert(v any, k kind) (any, error) {
	switch k {
	case text:
		switch v := v.(type) {
		case string:
			return v, nil
		case []byte:
			return string(v), nil
		}
	case integer:
		switch v.(type) {
		case int64, nil:
			return v, nil
		}
	case boolean:
		if i, ok := v.(int64); ok && (i == 0 || i == 1) {
			return i == 1, nil
		}
	case blob:
		if b, ok := v.([]byte); ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("unexpected value %#v", v)
}
