//go:build unix

package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockTimeout bounds the wait for another process's lock: holders keep it
// for milliseconds, so a longer wait means a stuck process, which deserves
// an error rather than an issuer that hangs at start.
const lockTimeout = 30 * time.Second

// lockDir takes flock(2) on dir/.lock, exclusive for changes and shared for
// reads. The lock belongs to the open file, so two *Dir in one process
// exclude each other just as two processes do. Closing the file releases it.
func lockDir(dir string, exclusive bool) (unlock func(), err error) {
	// Read-only is enough for flock, and lets a user who may only read the
	// directory list it once the lock file exists.
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keys: lock %s: %w", dir, err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	// Polling with LOCK_NB rather than blocking lets the wait time out; the
	// short cap keeps the hand-over quick, and contention is rare.
	deadline := time.Now().Add(lockTimeout)
	wait := 100 * time.Microsecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("keys: lock %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("keys: lock %s: held by another process for over %s", dir, lockTimeout)
		}
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Millisecond)
	}
}
