package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCommand: `relying check --config` exits 0 on a good file and 1
// with every problem on a bad one; --config refuses the one-host flags.
func TestCheckCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	_ = ln.Close()
	dead := filepath.Join(t.TempDir(), "dead.yaml")
	if err := os.WriteFile(dead, []byte("issuer: https://domain.com\nhosts:\n  - host: app.domain.com\n    upstream: http://"+deadAddr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		want []string
	}{
		{"good", []string{"check", "--config", "policy/testdata/good.yaml"}, nil, 0,
			[]string{"ok: 5 host(s)", "line 6: grafana.domain.com: proxy to http://127.0.0.1:3000", "line 13: *.tools.domain.com: relying's page"}},
		{"warns about a dead upstream", []string{"check", "--config", dead}, nil, 0,
			[]string{"warning: line 3: upstream http://" + deadAddr + " of app.domain.com does not answer yet"}},
		{"bad", []string{"--config", "policy/testdata/bad/bad_values.yaml", "check"}, nil, 1,
			[]string{"15 problem(s)", "line 4: upstream", "line 15: public_paths"}},
		{"missing file", []string{"check", "--config", "policy/testdata/nothing.yaml"}, nil, 1, []string{"no such file"}},
		{"no config", []string{"check"}, nil, 2, []string{"check needs --config FILE"}},
		{"with host flags", []string{"--config", "policy/testdata/good.yaml", "--host", "a.domain.com", "--require-group", "x"}, nil, 2,
			[]string{"--config replaces --host, --require-group"}},
		{"with host env", []string{"check", "--config", "policy/testdata/good.yaml"}, map[string]string{"CANOPY_RELYING_UPSTREAM": "http://x"}, 2,
			[]string{"--config replaces --upstream"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			if code := run(context.Background(), tc.args, env, &out, &out); code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
