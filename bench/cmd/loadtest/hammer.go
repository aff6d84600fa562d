package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// stats are one scenario's outcome.
type stats struct {
	Name     string        `json:"name"`
	Conc     int           `json:"concurrency"`
	Requests int           `json:"requests"` // successful
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	PerSec   float64       `json:"per_sec"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	FirstErr string        `json:"first_error,omitempty"`
	// ServerCPU and ClientCPU are the CPU time (user and system) the
	// server under load and the load generator itself spent during the
	// scenario, where measured (the SQLite refresh rounds): per request,
	// they show whether the server or the client bounds the rate.
	ServerCPU time.Duration `json:"server_cpu_ns,omitempty"`
	ClientCPU time.Duration `json:"client_cpu_ns,omitempty"`
	lat       []time.Duration
}

// verbose logs every round.
var verbose = os.Getenv("CANOPY_LOADTEST_VERBOSE") != ""

// maxPerWorker bounds every worker's loop whatever the duration.
const maxPerWorker = 2_000_000

// hammer runs do from conc workers until d has passed (or ctx ends) and
// measures each call. A call's error counts as a failure; the scenario stops
// early after 1000 of them.
func hammer(ctx context.Context, name string, conc int, d time.Duration, do func(worker int) error) stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	st := stats{Name: name, Conc: conc}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			errs, first := 0, ""
			for i := 0; i < maxPerWorker && ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := do(w)
				if ctx.Err() != nil && err != nil {
					break // cut off by the deadline: neither a success nor a failure
				}
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					if errs > 1000/conc+1 {
						cancel()
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			st.lat = append(st.lat, lat...)
			st.Errors += errs
			if st.FirstErr == "" {
				st.FirstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	st.finish()
	if verbose {
		logf("%s: %d in %v, max %v", name, st.Requests, st.Elapsed.Round(time.Millisecond), st.Max)
	}
	return st
}

// merge adds another round of the same scenario.
func (s *stats) merge(o stats) {
	s.lat = append(s.lat, o.lat...)
	s.Errors += o.Errors
	s.Elapsed += o.Elapsed
	s.ServerCPU += o.ServerCPU
	s.ClientCPU += o.ClientCPU
	if s.FirstErr == "" {
		s.FirstErr = o.FirstErr
	}
	s.finish()
}

func (s *stats) finish() {
	s.Requests = len(s.lat)
	s.PerSec = float64(s.Requests) / s.Elapsed.Seconds()
	if len(s.lat) == 0 {
		return
	}
	slices.Sort(s.lat)
	s.P50 = s.lat[len(s.lat)/2]
	s.P99 = s.lat[min(len(s.lat)-1, len(s.lat)*99/100)]
	s.Max = s.lat[len(s.lat)-1]
}

func (s stats) String() string {
	return fmt.Sprintf("%-34s %4d %9d %6d %10.0f %9s %9s", s.Name, s.Conc, s.Requests, s.Errors, s.PerSec,
		s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond))
}
