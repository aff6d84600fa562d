package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
)

func TestBackupWhileWriting(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	now := time.Now()
	u := store.User{ID: "u1", Username: "alice", PasswordHash: "h", CreatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// A writer keeps going while the backup runs.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			_ = s.AddEvent(ctx, store.Event{At: now, Kind: "tick", Detail: string(rune('a' + i%26))})
		}
	}()
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	<-done
	if err := s.Backup(ctx, dst); err == nil {
		t.Fatal("Backup overwrote an existing file")
	}
	b, err := Open(dst, Options{})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer b.Close()
	got, err := b.UserByName(ctx, "alice")
	if err != nil || got.ID != "u1" {
		t.Fatalf("backup lacks alice: %v %+v", err, got)
	}
	var ok string
	if err := b.db.GetContext(ctx, &ok, `PRAGMA integrity_check`); err != nil || ok != "ok" {
		t.Fatalf("integrity_check on the backup: %q %v", ok, err)
	}
}
