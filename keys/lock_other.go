//go:build !unix

package keys

import "errors"

// lockDir needs flock(2); without it two instances could make two active
// keys, so the directory is refused rather than used unlocked.
func lockDir(dir string, exclusive bool) (unlock func(), err error) {
	return nil, errors.New("keys: locking the key directory needs a Unix system")
}
