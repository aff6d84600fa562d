package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// guard runs the server under a small shell that stops it, and removes the
// cluster's directory, as soon as its standard input closes. The test binary
// holds the other end: when it exits for any reason (a panic, a -timeout
// kill, Ctrl-C) the server goes with it instead of lingering on the machine.
// A first line "keep" stops the server but keeps the data (Stop, then Start).
// The shell exits when the server does, whoever stopped it.
const guard = `exec 3<&0
"$@" &
pid=$!
( IFS= read -r cmd <&3; printf '%s\n' "$cmd" > "$PGTEST_DIR/.stop"; kill -INT "$pid" 2>/dev/null ) &
watcher=$!
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
if [ -f "$PGTEST_DIR/.stop" ]; then
	cmd=$(cat "$PGTEST_DIR/.stop")
	rm -f "$PGTEST_DIR/.stop"
	[ "$cmd" = keep ] || rm -rf -- "$PGTEST_DIR"
fi
exit $status`

// server is one run of the postgres process under the guard.
type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   *tailBuffer
	done  chan struct{} // closed when the guard has exited
	err   error         // the guard's exit, once done is closed
}

func startServer(pg *exec.Cmd) (*server, error) {
	cmd := exec.Command("/bin/sh", append([]string{"-c", guard, "pgtest-guard", pg.Path}, pg.Args[1:]...)...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = pg.Dir, pg.Env, pg.SysProcAttr
	// Its own process group: Ctrl-C in the terminal reaches the test binary,
	// whose exit then stops the server through the guard, in order.
	setProcessGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &server{cmd: cmd, stdin: stdin, log: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	return s, nil
}

// stop asks the guard to stop the server (fast shutdown) and waits for it;
// keep leaves the data directory in place.
func (s *server) stop(keep bool) error {
	if keep {
		_, _ = io.WriteString(s.stdin, "keep\n") // a closed pipe means it is gone already
	}
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(startTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("pgtest: postgres did not stop within %s:\n%s", startTimeout, s.log.String())
	}
	var exit *exec.ExitError
	if s.err != nil && !errors.As(s.err, &exit) {
		return fmt.Errorf("pgtest: postgres: %w", s.err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it: the server's log, shown
// when it fails to start.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
