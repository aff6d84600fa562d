package sso

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"

	jose "github.com/go-jose/go-jose/v4"
)

// corpusDir holds the hostile-token corpus shared with the relying example's
// middleware test (relying/site/corpus_test.go).
var corpusDir = filepath.Join("..", "..", "testdata", "tokens")

// corpusFile is testdata/tokens/corpus.json.
type corpusFile struct {
	Comment  string      `json:"comment"`
	Issuer   string      `json:"issuer"`
	Audience string      `json:"audience"`
	Now      int64       `json:"now"`    // the verifying clock, Unix seconds
	Leeway   string      `json:"leeway"` // the verifier's (the default)
	Rows     []corpusRow `json:"rows,omitempty"`
}

// corpusRow is one case: a token (or, with As "cookie-header", a whole Cookie
// header) and the verdict: "accept" or the sso.Reason of the refusal.
type corpusRow struct {
	Name  string       `json:"name"`
	Token string       `json:"token,omitempty"`
	Build *corpusBuild `json:"build,omitempty"`
	As    string       `json:"as,omitempty"`
	Want  string       `json:"want"`
	// WantBearer, when set, is the verdict through "Authorization: Bearer",
	// where surrounding spaces are not part of the token.
	WantBearer  string   `json:"want_bearer,omitempty"`
	Why         string   `json:"why"`
	RevokedSIDs []string `json:"revoked_sids,omitempty"`
}

// corpusBuild describes a token too big to keep literally: Prefix, then the
// token of row Of (when set), then Repeat written Count times.
type corpusBuild struct {
	Prefix string `json:"prefix,omitempty"`
	Of     string `json:"of,omitempty"`
	Repeat string `json:"repeat"`
	Count  int    `json:"count"`
}

// loadCorpus reads corpus.json and expands the built rows.
func loadCorpus(t testing.TB) *corpusFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, "corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc corpusFile
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("corpus.json: %v", err)
	}
	byName := map[string]string{}
	for i := range doc.Rows {
		r := &doc.Rows[i]
		if _, dup := byName[r.Name]; dup || r.Name == "" || r.Why == "" || r.Want == "" {
			t.Fatalf("row %d %q: duplicate or incomplete", i, r.Name)
		}
		if b := r.Build; b != nil {
			base, ok := byName[b.Of]
			if r.Token != "" || b.Count < 0 || (b.Of != "" && !ok) {
				t.Fatalf("row %q: bad build", r.Name)
			}
			r.Token = b.Prefix + base + strings.Repeat(b.Repeat, b.Count)
		}
		byName[r.Name] = r.Token
	}
	return &doc
}

// corpusKeySet is keys.json: the issuer's public keys.
func corpusKeySet(t testing.TB) (*StaticKeySet, jose.JSONWebKeySet) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	ks, err := NewStaticKeySet(set.Keys...)
	if err != nil {
		t.Fatal(err)
	}
	return ks, set
}

// goJoseRows are the rows go-jose v4 accepts on its own (ParseSignedCompact
// with the allowed algorithms, then Verify with the issuer's key) although
// they are not well-formed: base64.RawURLEncoding skips CR and LF and does
// not check the trailing bits. They are why SPEC.md has pre-parse checks.
var goJoseRows = []string{
	"newline-in-header", "newline-in-payload", "newline-in-signature",
	"cr-in-header", "cr-in-payload", "cr-in-signature", "crlf-at-end",
	"trailing-bits-signature", "trailing-bits-header",
}

// TestCorpus verifies every row of testdata/tokens/corpus.json with one
// verifier configuration and the clock fixed at the corpus's now.
func TestCorpus(t *testing.T) {
	doc := loadCorpus(t)
	ks, set := corpusKeySet(t)
	now := time.Unix(doc.Now, 0)
	leeway, err := time.ParseDuration(doc.Leeway)
	if err != nil || leeway != DefaultLeeway {
		t.Fatalf("corpus leeway %q: the rows assume the default", doc.Leeway)
	}
	counts := map[string]int{}
	joseAccepts := map[string][]string{} // want → refused rows go-jose alone accepts
	for _, row := range doc.Rows {
		if row.As != "" {
			continue // a whole Cookie header: relying/site's test sends it
		}
		counts[row.Want]++
		t.Run(row.Name, func(t *testing.T) {
			v, err := NewVerifier(ks, Config{Issuer: doc.Issuer, Audience: doc.Audience,
				Now: func() time.Time { return now }, Revoked: ssotest.RevokedSet(sidSet(row.RevokedSIDs))})
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(context.Background(), row.Token)
			got := Reason(err)
			if err == nil {
				got = "accept"
			}
			if got != row.Want {
				t.Fatalf("got %s (%v), want %s: %s", got, err, row.Want, row.Why)
			}
			if err != nil {
				if c != nil || v.cache.len() != 0 {
					t.Fatal("a refused token returned claims or was cached")
				}
			} else if c.Subject != "u_alice" || c.Username != "alice" || c.Issuer != doc.Issuer || c.Audience != doc.Audience {
				t.Fatalf("claims %+v", c)
			}
			// Not the verdict: what go-jose alone would have said.
			joseErr := goJoseAlone(row.Token, set)
			switch {
			case err == nil && joseErr != nil:
				t.Errorf("accepted, but go-jose alone refuses it: %v", joseErr)
			case err != nil && joseErr == nil:
				joseAccepts[row.Want] = append(joseAccepts[row.Want], row.Name)
			}
		})
	}
	t.Logf("rows by verdict: %v", counts)
	// go-jose checks no claims, so it accepts every row refused for its
	// claims; the malformed and signature rows are the interesting ones.
	for _, want := range slices.Sorted(maps.Keys(joseAccepts)) {
		names := joseAccepts[want]
		t.Logf("refused as %s, yet go-jose alone accepts (%d): %s", want, len(names), strings.Join(names, " "))
	}
	for _, name := range goJoseRows {
		if !slices.Contains(joseAccepts["malformed"], name) {
			t.Errorf("go-jose alone no longer accepts %s; the pre-parse checks are still required, but update goJoseRows", name)
		}
	}
}

func sidSet(sids []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range sids {
		m[s] = true
	}
	return m
}

// goJoseAlone is the verifier a relying service would get from go-jose
// without SPEC.md's checks: the allowed algorithms, a signature by any issuer
// key, and nothing about the header or the claims.
func goJoseAlone(token string, set jose.JSONWebKeySet) error {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		return err
	}
	for _, k := range set.Keys {
		if _, err = jws.Verify(k.Key); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no issuer key verifies it: %w", err)
}
