package password

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fast keeps unit tests quick; the OWASP parameters are exercised by the benchmark.
var fast = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h, err := NewHasher(fast, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", enc)
	}
	tests := []struct {
		name    string
		encoded string
		pw      string
		want    error
	}{
		{"right", enc, "correct horse", nil},
		{"wrong", enc, "correct horsE", ErrMismatch},
		{"empty hash never matches", "", "anything", ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := h.Verify(ctx, tt.encoded, tt.pw); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range []string{"$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nonsense"} {
		if err := h.Verify(ctx, bad, "x"); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%q) = %v, want a format error", bad, err)
		}
	}
}

func TestBusy(t *testing.T) {
	h, err := NewHasher(fast, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{} // hold the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "password1"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash with no slot = %v, want ErrBusy", err)
	}
	<-h.slots
}

func TestCheckPolicy(t *testing.T) {
	tests := []struct {
		pw   string
		want string
	}{
		{"short", "at least"},
		{"longenough", ""},
		{strings.Repeat("é", MaxLength), ""},
		{strings.Repeat("a", MaxLength+1), "at most"},
		{"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "valid text"},
	}
	for _, tt := range tests {
		got := CheckPolicy(tt.pw)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("CheckPolicy(%q) = %q, want containing %q", tt.pw, got, tt.want)
		}
	}
}

func BenchmarkVerifyOWASP(b *testing.B) {
	h, err := NewHasher(OWASP, 1)
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := h.Hash(context.Background(), "correct horse")
	b.ResetTimer()
	for b.Loop() {
		_ = h.Verify(context.Background(), enc, "correct horse")
	}
}
