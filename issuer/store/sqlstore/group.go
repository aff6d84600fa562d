package sqlstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// GroupCommit makes concurrent refresh rotations share one transaction and
// one fsync on a database with one writer at a time (SQLite): they queue to
// one writer goroutine, which runs up to Batch of them in one transaction,
// each under its own SAVEPOINT, commits once, and only then answers each
// caller. A rotation that fails is rolled back to its savepoint and leaves
// the others in; a failed COMMIT fails every caller of the batch, none of
// whom was told anything before. The zero value takes the defaults.
type GroupCommit struct {
	// Queue bounds the rotations waiting for the writer; when it is full
	// RotateRefresh answers *store.OverloadError at once. DefaultGroupQueue
	// when <= 0.
	Queue int
	// Batch bounds the rotations of one transaction. DefaultGroupBatch
	// when <= 0.
	Batch int
	// MaxWait bounds how long a rotation waits in the queue before its
	// caller is told to retry (*store.OverloadError); a rotation already
	// taken into a batch is waited for. DefaultGroupMaxWait when <= 0.
	MaxWait time.Duration
	// RetryAfter is what an overloaded caller is told to wait.
	// DefaultGroupRetryAfter when <= 0.
	RetryAfter time.Duration
	// Observer, when set, is told about every batch.
	Observer CommitObserver

	// ConnSetup, when set, runs once on the writer's own connection when
	// the writer takes it from the pool (see groupWriter.conn): settings
	// only the writer needs, such as a larger page cache.
	ConnSetup func(ctx context.Context, conn *sqlx.Conn) error

	// BeforeCommit, when set, runs in each batch's transaction after its
	// last rotation and before COMMIT; an error fails the whole batch. It
	// is how a test makes the real COMMIT fail (a deferred constraint);
	// nil in production.
	BeforeCommit func(ctx context.Context, tx *sqlx.Tx) error
}

// Defaults of GroupCommit.
const (
	DefaultGroupQueue      = 4096
	DefaultGroupBatch      = 256
	DefaultGroupMaxWait    = 2 * time.Second
	DefaultGroupRetryAfter = time.Second
)

// CommitObserver receives the group writer's measurements (issuer/metrics).
type CommitObserver interface {
	// CommitBatch is called once per batch: how many rotations it ran and
	// how long its COMMIT (with its fsync) took; err is the COMMIT's.
	CommitBatch(size int, commit time.Duration, err error)
}

// job states: the writer takes a queued job, or its caller abandons it.
const (
	jobQueued int32 = iota
	jobTaken
	jobAbandoned
)

// rotateJob is one caller's rotation waiting for the writer.
type rotateJob struct {
	r     store.RotateRequest
	state atomic.Int32
	done  chan rotateAnswer // buffered: the writer never waits for a caller
}

type rotateAnswer struct {
	res  store.RotateResult
	step store.RotationStep
	err  error
}

// groupWriter is the one goroutine that runs queued rotations.
type groupWriter struct {
	s       *Store
	cfg     GroupCommit
	queue   chan *rotateJob
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
	// conn is the writer's own pooled connection, held from its first
	// batch until Close (nil before, or after it broke): SQLite drops a
	// connection's whole page cache whenever another connection has
	// committed since its last transaction, so batches that ran on
	// whichever connection the pool handed out each began cold and read
	// their pages again from the file. Owned by the writer goroutine,
	// and by WithWriterConn while it holds the write lock.
	conn *sqlx.Conn
	// connDone: the writer has stopped and given its connection back.
	connDone bool
}

// StartGroupCommit switches RotateRefresh to group commit (see
// GroupCommit) until Close. Call it once, before the Store is shared; it
// is an error on a database that admits several writers, where each
// rotation locks only its own session's row instead.
func (s *Store) StartGroupCommit(cfg GroupCommit) error {
	if !s.d.OneWriter {
		return s.d.errorf("group commit: only for a database with one writer at a time")
	}
	if s.group != nil {
		return s.d.errorf("group commit: already started")
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultGroupQueue
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultGroupBatch
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultGroupMaxWait
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultGroupRetryAfter
	}
	g := &groupWriter{s: s, cfg: cfg, queue: make(chan *rotateJob, cfg.Queue),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	s.group = g
	go g.run()
	return nil
}

// QueueDepth is how many rotations wait for the group writer now (0
// without group commit), for the queue depth gauge.
func (s *Store) QueueDepth() int {
	if s.group == nil {
		return 0
	}
	return len(s.group.queue)
}

// rotate queues r and waits for its answer, the caller's context, or
// MaxWait, whichever comes first.
func (g *groupWriter) rotate(ctx context.Context, r store.RotateRequest) (store.RotateResult, store.RotationStep, error) {
	if err := ctx.Err(); err != nil {
		return store.RotateResult{}, 0, g.s.d.Wrap("rotate refresh", err)
	}
	j := &rotateJob{r: r, done: make(chan rotateAnswer, 1)}
	select {
	case <-g.stop:
		return store.RotateResult{}, 0, g.closed()
	default:
	}
	select {
	case g.queue <- j:
	default:
		return store.RotateResult{}, 0, g.overloaded()
	}
	wait := time.NewTimer(g.cfg.MaxWait)
	defer wait.Stop()
	select {
	case a := <-j.done:
		return a.res, a.step, a.err
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			return store.RotateResult{}, 0, g.s.d.Wrap("rotate refresh: queued", ctx.Err())
		}
		// Taken into a batch: the caller has gone, so it learns nothing
		// either way; if the rotation commits, the client's retry with
		// the same token converges within the grace.
		return store.RotateResult{}, 0, g.s.d.Wrap("rotate refresh: in a batch", ctx.Err())
	case <-wait.C:
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			return store.RotateResult{}, 0, g.overloaded()
		}
		// Already running: its batch ends within the busy timeout.
		select {
		case a := <-j.done:
			return a.res, a.step, a.err
		case <-ctx.Done():
			return store.RotateResult{}, 0, g.s.d.Wrap("rotate refresh: in a batch", ctx.Err())
		}
	}
}

func (g *groupWriter) overloaded() error {
	return &store.OverloadError{Op: g.s.d.Name + ": rotate refresh", RetryAfter: g.cfg.RetryAfter}
}

func (g *groupWriter) closed() error {
	return g.s.d.errorf("rotate refresh: %w: store closed", store.ErrUnavailable)
}

// close stops the writer after its current batch and fails what is queued.
func (g *groupWriter) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.stopped
}

func (g *groupWriter) run() {
	defer close(g.stopped)
	defer func() {
		g.s.writer <- struct{}{}
		g.dropConn()
		g.connDone = true
		<-g.s.writer
	}()
	batch := make([]*rotateJob, 0, g.cfg.Batch)
	for {
		batch = batch[:0]
		select {
		case j := <-g.queue:
			batch = g.take(batch, j)
		case <-g.stop:
			for {
				select {
				case j := <-g.queue:
					if j.state.CompareAndSwap(jobQueued, jobTaken) {
						j.done <- rotateAnswer{err: g.closed()}
					}
				default:
					return
				}
			}
		}
		// Whatever queued while the last batch committed joins this one:
		// no timer, so a lone rotation is never kept waiting.
	fill:
		for len(batch) < g.cfg.Batch {
			select {
			case j := <-g.queue:
				batch = g.take(batch, j)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			g.commit(batch)
		}
	}
}

// take adds j to batch unless its caller gave up while it queued.
func (g *groupWriter) take(batch []*rotateJob, j *rotateJob) []*rotateJob {
	if j.state.CompareAndSwap(jobQueued, jobTaken) {
		return append(batch, j)
	}
	return batch
}

// savepoint names each rotation's savepoint; they never nest, so one name
// does.
const savepoint = "rotation"

// commit runs batch in one transaction and answers every job. The
// statements run under a context of their own, never a caller's: SQLite
// answers an interrupted write inside a transaction by rolling back the
// whole transaction, which would undo the other callers' rotations.
func (g *groupWriter) commit(batch []*rotateJob) {
	s := g.s
	ctx := context.Background()
	answers := make([]rotateAnswer, len(batch))
	fail := func(err error) {
		for _, j := range batch {
			j.done <- rotateAnswer{err: err}
		}
	}
	// The in-process write lock: writes outside the group (sign-in,
	// revocations) still take it one at a time in inTx.
	s.writer <- struct{}{}
	defer func() { <-s.writer }()
	tx, err := g.begin(ctx)
	if err != nil {
		fail(s.d.Wrap("rotate refresh: begin", err))
		return
	}
	for i, j := range batch {
		a, err := g.one(ctx, tx, j.r)
		if err != nil {
			// The transaction itself is broken (SQLite rolled it back, or
			// the savepoint cannot be reached): nothing of the batch holds.
			_ = tx.Rollback()
			fail(err)
			return
		}
		answers[i] = a
	}
	if g.cfg.BeforeCommit != nil {
		if err := g.cfg.BeforeCommit(ctx, tx); err != nil {
			_ = tx.Rollback()
			fail(err)
			return
		}
	}
	t0 := time.Now()
	err = tx.Commit()
	if g.cfg.Observer != nil {
		g.cfg.Observer.CommitBatch(len(batch), time.Since(t0), err)
	}
	if err != nil {
		// mattn/go-sqlite3 rolls back a transaction whose COMMIT failed:
		// none of these rotations happened.
		fail(s.d.Wrap("rotate refresh: commit", err))
		return
	}
	for i, j := range batch {
		a := answers[i]
		if a.err == nil && a.step == store.StepReuse {
			// Reported only now that the revocation is committed.
			a.err = s.d.errorf("rotate refresh: session %q: %w", a.res.Session.ID, store.ErrReuse)
		}
		j.done <- a
	}
}

// begin starts a batch's transaction on the writer's own connection,
// taking one from the pool first when it has none; a connection that
// cannot begin is given back (database/sql discards a broken one) and one
// new connection is tried, as inTx does with a BEGIN on a dead one.
func (g *groupWriter) begin(ctx context.Context) (*sqlx.Tx, error) {
	for attempt := 1; ; attempt++ {
		if err := g.connect(ctx); err != nil {
			return nil, err
		}
		tx, err := g.conn.BeginTxx(ctx, nil)
		if err == nil || attempt == 2 {
			return tx, err
		}
		g.dropConn()
	}
}

// connect takes the writer's connection from the pool, when it has none.
func (g *groupWriter) connect(ctx context.Context) error {
	if g.conn != nil {
		return nil
	}
	conn, err := g.s.db.Connx(ctx)
	if err != nil {
		return err
	}
	if g.cfg.ConnSetup != nil {
		if err := g.cfg.ConnSetup(ctx, conn); err != nil {
			_ = conn.Close()
			return err
		}
	}
	g.conn = conn
	return nil
}

// dropConn gives the writer's connection back to the pool.
func (g *groupWriter) dropConn() {
	if g.conn != nil {
		_ = g.conn.Close()
		g.conn = nil
	}
}

// WithWriterConn runs fn on the group writer's own connection, between
// two batches (it holds the write lock meanwhile), and reports whether
// there is a group writer at all; without one fn is not run. It lets a
// backend check that connection's settings like those of the pool's
// others (the writer holds it out of the pool).
func (s *Store) WithWriterConn(ctx context.Context, fn func(*sqlx.Conn) error) (bool, error) {
	g := s.group
	if g == nil {
		return false, nil
	}
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return true, s.d.Wrap("writer connection", ctx.Err())
	}
	if g.connDone {
		return true, g.closed()
	}
	if err := g.connect(ctx); err != nil {
		return true, s.d.Wrap("writer connection", err)
	}
	return true, fn(g.conn)
}

// one runs a rotation under its own savepoint inside the batch's tx: its
// failure is its answer and is rolled back to the savepoint, leaving the
// others. The error returned is one the whole batch must fail with.
func (g *groupWriter) one(ctx context.Context, tx *sqlx.Tx, r store.RotateRequest) (rotateAnswer, error) {
	s := g.s
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
		return rotateAnswer{}, s.d.Wrap("rotate refresh: savepoint", err)
	}
	res, step, err := s.rotate(ctx, tx, r)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO "+savepoint); rerr != nil {
			return rotateAnswer{}, s.d.Wrap("rotate refresh: rollback to savepoint", errors.Join(err, rerr))
		}
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE "+savepoint); rerr != nil {
		return rotateAnswer{}, s.d.Wrap("rotate refresh: release savepoint", rerr)
	}
	return rotateAnswer{res: res, step: step, err: err}, nil
}
