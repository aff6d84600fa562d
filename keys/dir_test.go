package keys

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Environment of the child process that TestRotateRaceProcesses starts: the
// test binary itself, running rotations instead of tests.
const (
	helperDirEnv    = "CANOPY_KEYS_TEST_ROTATE_DIR"
	helperRoundsEnv = "CANOPY_KEYS_TEST_ROTATE_ROUNDS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		os.Exit(rotateHelper(dir))
	}
	os.Exit(m.Run())
}

// rotateHelper forces rotations in dir and prints how many succeeded.
func rotateHelper(dir string) int {
	rounds, err := strconv.Atoi(os.Getenv(helperRoundsEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	d, err := Open(dir, Options{JWKSMaxAge: time.Hour, AccessTTL: time.Hour})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := 0
	for range rounds {
		if err := d.Rotate(true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		done++
	}
	fmt.Println(done)
	return 0
}

func TestTwoInstancesShareTheDirectory(t *testing.T) {
	a, c := ensured(t, wire.AlgEdDSA)
	b := mustOpen(t, a.Path(), testOptions(wire.AlgEdDSA, c))
	if !slices.Equal(a.List(), b.List()) {
		t.Fatalf("instances disagree: %+v %+v", a.List(), b.List())
	}
	before := b.List()
	if err := a.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.List(), before) {
		t.Fatal("b changed without a Reload")
	}
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.List(), b.List()) {
		t.Fatalf("after Reload: a %+v, b %+v", a.List(), b.List())
	}
	if header(t, mustSign(t, b)).Kid != one(t, a, StateActive).KID {
		t.Error("b signs with another key than a")
	}
	if ja, _ := a.JWKS(); true {
		if jb, _ := b.JWKS(); string(ja) != string(jb) {
			t.Errorf("JWKS differ:\n%s\n%s", ja, jb)
		}
	}
}

func TestWatchPicksUpChanges(t *testing.T) {
	a, c := ensured(t, wire.AlgEdDSA)
	b := mustOpen(t, a.Path(), testOptions(wire.AlgEdDSA, c))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Watch(ctx, 5*time.Millisecond)
	}()
	defer func() {
		cancel()
		<-done
	}()
	if err := a.Rotate(true); err != nil {
		t.Fatal(err)
	}
	want := one(t, a, StateActive).KID
	deadline := time.Now().Add(10 * time.Second)
	for one(t, b, StateActive).KID != want {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the rotation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkConsistent asserts the invariants of a finished set: one active key,
// one next key, and one retired key per rotation.
func checkConsistent(t *testing.T, dir string, rotations int) {
	t.Helper()
	d := mustOpen(t, dir, Options{JWKSMaxAge: time.Hour, AccessTTL: time.Hour})
	st := byState(d)
	if len(st[StateActive]) != 1 || len(st[StateNext]) != 1 || len(st[StateRetired]) != rotations {
		t.Errorf("after %d rotations: %d active, %d next, %d retired", rotations,
			len(st[StateActive]), len(st[StateNext]), len(st[StateRetired]))
	}
	if got := kidsOnDisk(t, dir); !slices.Equal(got, kidsOf(d)) {
		t.Errorf("files %v, set %v", got, kidsOf(d))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
	if err := verifyWithJWKS(t, d, mustSign(t, d)); err != nil {
		t.Error(err)
	}
}

func TestRotateRace(t *testing.T) {
	const n = 16
	first, c := ensured(t, wire.AlgEdDSA)
	dir := first.Path()
	dirs := make([]*Dir, n)
	for i := range dirs {
		dirs[i] = mustOpen(t, dir, testOptions(wire.AlgEdDSA, c))
	}
	// A reader loads the directory throughout and must never see a rotation
	// half done. Open loads without the repairs that Reload may make.
	stop := make(chan struct{})
	var readerWG sync.WaitGroup
	readerWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			reader, err := Open(dir, testOptions(wire.AlgEdDSA, c))
			if err != nil {
				t.Error(err)
				return
			}
			st := byState(reader)
			if len(st[StateActive]) != 1 || len(st[StateNext]) < 1 {
				t.Errorf("reader saw %d active and %d next keys", len(st[StateActive]), len(st[StateNext]))
				return
			}
		}
	})

	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range dirs {
		wg.Go(func() {
			<-start
			if err := d.Rotate(true); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	readerWG.Wait()
	checkConsistent(t, dir, n)
}

func TestRotateRaceProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, goroutines, rounds = 3, 3, 10
	first, _ := ensured(t, wire.AlgEdDSA)
	dir := first.Path()

	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), helperDirEnv+"="+dir, helperRoundsEnv+"="+strconv.Itoa(rounds))
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			d := mustOpen(t, dir, Options{JWKSMaxAge: time.Hour, AccessTTL: time.Hour})
			for range rounds {
				if err := d.Rotate(true); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := goroutines * rounds
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		got, err := strconv.Atoi(strings.TrimSpace(outs[i].String()))
		if err != nil || got != rounds {
			t.Fatalf("child %d reported %q", i, outs[i].String())
		}
		total += got
	}
	checkConsistent(t, filepath.Clean(dir), total)
}
