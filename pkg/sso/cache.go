package sso

import (
	"hash/maphash"
	"strings"
	"sync"
)

// The verified-token cache lets a token that verified once be accepted again
// without redoing the signature. It is keyed by the whole token string (never
// a hash of it: a collision would accept a token nobody verified), split into
// shards so that readers on many cores rarely meet, and bounded by entry
// count. A full shard evicts, of a few entries it happens to find first, the
// one closest to expiry; map iteration order is random, which is all the eviction
// policy a cache of short-lived tokens needs.

const cacheShards = 16

// cacheEntry is immutable once stored.
type cacheEntry struct {
	claims   *Claims
	gen      uint64 // key-set generation it was verified under
	deadline int64  // exp + leeway, Unix nanoseconds
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*cacheEntry
	_  [40]byte // keep shards' locks off each other's cache lines
}

type tokenCache struct {
	seed   maphash.Seed
	limit  int // entries per shard
	shards [cacheShards]cacheShard
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), limit: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)%cacheShards]
}

func (c *tokenCache) get(token string) *cacheEntry {
	s := c.shard(token)
	s.mu.RLock()
	e := s.m[token]
	s.mu.RUnlock()
	return e
}

func (c *tokenCache) put(token string, e *cacheEntry) {
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[token]; !ok && len(s.m) >= c.limit {
		s.evict()
	}
	// The token is often a slice of a whole Cookie header; a copy keeps the
	// cache from holding every header alive.
	s.m[strings.Clone(token)] = e
}

// evict removes, of the first few entries iteration yields, the one closest
// to expiry (an expired one, if any).
func (s *cacheShard) evict() {
	const sample = 8
	var victim string
	oldest := int64(1<<63 - 1)
	i := 0
	for k, e := range s.m {
		if e.deadline < oldest {
			victim, oldest = k, e.deadline
		}
		if i++; i == sample {
			break
		}
	}
	delete(s.m, victim)
}

func (c *tokenCache) remove(token string) {
	s := c.shard(token)
	s.mu.Lock()
	delete(s.m, token)
	s.mu.Unlock()
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
