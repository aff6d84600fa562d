package sqlstore

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// TestNewQueries checks every query in both sets: rebinding must leave no
// '?' behind for PostgreSQL (a '?' in a shared query would be sent as is)
// and add no '$' for SQLite.
func TestNewQueries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bindType int
		absent   string
	}{
		{"sqlite", sqlx.QUESTION, "$"},
		{"postgres", sqlx.DOLLAR, "?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := reflect.ValueOf(*NewQueries(tc.bindType))
			for i := range v.NumField() {
				q := v.Field(i).String()
				if q == "" || strings.Contains(q, tc.absent) {
					t.Errorf("%s = %q: empty or contains %q", v.Type().Field(i).Name, q, tc.absent)
				}
			}
		})
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
