package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/issuer/store/storetest"
)

// rotationFixture is a database seeded with n live sessions whose chains the
// benchmark rounds advance; it outlives the rounds (b.N grows, -count repeats).
type rotationFixture struct {
	s   *Store
	sid []string
	gen []int // the index of each session's current token
	rnd *rand.Rand
	now time.Time
}

// seedScale opens a store with n seeded sessions for the rounds.
func seedScale(b *testing.B, n int) *rotationFixture {
	s, sids := seed(b, n)
	return &rotationFixture{s: s, sid: sids, gen: make([]int, n), rnd: rand.New(rand.NewPCG(1, uint64(n))),
		now: benchBase.Add(time.Minute)}
}

// rotate advances a random session's chain by one durable rotation: refreshes
// come from any session, so the pages touched are spread over the whole file.
func (f *rotationFixture) rotate(b *testing.B) {
	i := f.rnd.IntN(len(f.sid))
	sid, gen := f.sid[i], f.gen[i]
	res, err := f.s.RotateRefresh(context.Background(), store.RotateRequest{
		PresentedHash: storetest.BenchHash(sid, gen),
		SuccessorHash: storetest.BenchHash(sid, gen+1),
		Now:           f.now,
		Grace:         30 * time.Second,
		IdleTTL:       168 * time.Hour,
		AccessExpiry:  f.now.Add(5 * time.Minute),
	})
	if err != nil || res.Outcome != store.Rotated {
		b.Fatalf("rotate %s#%d: %v, outcome %v", sid, gen, err, res.Outcome)
	}
	f.gen[i]++
}

// BenchmarkRotateScale measures one durable (synchronous=FULL) refresh
// rotation with 10k and with 1M sessions stored. The two databases are seeded
// once per run. "paired" alternates blocks of rotations between the stores,
// timing each apart, and reports 1M/10k, so the ratio is fair on a noisy
// machine (fsync latency swings more than anything the table size does).
func BenchmarkRotateScale(b *testing.B) {
	small := seedScale(b, 10_000)
	large := seedScale(b, 1_000_000)
	for _, tc := range []struct {
		name string
		f    *rotationFixture
	}{{"sessions=10k", small}, {"sessions=1M", large}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.f.rotate(b)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
		})
	}
	paired(b, "paired", small, large)
	// The same files through stores committing each rotation on its own
	// with SQLite's own checkpoints (the path before group commit), in the
	// same run.
	paired(b, "paired-each", commitEach(b, small), commitEach(b, large))
}

// commitEach is f through a second Store on the same file with
// Options.CommitEach; the chains (gen) are shared, so either store may
// rotate next.
func commitEach(b *testing.B, f *rotationFixture) *rotationFixture {
	var file string
	if err := f.s.db.Get(&file, `SELECT file FROM pragma_database_list WHERE name = 'main'`); err != nil {
		b.Fatal(err)
	}
	each, err := Open(file, Options{CommitEach: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = each.Close() })
	c := *f
	c.s = each
	return &c
}

// paired alternates blocks of rotations between small and large, timing
// each apart, and reports their means and 1M/10k.
func paired(b *testing.B, name string, small, large *rotationFixture) {
	b.Run(name, func(b *testing.B) {
		// Blocks of rotations alternate between the stores: short enough
		// that the machine's drift falls on both alike, long enough that one
		// store's fsync and checkpoint rarely land in the other's timing
		// (the two files share a disk; alternating every rotation made the
		// pairs disturb each other).
		const block = 50
		var lats [2][]time.Duration
		stores := [2]*rotationFixture{small, large}
		i := 0
		for b.Loop() {
			which := (i / block) % 2
			t0 := time.Now()
			stores[which].rotate(b)
			lats[which] = append(lats[which], time.Since(t0))
			i++
		}
		if len(lats[0]) == 0 || len(lats[1]) == 0 {
			return // too few iterations for a pair
		}
		// The mean carries the WAL checkpoints (every ~1000 pages written),
		// which copy far more scattered pages into a 1M-session file; the
		// median is the rotation itself.
		var mean, p50 [2]float64
		for k, l := range lats {
			var sum time.Duration
			for _, d := range l {
				sum += d
			}
			mean[k] = float64(sum.Nanoseconds()) / float64(len(l))
			slices.Sort(l)
			p50[k] = float64(l[len(l)/2].Nanoseconds())
		}
		b.ReportMetric(mean[0], "10k-ns/op")
		b.ReportMetric(mean[1], "1M-ns/op")
		b.ReportMetric(mean[1]/mean[0], "1M/10k")
		b.ReportMetric(p50[1]/p50[0], "1M/10k-p50")
	})
}

// BenchmarkGroupCommit measures durable rotations from 64 concurrent
// callers on a million sessions, in the store without HTTP: group commit
// (the default) and one transaction and fsync per rotation (CommitEach),
// two Stores on the same file, in alternating 500 ms rounds (one round of
// each per iteration, the order swapped each time) so that the machine's
// drift falls on both. It reports both rates and their ratio.
func BenchmarkGroupCommit(b *testing.B) {
	const callers, round = 64, 500 * time.Millisecond
	group, sids := seed(b, 1_000_000)
	var file string
	if err := group.db.Get(&file, `SELECT file FROM pragma_database_list WHERE name = 'main'`); err != nil {
		b.Fatal(err)
	}
	each, err := Open(file, Options{CommitEach: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = each.Close() })
	gen := make([]int, len(sids))
	now := benchBase.Add(time.Minute)
	// run rotates from callers goroutines for d; caller w owns the sessions
	// i with i % callers == w, so no two touch one chain.
	run := func(s *Store, d time.Duration, seed uint64) (int, error) {
		var total atomic.Int64
		var firstErr atomic.Value
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := range callers {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(seed, uint64(w)))
				for time.Now().Before(deadline) {
					i := rnd.IntN(len(sids)/callers)*callers + w
					res, err := s.RotateRefresh(context.Background(), store.RotateRequest{
						PresentedHash: storetest.BenchHash(sids[i], gen[i]), SuccessorHash: storetest.BenchHash(sids[i], gen[i]+1),
						Now: now, Grace: 30 * time.Second, IdleTTL: 168 * time.Hour, AccessExpiry: now.Add(5 * time.Minute),
					})
					if err != nil || res.Outcome != store.Rotated {
						firstErr.CompareAndSwap(nil, fmt.Errorf("rotate %s#%d: %v, outcome %v", sids[i], gen[i], err, res.Outcome))
						return
					}
					gen[i]++
					total.Add(1)
				}
			})
		}
		wg.Wait()
		if e, _ := firstErr.Load().(error); e != nil {
			return 0, e
		}
		return int(total.Load()), nil
	}
	var nGroup, nEach int
	var dGroup, dEach time.Duration
	var ratios []float64
	i := 0
	for b.Loop() {
		var rates [2]float64
		for k := range 2 {
			which := (i + k) % 2
			s := group
			if which == 1 {
				s = each
			}
			t0 := time.Now()
			n, err := run(s, round, uint64(i*2+k))
			d := time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			rates[which] = float64(n) / d.Seconds()
			if which == 0 {
				nGroup, dGroup = nGroup+n, dGroup+d
			} else {
				nEach, dEach = nEach+n, dEach+d
			}
		}
		ratios = append(ratios, rates[0]/rates[1])
		i++
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(nGroup)/dGroup.Seconds(), "group-rot/s")
	b.ReportMetric(float64(nEach)/dEach.Seconds(), "each-rot/s")
	b.ReportMetric(ratios[len(ratios)/2], "group/each")
}
