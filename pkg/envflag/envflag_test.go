package envflag

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantPos []string
		wantTTL time.Duration
		wantDB  string
		wantErr bool
	}{
		{name: "defaults", wantTTL: 5 * time.Minute, wantDB: "var/issuer.db"},
		{name: "flags before", args: []string{"--access-ttl", "2s", "add", "alice"}, wantPos: []string{"add", "alice"}, wantTTL: 2 * time.Second, wantDB: "var/issuer.db"},
		{name: "flags after", args: []string{"add", "alice", "--db=x.db"}, wantPos: []string{"add", "alice"}, wantTTL: 5 * time.Minute, wantDB: "x.db"},
		{name: "flags between", args: []string{"add", "--db", "y.db", "alice"}, wantPos: []string{"add", "alice"}, wantTTL: 5 * time.Minute, wantDB: "y.db"},
		{name: "env fills", env: map[string]string{"CANOPY_ISSUER_ACCESS_TTL": "3s"}, wantTTL: 3 * time.Second, wantDB: "var/issuer.db"},
		{name: "flag wins over env", args: []string{"--access-ttl=4s"}, env: map[string]string{"CANOPY_ISSUER_ACCESS_TTL": "3s"}, wantTTL: 4 * time.Second, wantDB: "var/issuer.db"},
		{name: "dash dash ends flags", args: []string{"--", "--db", "z"}, wantPos: []string{"--db", "z"}, wantTTL: 5 * time.Minute, wantDB: "var/issuer.db"},
		{name: "bad env", env: map[string]string{"CANOPY_ISSUER_ACCESS_TTL": "soon"}, wantErr: true},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("issuer", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			ttl := fs.Duration("access-ttl", 5*time.Minute, "")
			db := fs.String("db", "var/issuer.db", "")
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			pos, err := Parse(fs, tt.args, "CANOPY_ISSUER_", lookup)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tt.wantPos) {
				t.Errorf("positional = %q, want %q", pos, tt.wantPos)
			}
			if *ttl != tt.wantTTL || *db != tt.wantDB {
				t.Errorf("ttl=%s db=%s, want %s %s", *ttl, *db, tt.wantTTL, tt.wantDB)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Parse(fs, []string{"user", "--help"}, "P_", nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("CANOPY_ISSUER_", "access-ttl"); got != "CANOPY_ISSUER_ACCESS_TTL" {
		t.Fatal(got)
	}
}
