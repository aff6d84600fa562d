package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"
)

// fleetName is the file in which serving instances record the largest token
// lifetime and JWKS max-age they have used. It is hidden, so the key scanner
// skips it as it skips the lock file, and it cannot pass for a temp file.
const fleetName = ".fleet.json"

// fleetFormat is the value of the file's "canopy_fleet" member; a file
// without it, or with another, is not ours and is refused.
const fleetFormat = 1

// MaxAccessTTL is the longest token lifetime a key may have signed for: the
// issuer's --access-ttl limit. A retired key file from before keys carried
// their deadline is kept this long (or longer, when a serving instance has
// recorded a longer lifetime), as nobody knows which lifetime its tokens had.
const MaxAccessTTL = time.Hour

// maxRecorded bounds a recorded duration, so that a hand-edited file cannot
// overflow time.Duration (and no issuer flag comes near it).
const maxRecorded = 366 * 24 * time.Hour

// fleet is what serving instances have recorded in the directory. The zero
// value is a directory where none has.
type fleet struct {
	// AccessTTL is the largest access token lifetime any serving instance
	// has used: a retired key stays published this long.
	AccessTTL time.Duration
	// JWKSMaxAge is the largest JWKS max-age any serving instance has used:
	// a next key must be published this long before it signs.
	JWKSMaxAge time.Duration
}

// fleetFile is the file's JSON. Durations are whole seconds, rounded up
// when recorded, so that every deadline derived from them errs late.
type fleetFile struct {
	Format     *int   `json:"canopy_fleet"`
	AccessTTL  *int64 `json:"largest_access_ttl_seconds"`
	JWKSMaxAge *int64 `json:"largest_jwks_max_age_seconds"`
}

// grow returns f raised to at least o's values, and whether that changed it.
// Recorded values never shrink: a smaller value only means that the instance
// using it needs less, not that tokens or cached key sets of the larger one
// are gone.
func (f fleet) grow(o Options) (fleet, bool) {
	g := fleet{AccessTTL: max(f.AccessTTL, ceilSecond(o.AccessTTL)), JWKSMaxAge: max(f.JWKSMaxAge, ceilSecond(o.JWKSMaxAge))}
	return g, g != f
}

func ceilSecond(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// encodeFleet renders f as its file.
func encodeFleet(f fleet) ([]byte, error) {
	format := fleetFormat
	ttl, maxAge := int64(f.AccessTTL/time.Second), int64(f.JWKSMaxAge/time.Second)
	out, err := json.MarshalIndent(fleetFile{Format: &format, AccessTTL: &ttl, JWKSMaxAge: &maxAge}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: encode %s: %w", fleetName, err)
	}
	return append(out, '\n'), nil
}

// decodeFleet parses the file strictly: every member present, no other, one
// JSON object, values in range. Anything else is somebody else's file or a
// damaged one, and guessing would risk deleting keys early.
func decodeFleet(data []byte) (fleet, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ff fleetFile
	if err := dec.Decode(&ff); err != nil {
		return fleet{}, fmt.Errorf("not a key directory record: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fleet{}, errors.New("not a key directory record: data after the JSON object")
	}
	if ff.Format == nil || ff.AccessTTL == nil || ff.JWKSMaxAge == nil {
		return fleet{}, errors.New("not a key directory record: want canopy_fleet, largest_access_ttl_seconds and largest_jwks_max_age_seconds")
	}
	if *ff.Format != fleetFormat {
		return fleet{}, fmt.Errorf("canopy_fleet %d, want %d", *ff.Format, fleetFormat)
	}
	var f fleet
	for _, m := range []struct {
		name string
		sec  int64
		dst  *time.Duration
	}{
		{"largest_access_ttl_seconds", *ff.AccessTTL, &f.AccessTTL},
		{"largest_jwks_max_age_seconds", *ff.JWKSMaxAge, &f.JWKSMaxAge},
	} {
		if m.sec < 0 || m.sec > int64(maxRecorded/time.Second) {
			return fleet{}, fmt.Errorf("%s %d: want 0 to %d", m.name, m.sec, int64(maxRecorded/time.Second))
		}
		*m.dst = time.Duration(m.sec) * time.Second
	}
	return f, nil
}

// readFleet reads the record; a missing one is the zero fleet, not found.
// Errors are *FileError naming the file. Callers hold a flock.
func (d *Dir) readFleet() (f fleet, found bool, err error) {
	path := filepath.Join(d.path, fleetName)
	data, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fleet{}, false, nil
	}
	if err != nil {
		return fleet{}, false, err
	}
	if f, err = decodeFleet(data); err != nil {
		return fleet{}, false, &FileError{Path: path, Err: fmt.Errorf("%w; remove it, and serving instances record their values again", err)}
	}
	return f, true, nil
}

// tokenTTL is the lifetime a token signed now may have: the largest recorded
// one, or this Dir's own when larger (a caller's flags can only lengthen it).
func (d *Dir) tokenTTL(f fleet) time.Duration { return max(f.AccessTTL, d.opts.AccessTTL) }

// maxAge is how long relying services may cache the JWKS, by the same rule.
func (d *Dir) maxAge(f fleet) time.Duration { return max(f.JWKSMaxAge, d.opts.JWKSMaxAge) }

// promotable is when next may start signing without force.
func (d *Dir) promotable(k *key, f fleet) time.Time {
	return k.meta.Published.Add(d.maxAge(f))
}

// retireDeadline is the deadline written into a key retired at t.
func (d *Dir) retireDeadline(t time.Time, f fleet) time.Time {
	return fromUnix(unixCeil(t.Add(d.tokenTTL(f) + d.opts.RetireMargin)))
}

// deleteAfter is when the last token the retired key k can have signed has
// expired. A key retired before files carried their deadline may have
// signed tokens of any lifetime the issuer allows.
func (d *Dir) deleteAfter(k *key, f fleet) time.Time {
	if !k.meta.DeleteAfter.IsZero() {
		return k.meta.DeleteAfter
	}
	return fromUnix(unixCeil(k.meta.Retired.Add(max(MaxAccessTTL, d.tokenTTL(f)) + d.opts.RetireMargin)))
}
