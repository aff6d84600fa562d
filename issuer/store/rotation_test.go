package store

import (
	"errors"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rotated := base.Add(-10 * time.Second)
	st := RotationState{
		Session:     Session{ID: "s", ExpiresAt: base.Add(time.Hour), LastUsedAt: base.Add(-time.Minute)},
		CurrentHash: "B", PrevHash: "A", RotatedAt: &rotated,
	}
	revoked := base.Add(-time.Second)
	deleted := base
	tests := []struct {
		name   string
		req    RotateRequest
		mutate func(*RotationState)
		want   RotationStep
	}{
		{"current rotates", RotateRequest{PresentedHash: "B", SuccessorHash: "C", Grace: 30 * time.Second}, nil, StepRotate},
		{"predecessor in grace converges", RotateRequest{PresentedHash: "A", SuccessorHash: "B", Grace: 30 * time.Second}, nil, StepConverge},
		{"grace is inclusive", RotateRequest{PresentedHash: "A", SuccessorHash: "B", Grace: 10 * time.Second}, nil, StepConverge},
		{"predecessor after grace is reuse", RotateRequest{PresentedHash: "A", SuccessorHash: "B", Grace: 9 * time.Second}, nil, StepReuse},
		{"negative grace is none", RotateRequest{PresentedHash: "A", SuccessorHash: "B", Grace: -time.Hour}, nil, StepReuse},
		{"other successor is a mismatch", RotateRequest{PresentedHash: "A", SuccessorHash: "X", Grace: time.Minute}, nil, StepMismatch},
		{"older ancestor is reuse", RotateRequest{PresentedHash: "0", SuccessorHash: "A", Grace: time.Minute}, nil, StepReuse},
		{"never rotated: only current works", RotateRequest{PresentedHash: "A", SuccessorHash: "B", Grace: time.Minute},
			func(s *RotationState) { s.RotatedAt = nil }, StepReuse},
		{"revoked session", RotateRequest{PresentedHash: "B", SuccessorHash: "C"},
			func(s *RotationState) { s.Session.RevokedAt = &revoked }, StepEnded},
		{"expired session", RotateRequest{PresentedHash: "B", SuccessorHash: "C"},
			func(s *RotationState) { s.Session.ExpiresAt = base }, StepEnded},
		{"idle session", RotateRequest{PresentedHash: "B", SuccessorHash: "C", IdleTTL: time.Minute}, nil, StepEnded},
		{"disabled user", RotateRequest{PresentedHash: "B", SuccessorHash: "C"},
			func(s *RotationState) { s.User.Disabled = true }, StepEnded},
		{"deleted user", RotateRequest{PresentedHash: "B", SuccessorHash: "C"},
			func(s *RotationState) { s.User.DeletedAt = &deleted }, StepEnded},
		{"ended beats reuse", RotateRequest{PresentedHash: "0", SuccessorHash: "A"},
			func(s *RotationState) { s.Session.RevokedAt = &revoked }, StepEnded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := st
			if tt.mutate != nil {
				tt.mutate(&s)
			}
			if got := tt.req.Decide(s, base); got != tt.want {
				t.Fatalf("Decide = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRotateRequestCheck(t *testing.T) {
	now := time.Now()
	if err := (RotateRequest{SuccessorHash: "b", Now: now}).Check(); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty presented hash: %v, want ErrNotFound", err)
	}
	for _, r := range []RotateRequest{
		{PresentedHash: "a", Now: now},
		{PresentedHash: "a", SuccessorHash: "a", Now: now},
		{PresentedHash: "a", SuccessorHash: "b"},
	} {
		if err := r.Check(); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Check(%+v) = %v, want a plain error", r, err)
		}
	}
	if err := (RotateRequest{PresentedHash: "a", SuccessorHash: "b", Now: now}).Check(); err != nil {
		t.Errorf("a good request: %v", err)
	}
}
