package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/sqlstore"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

var groupBase = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// batchLog records the group writer's batches.
type batchLog struct {
	mu    sync.Mutex
	sizes []int
	errs  []error
}

func (l *batchLog) CommitBatch(size int, _ time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, size)
	l.errs = append(l.errs, err)
}

func (l *batchLog) get() ([]int, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.sizes...), append([]error(nil), l.errs...)
}

// groupStore opens a store with group commit tuned by g and n sessions
// session-0… whose first tokens hash as storetest.BenchHash(sid, 0).
func groupStore(t *testing.T, g sqlstore.GroupCommit, n int) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "canopy.db")
	s, err := Open(path, Options{Group: g})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	if err := s.CreateUser(ctx, store.User{ID: "u", Username: "group", CreatedAt: groupBase}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		sid := fmt.Sprintf("session-%d", i)
		err := s.CreateSession(ctx, store.Session{ID: sid, UserID: "u", CreatedAt: groupBase, AuthTime: groupBase,
			ExpiresAt: groupBase.Add(time.Hour), LastUsedAt: groupBase, AccessUntil: groupBase}, storetest.BenchHash(sid, 0))
		if err != nil {
			t.Fatal(err)
		}
	}
	return s, path
}

func groupReq(sid string, presented, next int, at time.Duration) store.RotateRequest {
	now := groupBase.Add(at)
	return store.RotateRequest{PresentedHash: storetest.BenchHash(sid, presented), SuccessorHash: storetest.BenchHash(sid, next),
		Now: now, Grace: 30 * time.Second, IdleTTL: time.Hour, AccessExpiry: now.Add(5 * time.Minute)}
}

// writeLock holds SQLite's write lock from a connection of its own, as
// another process would, until the returned function is called: the group
// writer's BEGIN IMMEDIATE waits in the busy handler meanwhile.
func writeLock(t *testing.T, path string) func() {
	t.Helper()
	db, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", Path: path, RawQuery: "_txlock=immediate"}).String())
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatalf("BEGIN IMMEDIATE: %v", err)
	}
	var once sync.Once
	release := func() { once.Do(func() { _ = tx.Rollback(); _ = db.Close() }) }
	t.Cleanup(release)
	return release
}

// waitFor polls cond (the writer runs on its own goroutine) for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type answer struct {
	res store.RotateResult
	err error
}

// batched runs reqs so that they share one batch: a first rotation (of
// blocker) is taken alone and waits for the write lock; reqs queue behind
// it and are released together. It returns reqs' answers in order.
func batched(t *testing.T, s *Store, path string, blocker store.RotateRequest, reqs []store.RotateRequest) []answer {
	t.Helper()
	release := writeLock(t, path)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.RotateRefresh(context.Background(), blocker); err != nil {
			t.Errorf("blocker: %v", err)
		}
	})
	waitFor(t, "the blocker taken", func() bool { return s.QueueDepth() == 0 })
	time.Sleep(100 * time.Millisecond) // the writer is past its drain and in BEGIN
	out := make([]answer, len(reqs))
	for i, r := range reqs {
		wg.Go(func() {
			res, err := s.RotateRefresh(context.Background(), r)
			out[i] = answer{res, err}
		})
	}
	waitFor(t, "every rotation queued", func() bool { return s.QueueDepth() == len(reqs) })
	release()
	wg.Wait()
	return out
}

// TestGroupSavepointIsolation: in one batch, a rotation that fails (its
// successor is another session's token: a unique violation) is rolled back
// alone, and the others keep their exact outcomes: rotate, converge, reuse.
func TestGroupSavepointIsolation(t *testing.T) {
	var log batchLog
	s, path := groupStore(t, sqlstore.GroupCommit{Observer: &log}, 5)
	ctx := t.Context()
	// session-1 rotated once before: its token 0 converges; session-2
	// rotated twice: its token 0 is reuse.
	mustOutcome(t, s, groupReq("session-1", 0, 1, time.Second), store.Rotated)
	mustOutcome(t, s, groupReq("session-2", 0, 1, time.Second), store.Rotated)
	mustOutcome(t, s, groupReq("session-2", 1, 2, time.Minute), store.Rotated)

	bad := groupReq("session-3", 0, 1, 2*time.Minute)
	bad.SuccessorHash = storetest.BenchHash("session-4", 0) // already issued to session-4
	got := batched(t, s, path, groupReq("session-0", 0, 1, 2*time.Minute), []store.RotateRequest{
		groupReq("session-4", 0, 1, 2*time.Minute), // rotates
		bad,
		groupReq("session-1", 0, 1, time.Second+10*time.Second), // converges, within the grace
		groupReq("session-2", 0, 1, 2*time.Minute),              // reuse: revokes session-2
	})
	if sizes, _ := log.get(); len(sizes) == 0 || sizes[len(sizes)-1] < 4 {
		t.Fatalf("batch sizes %v, want the last of 4 (or 5, the blocker's): the four rotations did not share a batch", sizes)
	}
	if got[0].err != nil || got[0].res.Outcome != store.Rotated {
		t.Errorf("good rotation: %v, %v; want rotated", got[0].res.Outcome, got[0].err)
	}
	if got[1].err == nil || errors.Is(got[1].err, store.ErrReuse) {
		t.Errorf("bad rotation: %v; want a plain error", got[1].err)
	}
	if got[2].err != nil || got[2].res.Outcome != store.Converged {
		t.Errorf("converging rotation: %v, %v; want converged", got[2].res.Outcome, got[2].err)
	}
	if !errors.Is(got[3].err, store.ErrReuse) {
		t.Errorf("reused token: %v; want ErrReuse", got[3].err)
	}
	// What the batch committed is on disk, and the bad one left nothing.
	mustOutcome(t, s, groupReq("session-4", 1, 2, 3*time.Minute), store.Rotated)
	mustOutcome(t, s, groupReq("session-3", 0, 1, 3*time.Minute), store.Rotated)
	if sess, err := s.Session(ctx, "session-2"); err != nil || sess.RevokeReason != store.ReasonReuse {
		t.Errorf("session-2 after reuse: %+v, %v; want revoked for reuse", sess, err)
	}
}

// TestGroupCommitFailure: when COMMIT itself fails (here a deferred foreign
// key violation SQLite checks only at COMMIT), every caller of the batch
// gets an error and none of their rotations happened.
func TestGroupCommitFailure(t *testing.T) {
	var log batchLog
	var calls atomic.Int32
	// The hook runs once per batch: the blocker's commits, the next fails.
	inject := func(ctx context.Context, tx *sqlx.Tx) error {
		if calls.Add(1) != 2 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`)
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES ('orphan', 'no-such-session', 0)`)
		}
		return err
	}
	s, path := groupStore(t, sqlstore.GroupCommit{Observer: &log, BeforeCommit: inject}, 5)
	var reqs []store.RotateRequest
	for i := 1; i < 5; i++ {
		reqs = append(reqs, groupReq(fmt.Sprintf("session-%d", i), 0, 1, time.Minute))
	}
	release := writeLock(t, path)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.RotateRefresh(context.Background(), groupReq("session-0", 0, 1, time.Minute)); err != nil {
			t.Errorf("blocker: %v", err)
		}
	})
	waitFor(t, "the blocker taken", func() bool { return s.QueueDepth() == 0 })
	time.Sleep(100 * time.Millisecond) // the writer is past its drain and in BEGIN
	out := make([]error, len(reqs))
	for i, r := range reqs {
		wg.Go(func() {
			res, err := s.RotateRefresh(context.Background(), r)
			if err == nil {
				t.Errorf("rotation %d answered %v although its COMMIT failed", i, res.Outcome)
			}
			out[i] = err
		})
	}
	waitFor(t, "every rotation queued", func() bool { return s.QueueDepth() == len(reqs) })
	release()
	wg.Wait()
	sizes, errs := log.get()
	if n := len(sizes); n == 0 || sizes[n-1] != len(reqs) || errs[n-1] == nil {
		t.Fatalf("batches %v, errors %v: want a last batch of %d whose COMMIT failed", sizes, errs, len(reqs))
	}
	for i, err := range out {
		if err == nil || errors.Is(err, store.ErrReuse) {
			t.Errorf("rotation %d: %v, want the commit's error", i, err)
		}
	}
	// None of them rotated: each presented token is still current.
	for _, r := range reqs {
		r.Now = r.Now.Add(time.Minute)
		r.AccessExpiry = r.Now.Add(5 * time.Minute)
		mustOutcome(t, s, r, store.Rotated)
	}
}

// TestGroupBarrierRace: 50 presentations of one token released at once
// (two tabs, retries) yield exactly one rotation; the rest converge.
func TestGroupBarrierRace(t *testing.T) {
	s, _ := groupStore(t, sqlstore.GroupCommit{}, 1)
	const n = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	out := make([]answer, n)
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := s.RotateRefresh(context.Background(), groupReq("session-0", 0, 1, time.Minute))
			out[i] = answer{res, err}
		})
	}
	close(start)
	wg.Wait()
	counts := map[store.RotateOutcome]int{}
	for i, a := range out {
		if a.err != nil {
			t.Fatalf("presentation %d: %v", i, a.err)
		}
		counts[a.res.Outcome]++
	}
	if counts[store.Rotated] != 1 || counts[store.Converged] != n-1 {
		t.Fatalf("outcomes %v, want 1 rotated and %d converged", counts, n-1)
	}
}

// TestGroupOverload: a full queue answers *store.OverloadError at once, and
// a rotation that waited MaxWait in the queue is told to retry, not kept.
func TestGroupOverload(t *testing.T) {
	s, path := groupStore(t, sqlstore.GroupCommit{Queue: 2, MaxWait: time.Second, RetryAfter: 3 * time.Second}, 5)
	release := writeLock(t, path)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = s.RotateRefresh(context.Background(), groupReq("session-0", 0, 1, time.Minute)) })
	waitFor(t, "the blocker taken", func() bool { return s.QueueDepth() == 0 })
	time.Sleep(100 * time.Millisecond) // the writer is past its drain and in BEGIN
	queued := make([]error, 2)
	var waiting sync.WaitGroup
	for i := range queued {
		waiting.Go(func() {
			_, queued[i] = s.RotateRefresh(context.Background(), groupReq(fmt.Sprintf("session-%d", i+1), 0, 1, time.Minute))
		})
	}
	waitFor(t, "the queue full", func() bool { return s.QueueDepth() == 2 })
	_, err := s.RotateRefresh(context.Background(), groupReq("session-3", 0, 1, time.Minute))
	var oe *store.OverloadError
	if !errors.As(err, &oe) || !errors.Is(err, store.ErrOverloaded) || oe.RetryAfter != 3*time.Second {
		t.Fatalf("rotation into a full queue: %v, want *store.OverloadError with RetryAfter 3s", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.RotateRefresh(ctx, groupReq("session-3", 0, 1, time.Minute)); !errors.Is(err, context.Canceled) {
		t.Errorf("rotation with a cancelled context: %v", err)
	}
	waiting.Wait() // the queued ones give up after MaxWait while the lock is held
	release()
	wg.Wait()
	for i, err := range queued {
		if !errors.Is(err, store.ErrOverloaded) {
			t.Errorf("queued rotation %d: %v, want ErrOverloaded after MaxWait", i, err)
		}
	}
	// Abandoned rotations were never run: their tokens are still current.
	// (They hold their queue slots until the writer passes them by.)
	waitFor(t, "the writer to pass the abandoned rotations", func() bool { return s.QueueDepth() == 0 })
	mustOutcome(t, s, groupReq("session-1", 0, 1, 2*time.Minute), store.Rotated)
	mustOutcome(t, s, groupReq("session-2", 0, 1, 2*time.Minute), store.Rotated)
}

// TestGroupClose: Close fails what is queued and later rotations at once.
func TestGroupClose(t *testing.T) {
	s, _ := groupStore(t, sqlstore.GroupCommit{}, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(context.Background(), groupReq("session-0", 0, 1, time.Minute)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("rotation after Close: %v, want ErrUnavailable", err)
	}
}

func mustOutcome(t *testing.T, s *Store, r store.RotateRequest, want store.RotateOutcome) {
	t.Helper()
	res, err := s.RotateRefresh(t.Context(), r)
	if err != nil || res.Outcome != want {
		t.Fatalf("RotateRefresh(%s…): %v, %v; want %v", r.PresentedHash[:8], res.Outcome, err, want)
	}
}

// TestBackgroundCheckpoint: under group commit no connection checkpoints
// on its own commit (wal_autocheckpoint is 0), yet a WAL grown past
// checkpointPassiveAt is copied into the database file by the store's
// checkpointer within moments.
func TestBackgroundCheckpoint(t *testing.T) {
	s, path := groupStore(t, sqlstore.GroupCommit{}, 0)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fillWAL(t, s, 6) // past the threshold
	waitFor(t, "the checkpointer to copy the WAL into the file", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() > before.Size()+checkpointPassiveAt
	})
}

// fillWAL writes about mib MiB of events in one transaction.
func fillWAL(t *testing.T, s *Store, mib int) {
	t.Helper()
	_, err := s.db.ExecContext(t.Context(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO events (at, kind, detail) SELECT i, 'fill', hex(randomblob(500)) FROM n`, mib*1000)
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointNeverHoldsWriters: a reader holding an old snapshot keeps
// the checkpointer from copying a large WAL, and rotations still commit
// meanwhile: a checkpoint that takes the write lock (RESTART, TRUNCATE)
// would hold it while it waits for that reader, stalling every rotation
// for up to the busy timeout (the group's 2 s queue limit answers them
// ErrUnavailable first). Once the reader is gone the WAL is copied, and
// the next write starts it over, truncated to walSizeLimit.
func TestCheckpointNeverHoldsWriters(t *testing.T) {
	s, path := groupStore(t, sqlstore.GroupCommit{}, 2)
	ctx := t.Context()
	conn, err := s.db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	rows, err := conn.QueryContext(ctx, `SELECT id FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() { // the statement stays open on its snapshot
		t.Fatal("no session read")
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Past what any checkpoint mode once switched on, none of it
	// copyable while the reader stays.
	fillWAL(t, s, 70)
	time.Sleep(3 * checkpointEvery) // the checkpointer has looked at the WAL
	mustOutcome(t, s, groupReq("session-0", 0, 1, 0), store.Rotated)

	if err := errors.Join(rows.Close(), conn.Close()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the checkpointer to copy the WAL once the reader left", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() > before.Size()+60<<20
	})
	gen := 1
	waitFor(t, "a write to start the WAL over, truncated", func() bool {
		mustOutcome(t, s, groupReq("session-1", gen-1, gen, 0), store.Rotated)
		gen++
		fi, err := os.Stat(path + "-wal")
		return err == nil && fi.Size() <= walSizeLimit
	})
}
