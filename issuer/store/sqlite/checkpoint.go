package sqlite

import (
	"context"
	"os"
	"sync"
	"time"
)

// SQLite copies the WAL back into the database file (a checkpoint) on the
// connection whose COMMIT pushed the WAL past wal_autocheckpoint pages: that
// request then waits for the copy and its fsync, and under group commit the
// whole batch behind it does too. With group commit the store turns
// autocheckpoint off on every connection (see connector) and checkpoints
// from a goroutine of its own instead.
//
// Its checkpoints are always PASSIVE: they take no lock that a writer
// needs, so rotations go on committing to the WAL while one runs. The
// stronger modes (RESTART, TRUNCATE) hold the write lock for the whole copy
// and then wait, still holding it, until every reader has left the WAL:
// when a TRUNCATE ran past 64 MiB of WAL, rotations stalled for up to
// 2.6 s (BenchmarkRotateScale's 1M ÷ 10k mean was 2.6–3.0×, 1.1–1.3× without
// it). The WAL file is kept small another way: walSizeLimit below.
const (
	// checkpointEvery is how often the checkpointer looks at the WAL.
	checkpointEvery = 100 * time.Millisecond
	// checkpointPassiveAt is the WAL size from which it checkpoints: about
	// SQLite's own autocheckpoint of 1000 pages.
	checkpointPassiveAt = 4 << 20
	// walSizeLimit is every connection's journal_size_limit: when a writer
	// starts the WAL over (which it does once a checkpoint has copied all
	// of it and no reader still needs it), it truncates a larger file to
	// this size. So a burst leaves no large WAL behind, and the file's size
	// is about the WAL written since the last restart, which is what the
	// checkpointer's threshold looks at.
	walSizeLimit = 1 << 20
)

// checkpointer is the background checkpoint goroutine of one Store.
type checkpointer struct {
	s       *Store
	wal     string // the -wal file's path
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func startCheckpointer(s *Store, abs string) *checkpointer {
	c := &checkpointer{s: s, wal: abs + "-wal", stop: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.stopped)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		fi, err := os.Stat(c.wal)
		if err != nil || fi.Size() < checkpointPassiveAt {
			continue
		}
		// An error (the file gone, SQLITE_BUSY from another process's
		// checkpoint) is tried again at the next tick; the WAL only grows
		// meanwhile, it loses nothing.
		ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
		_, _ = c.s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		cancel()
	}
}

// close stops the goroutine; SQLite checkpoints once more when the last
// connection closes.
func (c *checkpointer) close() {
	c.once.Do(func() { close(c.stop) })
	<-c.stopped
}

// Close stops the background checkpoints and the group writer, then
// closes the database. Closing twice is harmless.
func (s *Store) Close() error {
	if s.ckpt != nil {
		s.ckpt.close()
	}
	return s.Store.Close()
}
