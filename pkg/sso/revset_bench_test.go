package sso

import (
	"crypto/rand"
	"encoding/base64"
	"runtime"
	"testing"
	"time"
)

// BenchmarkRevocationSetMemory measures what one revoked session costs a
// relying service's revocation set: the heap it holds after a garbage
// collection, per entry, with sids shaped like the issuer's (16 random bytes
// in base64url). The merge's copy-on-write is what the stream pays per event.
func BenchmarkRevocationSetMemory(b *testing.B) {
	const n = 100_000
	sids := make(map[string]int64, n)
	until := time.Now().Add(time.Hour).Unix()
	for range n {
		var raw [16]byte
		_, _ = rand.Read(raw[:])
		sids[base64.RawURLEncoding.EncodeToString(raw[:])] = until
	}
	var perEntry float64
	for b.Loop() {
		l := &RevocationList{now: time.Now, leeway: DefaultLeeway, maxSize: DefaultMaxRevocations}
		l.set.Store(&revocationSet{sids: map[string]int64{}, users: map[string][]userEntry{}})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l.merge(sids, nil)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if l.Len() != n {
			b.Fatalf("set holds %d, want %d", l.Len(), n)
		}
		// The sid strings are shared with the input map; count them, as a
		// set filled from the feed owns them (their headers are in the map already).
		perEntry = float64(after.HeapAlloc-before.HeapAlloc)/n + 24 // 22 bytes in a 24-byte size class
		runtime.KeepAlive(l)
	}
	b.ReportMetric(perEntry, "B/entry")
}
