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
// from a goroutine of its own instead; a PASSIVE checkpoint takes no write
// lock, so rotations go on committing to the WAL while it runs.
const (
	// checkpointEvery is how often the checkpointer looks at the WAL.
	checkpointEvery = 100 * time.Millisecond
	// checkpointPassiveAt is the WAL size from which it checkpoints: about
	// SQLite's own autocheckpoint of 1000 pages.
	checkpointPassiveAt = 4 << 20
	// checkpointTruncateAt is the WAL size from which it also truncates the
	// file (briefly waiting for writers), so that a burst leaves no large
	// WAL behind for every later reader to search.
	checkpointTruncateAt = 64 << 20
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
		mode := "PASSIVE"
		if fi.Size() >= checkpointTruncateAt {
			mode = "TRUNCATE"
		}
		// An error (the file gone, SQLITE_BUSY from another process's
		// checkpoint) is tried again at the next tick; the WAL only grows
		// meanwhile, it loses nothing.
		ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
		_, _ = c.s.db.ExecContext(ctx, "PRAGMA wal_checkpoint("+mode+")")
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
