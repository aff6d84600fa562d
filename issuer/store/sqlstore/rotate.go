package sqlstore

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// RotateRefresh rotates or converges the refresh token r.PresentedHash in one
// transaction that serialises concurrent presentations of one token (two
// tabs, a retry, another instance): SQLite's BEGIN IMMEDIATE takes the
// database's write lock, PostgreSQL's SELECT … FOR UPDATE the session's row
// (so rotations of other sessions run in parallel). The first rotates; each
// later one reads the state as the first left it and converges.
//
// The transaction reads once (RotationState: the session, its user, the
// session's methods and the user's groups), lets store.RotateRequest.Decide
// choose, and writes once:
//   - unknown token: store.ErrNotFound;
//   - session revoked, past its expiry or idle, or its user disabled or
//     deleted: store.ErrSessionEnded, nothing written;
//   - the current token: the successor becomes current (store.Rotated);
//   - the immediate predecessor within r.Grace of its rotation, with the
//     successor the caller derived equal to the current token: nothing is
//     rotated, only the last use is recorded (store.Converged); a different
//     successor means the caller's secret differs and is an error, not reuse;
//   - any other token of the session still on record (the newest
//     store.KeptAncestors superseded ones: older ones are pruned at each
//     rotation, and are then unknown): the session is revoked and committed
//     durably (synchronous=FULL, synchronous_commit=on), then
//     store.ErrReuse is returned.
//
// With store.ErrReuse and store.ErrSessionEnded the result still carries the
// session and its user, so the caller can record who was affected.
//
// After StartGroupCommit the same transaction body runs in the group
// writer (group.go), under a savepoint in a transaction shared with other
// rotations, and every outcome above is answered only after that
// transaction's COMMIT.
func (s *Store) RotateRefresh(ctx context.Context, r store.RotateRequest) (store.RotateResult, error) {
	if err := r.Check(); err != nil {
		return store.RotateResult{}, err
	}
	if s.group != nil {
		res, _, err := s.group.rotate(ctx, r) // answers store.ErrReuse itself, after its commit
		return res, err
	}
	var (
		res  store.RotateResult
		step store.RotationStep
	)
	err := s.inTx(ctx, "rotate refresh", func(tx *sqlx.Tx) (err error) {
		res, step, err = s.rotate(ctx, tx, r) // a retried transaction starts afresh
		return err
	})
	if err == nil && step == store.StepReuse {
		// Reported only now that the revocation is committed.
		err = s.d.errorf("rotate refresh: session %q: %w", res.Session.ID, store.ErrReuse)
	}
	return res, err
}

// rotate is one rotation inside tx: it reads, decides and writes, and
// leaves committing to the caller.
func (s *Store) rotate(ctx context.Context, tx *sqlx.Tx, r store.RotateRequest) (store.RotateResult, store.RotationStep, error) {
	now := Trunc(r.Now)
	var row RotationRow
	if err := s.getTx(ctx, tx, "rotate refresh", "token", &row, s.q.RotationState, r.PresentedHash); err != nil {
		return store.RotateResult{}, 0, err
	}
	res := row.Result()
	step := r.Decide(row.State(res), now)
	switch step {
	case store.StepEnded:
		return res, step, s.d.errorf("rotate refresh: session %q: %w", row.ID, store.ErrSessionEnded)
	case store.StepMismatch:
		return res, step, s.d.errorf("rotate refresh: session %q: derived successor differs from the stored one (secret mismatch?)", row.ID)
	case store.StepReuse:
		n, err := s.exec(ctx, tx, "rotate refresh: revoke on reuse", s.q.RevokeSession, ToDB(now), store.ReasonReuse, row.ID)
		if err == nil && n > 0 {
			err = s.enqueueSession(ctx, tx, row.ID, store.ReasonReuse, now)
		}
		if err == nil && n > 0 {
			err = s.logSession(ctx, tx, row.ID, now)
		}
		if err != nil {
			return res, step, err
		}
		res.Session.RevokedAt = &now
		res.Session.RevokeReason = store.ReasonReuse
		return res, step, nil // the caller commits the revocation before reporting the reuse
	case store.StepRotate:
		t := ToDB(now)
		args := []any{r.SuccessorHash, row.ID, t} // the successor's row
		if !s.d.OneWriter {
			args = append(args, row.ID, row.ID) // the oldest ancestors pruned
		}
		args = append(args, r.SuccessorHash, r.PresentedHash, t, t, ToDB(r.AccessExpiry), row.ID) // the session advanced and used
		_, err := tx.ExecContext(ctx, s.q.Rotate, args...)
		if err != nil && s.d.IsUnique(err) {
			return res, step, s.d.errorf("rotate refresh: session %q: successor token already issued", row.ID)
		}
		if err != nil {
			return res, step, s.d.Wrap("rotate refresh: advance", err)
		}
		if s.d.OneWriter {
			if err := s.pruneAncestors(ctx, tx, row.ID, r.SuccessorHash); err != nil {
				return res, step, err
			}
		}
		res.Outcome = store.Rotated
	case store.StepConverge:
		if _, err := s.exec(ctx, tx, "rotate refresh: record use", s.q.RecordUse, ToDB(now), ToDB(r.AccessExpiry), row.ID); err != nil {
			return res, step, err
		}
		res.Outcome = store.Converged
	}
	// Both outcomes count as a use and mint an access token. Clocks of
	// several instances may disagree; never move either time back.
	res.Session.LastUsedAt = Latest(res.Session.LastUsedAt, now)
	res.Session.AccessUntil = Latest(res.Session.AccessUntil, Trunc(r.AccessExpiry))
	return res, step, nil
}

// pruneAncestors is the pruning step of Queries.Rotate where the dialect
// has one writer (SQLite): it deletes the session's superseded tokens
// (every token but current) beyond the newest store.KeptAncestors, newest
// by (created_at, hash) as in the SQL of the other dialects. Ancestors
// lists only those, reading the index (session_id, created_at) backwards,
// which holds every column it reads in that order (hash, the primary key,
// ends each entry): no sort, and usually no row. The single DELETE of the
// other dialects is slower here: SQLite materialises its NOT IN list, or
// its row-value bound, at every rotation (2,427 and 3,838 rotations/s in
// the load test, against about 4,800/s this way).
func (s *Store) pruneAncestors(ctx context.Context, tx *sqlx.Tx, sid, current string) error {
	const op = "rotate refresh: prune ancestors"
	var doomed []string
	if err := tx.SelectContext(ctx, &doomed, s.q.Ancestors, sid, current); err != nil {
		return s.d.Wrap(op, err)
	}
	for _, h := range doomed {
		if _, err := tx.ExecContext(ctx, s.q.DeleteToken, h); err != nil {
			return s.d.Wrap(op, err)
		}
	}
	return nil
}
