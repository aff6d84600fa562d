package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver the issuer uses

	"github.com/canopy-sso/canopy/issuer/store/sqlite"
)

// seed creates the issuer's database at path with n live sessions spread over
// n/100 users, each with one refresh token, and returns the refresh tokens of
// `keep` sessions spread evenly over the table for the load's clients. It
// writes the rows the way the issuer's own schema has them (a session row and
// its token's SHA-256, hex, in refresh_tokens), in one transaction through
// prepared statements: a million rows take seconds, not a million fsyncs. The
// issuer's migrations create the schema first, so the file is exactly what
// the issuer expects.
func seed(ctx context.Context, path string, n, keep int) ([]string, time.Duration, error) {
	start := time.Now()
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		return nil, 0, err
	}
	if err := s.Close(); err != nil {
		return nil, 0, err
	}
	// Durability is pointless while seeding: the file is new and the
	// checkpoint below happens before the issuer starts.
	db, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", Path: path, RawQuery: "_synchronous=OFF"}).String())
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `PRAGMA cache_size = -524288`); err != nil { // 512 MiB
		return nil, 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now()
	created, expires, access := now.UnixMicro(), now.Add(720*time.Hour).UnixMicro(), now.Add(5*time.Minute).UnixMicro()
	users := max(1, n/100)
	insUser, err := tx.PrepareContext(ctx, `INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)`)
	if err != nil {
		return nil, 0, err
	}
	for u := range users {
		if _, err := insUser.ExecContext(ctx, fmt.Sprintf("u%07d", u), fmt.Sprintf("seed%07d", u), created); err != nil {
			return nil, 0, fmt.Errorf("seed user: %w", err)
		}
	}
	insSession, err := tx.PrepareContext(ctx, `INSERT INTO sessions (id, user_id, created_at, auth_time, expires_at,
		last_used_at, access_until, user_agent, ip, current_hash) VALUES (?1, ?2, ?3, ?3, ?4, ?3, ?5, 'loadtest', '127.0.0.1', ?6)`)
	if err != nil {
		return nil, 0, err
	}
	insToken, err := tx.PrepareContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at) VALUES (?, ?, ?)`)
	if err != nil {
		return nil, 0, err
	}
	var kept []string
	step := max(1, n/max(1, keep))
	var key [32]byte
	_, _ = rand.Read(key[:])
	rnd := mrand.NewChaCha8(key) // crypto/rand per row would cost more than the insert
	var raw [32]byte
	for i := range n {
		_, _ = rnd.Read(raw[:])
		tok := base64.RawURLEncoding.EncodeToString(raw[:])
		sum := sha256.Sum256([]byte(tok)) // the issuer stores hex(SHA-256(cookie value))
		hash := hex.EncodeToString(sum[:])
		// Session ids as long as the issuer's (16 bytes, base64url), but
		// ascending, so the primary key is appended to rather than split at
		// random: the refresh_tokens keys are random anyway.
		binary.BigEndian.PutUint64(raw[:8], uint64(i))
		sid := base64.RawURLEncoding.EncodeToString(raw[:16])
		if _, err := insSession.ExecContext(ctx, sid, fmt.Sprintf("u%07d", i%users), created, expires, access, hash); err != nil {
			return nil, 0, fmt.Errorf("seed session: %w", err)
		}
		if _, err := insToken.ExecContext(ctx, hash, sid, created); err != nil {
			return nil, 0, fmt.Errorf("seed token: %w", err)
		}
		if i%step == 0 && len(kept) < keep {
			kept = append(kept, tok)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, err
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return nil, 0, err
	}
	return kept, time.Since(start), nil
}
