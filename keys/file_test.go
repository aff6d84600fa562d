package keys

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/canopy-sso/canopy/pkg/wire"
)

func TestEnsureCreatesPrivateFiles(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			// A missing parent too: --keys defaults to var/keys.
			dir := filepath.Join(t.TempDir(), "var", "keys")
			d := mustOpen(t, dir, testOptions(alg, newClock()))
			if err := d.Ensure(); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o700 {
				t.Errorf("directory mode %04o, want 0700", perm)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
				fi, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}
				if perm := fi.Mode().Perm(); perm != 0o600 {
					t.Errorf("%s: mode %04o, want 0600", e.Name(), perm)
				}
				if strings.HasPrefix(e.Name(), tempPrefix) {
					t.Errorf("temp file %s left behind", e.Name())
				}
			}
			if len(names) != 4 || !slices.Contains(names, lockName) || !slices.Contains(names, fleetName) {
				t.Errorf("directory holds %v, want two key files, %s and %s", names, lockName, fleetName)
			}
		})
	}
}

func TestKeyFileFormat(t *testing.T) {
	want := map[string][]string{
		wire.AlgEdDSA: {"kty", "crv", "x", "d", "kid", "alg", "use", "canopy_state", "canopy_created", "canopy_published", "canopy_activated"},
		wire.AlgES256: {"kty", "crv", "x", "y", "d", "kid", "alg", "use", "canopy_state", "canopy_created", "canopy_published", "canopy_activated"},
	}
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			d, c := ensured(t, alg)
			active := one(t, d, StateActive)
			data, err := os.ReadFile(filepath.Join(d.Path(), active.KID+fileExt))
			if err != nil {
				t.Fatal(err)
			}
			var members map[string]any
			if err := json.Unmarshal(data, &members); err != nil {
				t.Fatal(err)
			}
			var got []string
			for name := range members {
				got = append(got, name)
			}
			slices.Sort(got)
			w := slices.Clone(want[alg])
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("members %v, want %v", got, w)
			}
			if members["canopy_state"] != StateActive || members["kid"] != active.KID || members["alg"] != alg || members["use"] != "sig" {
				t.Errorf("file %s", data)
			}
			if members["canopy_activated"] != float64(c.Now().Unix()) {
				t.Errorf("canopy_activated %v, want %d", members["canopy_activated"], c.Now().Unix())
			}
		})
	}
}

func TestWriteAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	for range 3 { // replacing, too
		if err := writeAtomic(dir, "k.json", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "k.json" {
		t.Fatalf("directory holds %v, want only k.json", entries)
	}
}

func TestIgnoresOtherFiles(t *testing.T) {
	d, c := ensured(t, wire.AlgEdDSA)
	before := d.List()
	for name, body := range map[string]string{
		"README.txt":       "notes",
		"backup.json.bak":  "{",
		".hidden.json":     "{",
		tempPrefix + "123": "{", // a crashed writer's
	} {
		if err := os.WriteFile(filepath.Join(d.Path(), name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(d.Path(), "old"), 0o700); err != nil {
		t.Fatal(err)
	}
	d2 := mustOpen(t, d.Path(), testOptions(wire.AlgEdDSA, c))
	if !slices.Equal(d2.List(), before) {
		t.Errorf("Open saw %+v, want %+v", d2.List(), before)
	}
	// Reload also removes the stale temp file, and only that.
	if err := d2.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), tempPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file still there: %v", err)
	}
	for _, name := range []string{"README.txt", "backup.json.bak", ".hidden.json", "old"} {
		if _, err := os.Stat(filepath.Join(d.Path(), name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// rewrite edits the JSON members of a key file.
func rewrite(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesBadKeyFiles(t *testing.T) {
	tests := []struct {
		name    string
		alg     string
		spoil   func(t *testing.T, path string) string // returns the path the error must name
		wantMsg string
	}{
		{"group readable", wire.AlgEdDSA, chmod(0o640), "mode 0640"},
		{"world readable", wire.AlgES256, chmod(0o604), "mode 0604"},
		{"group writable", wire.AlgEdDSA, chmod(0o620), "mode 0620"},
		{"executable by others", wire.AlgEdDSA, chmod(0o601), "mode 0601"},
		{"malformed JSON", wire.AlgEdDSA, overwrite(`{"kty":`), "not a valid JWK"},
		{"empty", wire.AlgEdDSA, overwrite(``), "not a valid JWK"},
		{"not an object", wire.AlgEdDSA, overwrite(`[]`), "not a valid JWK"},
		{"symmetric key", wire.AlgEdDSA, overwrite(`{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI","kid":"KID","alg":"HS256","canopy_state":"active","canopy_created":1,"canopy_activated":1}`), `unsupported alg "HS256"`},
		{"public key only", wire.AlgEdDSA, edit(func(m map[string]any) { delete(m, "d") }), "needs an Ed25519 private key, the file holds ed25519.PublicKey"},
		{"kid differs from name", wire.AlgEdDSA, edit(func(m map[string]any) { m["kid"] = "other" }), "does not match the file name"},
		{"alg does not fit key", wire.AlgEdDSA, edit(func(m map[string]any) { m["alg"] = wire.AlgES256 }), "needs a P-256 private key"},
		{"unsupported alg", wire.AlgES256, edit(func(m map[string]any) { m["alg"] = "ES384" }), "unsupported alg"},
		{"use enc", wire.AlgEdDSA, edit(func(m map[string]any) { m["use"] = "enc" }), `use "enc"`},
		{"EC point of another key", wire.AlgES256, func(t *testing.T, path string) string {
			other := plant(t, t.TempDir(), wire.AlgES256, meta{State: StateNext, Created: newClock().Now(), Published: newClock().Now()})
			data, _ := encodeKey(other)
			var o map[string]any
			json.Unmarshal(data, &o)
			return edit(func(m map[string]any) { m["x"], m["y"] = o["x"], o["y"] })(t, path)
		}, "does not match d"},
		{"unknown state", wire.AlgEdDSA, edit(func(m map[string]any) { m["canopy_state"] = "spare" }), `canopy_state "spare"`},
		{"no state", wire.AlgEdDSA, edit(func(m map[string]any) { delete(m, "canopy_state") }), `canopy_state ""`},
		{"active without activation time", wire.AlgEdDSA, edit(func(m map[string]any) { delete(m, "canopy_activated") }), "without canopy_activated"},
		{"deadline on an active key", wire.AlgEdDSA, edit(func(m map[string]any) { m["canopy_delete_after"] = m["canopy_activated"] }), "active key with canopy_delete_after"},
		{"deadline before retirement", wire.AlgEdDSA, edit(func(m map[string]any) {
			m["canopy_state"], m["canopy_retired"] = StateRetired, m["canopy_activated"]
			m["canopy_delete_after"] = m["canopy_activated"].(float64) - 1
		}), "before canopy_retired"},
		{"time of wrong type", wire.AlgEdDSA, edit(func(m map[string]any) { m["canopy_created"] = "yesterday" }), "bad lifecycle members"},
		{"file name not a kid", wire.AlgEdDSA, func(t *testing.T, path string) string {
			p := filepath.Join(filepath.Dir(path), "my key.json")
			rewrite(t, path, func(m map[string]any) { m["kid"] = "my key" })
			if err := os.Rename(path, p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a kid"},
		{"directory named like a key", wire.AlgEdDSA, func(t *testing.T, path string) string {
			p := filepath.Join(filepath.Dir(path), "sub.json")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, c := ensured(t, tc.alg)
			active := one(t, d, StateActive)
			bad := tc.spoil(t, filepath.Join(d.Path(), active.KID+fileExt))

			check := func(op string, err error) {
				t.Helper()
				var fe *FileError
				if !errors.As(err, &fe) {
					t.Fatalf("%s: error %v, want a *FileError", op, err)
				}
				if fe.Path != bad || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("%s: error %q, want one naming %s and saying %q", op, err, bad, tc.wantMsg)
				}
			}
			_, err := Open(d.Path(), testOptions(tc.alg, c))
			check("Open", err)
			check("Ensure", d.Ensure())
			check("Rotate", d.Rotate(true))
			// The instance already running keeps its last good set.
			check("Reload", d.Reload())
			if got := one(t, d, StateActive); got.KID != active.KID {
				t.Errorf("active key changed to %s after a failed reload", got.KID)
			}
			if _, err := d.Sign([]byte(`{}`)); err != nil {
				t.Errorf("Sign after a failed reload: %v", err)
			}
		})
	}
}

func chmod(mode os.FileMode) func(*testing.T, string) string {
	return func(t *testing.T, path string) string {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

func overwrite(body string) func(*testing.T, string) string {
	return func(t *testing.T, path string) string {
		kid := strings.TrimSuffix(filepath.Base(path), fileExt)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(body, "KID", kid)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

func edit(f func(map[string]any)) func(*testing.T, string) string {
	return func(t *testing.T, path string) string {
		rewrite(t, path, f)
		return path
	}
}

func TestReportsEveryBadFile(t *testing.T) {
	d, c := ensured(t, wire.AlgEdDSA)
	var paths []string
	for _, in := range d.List() {
		p := filepath.Join(d.Path(), in.KID+fileExt)
		paths = append(paths, p)
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open(d.Path(), testOptions(wire.AlgEdDSA, c))
	for _, p := range paths {
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("error %v does not name %s", err, p)
		}
	}
}

func TestRefusesLooseDirectory(t *testing.T) {
	d, c := ensured(t, wire.AlgEdDSA)
	if err := os.Chmod(d.Path(), 0o770); err != nil {
		t.Fatal(err)
	}
	_, err := Open(d.Path(), testOptions(wire.AlgEdDSA, c))
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != d.Path() {
		t.Fatalf("Open of a group-writable directory: %v, want a *FileError naming it", err)
	}
	// Readable by others is fine: the files inside are what is private.
	if err := os.Chmod(d.Path(), 0o755); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, d.Path(), testOptions(wire.AlgEdDSA, c))
}

func TestRefusesUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	d, c := ensured(t, wire.AlgEdDSA)
	p := filepath.Join(d.Path(), one(t, d, StateNext).KID+fileExt)
	if err := os.Chmod(p, 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Open(d.Path(), testOptions(wire.AlgEdDSA, c))
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != p || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("Open: %v, want a *FileError naming %s", err, p)
	}
}

func FuzzDecodeKey(f *testing.F) {
	ts := newClock().Now()
	for _, alg := range algs {
		for _, m := range []meta{
			{State: StateNext, Created: ts, Published: ts},
			{State: StateActive, Created: ts, Published: ts, Activated: ts},
			{State: StateRetired, Created: ts, Published: ts, Activated: ts, Retired: ts},
		} {
			k, err := generate(alg, m)
			if err != nil {
				f.Fatal(err)
			}
			data, err := encodeKey(k)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(k.kid+fileExt, data)
		}
	}
	f.Add("a.json", []byte(`{"kty":"oct","k":"AAAA","kid":"a","canopy_state":"next"}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		k, err := decodeKey(name, data)
		if err != nil {
			return
		}
		// Whatever is accepted must survive our own write and read.
		again, err := encodeKey(k)
		if err != nil {
			t.Fatalf("accepted key does not encode: %v", err)
		}
		k2, err := decodeKey(name, again)
		if err != nil {
			t.Fatalf("re-encoded key rejected: %v\n%s", err, again)
		}
		if k2.kid != k.kid || k2.alg != k.alg || k2.meta != k.meta {
			t.Fatalf("round trip changed the key: %+v %+v", k2.meta, k.meta)
		}
	})
}
