package store

import (
	"errors"
	"time"
)

// RotationState is one session's refresh state as a backend reads it inside
// its RotateRefresh transaction.
type RotationState struct {
	Session     Session
	User        User
	CurrentHash string
	PrevHash    string
	RotatedAt   *time.Time // when CurrentHash replaced PrevHash; nil before the first rotation
}

// RotationStep is what a backend must do with a presented refresh token.
type RotationStep int

const (
	// StepEnded: the session or its user has ended; write nothing, ErrSessionEnded.
	StepEnded RotationStep = iota + 1
	// StepRotate: the current token; its successor becomes current (Rotated).
	StepRotate
	// StepConverge: the predecessor within the grace, deriving the current
	// token; record the use only (Converged).
	StepConverge
	// StepMismatch: the predecessor within the grace but a different
	// successor: the caller's secret differs. A plain error; revoking would
	// punish the user for a server misconfiguration.
	StepMismatch
	// StepReuse: any other token of the session; revoke it, commit, ErrReuse.
	StepReuse
)

// Check reports a request no backend should run.
func (r RotateRequest) Check() error {
	switch {
	case r.PresentedHash == "":
		return errors.Join(errors.New("store: rotate refresh: empty token hash"), ErrNotFound)
	case r.SuccessorHash == "" || r.SuccessorHash == r.PresentedHash:
		return errors.New("store: rotate refresh: successor hash empty or equal to the presented one")
	case r.Now.IsZero():
		return errors.New("store: rotate refresh: no time given")
	}
	return nil
}

// Decide applies SPEC.md's rotation rules to st at now (r.Now as the backend
// stores it): every backend runs the same rules and differs only in SQL.
func (r RotateRequest) Decide(st RotationState, now time.Time) RotationStep {
	switch {
	case !st.Session.Active(now, r.IdleTTL) || st.User.Disabled || st.User.DeletedAt != nil:
		return StepEnded
	case r.PresentedHash == st.CurrentHash:
		return StepRotate
	case r.PresentedHash == st.PrevHash && st.RotatedAt != nil && now.Sub(*st.RotatedAt) <= max(r.Grace, 0):
		if r.SuccessorHash != st.CurrentHash {
			return StepMismatch
		}
		return StepConverge
	}
	return StepReuse
}
