package sqlstore

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// TestNewQueries checks every query for both kinds of dialect: rebinding
// must leave no '?' behind for PostgreSQL (a '?' in a shared query would be
// sent as is) and add no '$' for SQLite.
func TestNewQueries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dialect Dialect
		absent  string
	}{
		{"sqlite", Dialect{BindType: sqlx.QUESTION, Greatest: "MAX", UsernameMatch: "username = ?"}, "$"},
		{"postgres", Dialect{BindType: sqlx.DOLLAR, Greatest: "GREATEST", UsernameMatch: "lower(username) = lower(?)",
			LockUpdate: " FOR UPDATE OF s", LockShare: " FOR SHARE", LockSkip: " FOR UPDATE SKIP LOCKED", WritableCTE: true}, "?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := reflect.ValueOf(*NewQueries(tc.dialect))
			for i := range v.NumField() {
				q := v.Field(i).String()
				if q == "" || strings.Contains(q, tc.absent) {
					t.Errorf("%s = %q: empty or contains %q", v.Type().Field(i).Name, q, tc.absent)
				}
			}
		})
	}
}

// TestChain: chained writes keep their placeholders in order, as one
// statement with writable CTEs and as several otherwise.
func TestChain(t *testing.T) {
	stmts := []string{"INSERT INTO a VALUES (?)", "UPDATE b SET x = ?", "UPDATE c SET y = ? WHERE z = ?"}
	for _, tc := range []struct {
		dialect Dialect
		want    string
	}{
		{Dialect{BindType: sqlx.QUESTION}, "INSERT INTO a VALUES (?);\nUPDATE b SET x = ?;\nUPDATE c SET y = ? WHERE z = ?"},
		{Dialect{BindType: sqlx.DOLLAR, WritableCTE: true},
			"WITH w0 AS (INSERT INTO a VALUES ($1)), w1 AS (UPDATE b SET x = $2)\nUPDATE c SET y = $3 WHERE z = $4"},
	} {
		if got := sqlx.Rebind(tc.dialect.BindType, tc.dialect.chain(stmts...)); got != tc.want {
			t.Errorf("chain = %q, want %q", got, tc.want)
		}
	}
}

func TestTimes(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("x", 3600))
	want := time.Date(2026, 3, 4, 4, 6, 7, 891234000, time.UTC)
	if got := Trunc(at); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Trunc = %v, want %v", got, want)
	}
	if got := FromNullDB(ToNullDB(&at)); got == nil || !got.Equal(want) {
		t.Errorf("FromNullDB(ToNullDB(%v)) = %v, want %v", at, got, want)
	}
	if v := ToNullDB(nil); v.Valid {
		t.Errorf("ToNullDB(nil) = %+v, want NULL", v)
	}
	if got := FromNullDB(ToNullDB(nil)); got != nil {
		t.Errorf("FromNullDB(NULL) = %v, want nil", got)
	}
	var zero time.Time
	if got := FromDB(ToDB(zero)); !got.Equal(zero) {
		t.Errorf("zero time round trip = %v", got)
	}
}
