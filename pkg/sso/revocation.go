package sso

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sso/canopy/pkg/localhost"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// maxFeedBytes bounds the revocation feed: ten minutes of revocations fit
// many times over, and the issuer caps the second feed well below it.
const maxFeedBytes = 8 << 20

// Revocation poll outcomes passed to RevocationObserver.RevocationPolled.
const (
	PollUpdated     = "updated"
	PollNotModified = "not_modified"
	// PollUnreachable: no answer from the issuer (or a proxy's error page):
	// an outage, during which the last set stays in force.
	PollUnreachable = "unreachable"
	// PollUnreadable: the issuer answered but the feed could not be read
	// whole (too large, malformed, an entry this package cannot apply, or
	// the issuer's overflow flag); see RevocationList.FeedError.
	PollUnreadable = "unreadable"
)

// RevocationObserver, when an Observer also implements it, is told the
// outcome of every poll of the revocation feed.
type RevocationObserver interface {
	RevocationPolled(outcome string)
}

// RevocationOptions configure a RevocationList. Zero values take the defaults.
type RevocationOptions struct {
	// Client fetches the feed; default localhost.Client(10 * time.Second).
	Client *http.Client
	// Interval between polls; default 10s (SPEC.md's --revocation-poll).
	Interval time.Duration
	// Leeway keeps each entry this long past its until, matching the
	// verifier's leeway on exp; zero means DefaultLeeway, NoLeeway none.
	Leeway time.Duration
	// Now is the clock used to forget old entries; default time.Now.
	Now func() time.Time
	// Logger gets poll failures; default slog.Default().
	Logger *slog.Logger
	// UserLevel says the URL serves the second feed (wire.RevocationFeed,
	// discovery's canopy_revocation_v2_uri) rather than the first.
	UserLevel bool
	// OnRevoke, when set, is called after a poll with what it added to the
	// set (never with nothing), from the polling goroutine.
	OnRevoke func(Revocations)
	// Observer, when set, is told every poll's outcome (and, when it
	// implements RevocationStreamObserver, the stream's state).
	Observer RevocationObserver
	// StreamURL, with UserLevel, is the issuer's revocation stream
	// (discovery's canopy_revocation_stream_uri): the list follows it and
	// polls, incrementally, only while it is down. Empty: polling only.
	StreamURL string
	// MaxEntries bounds the set; default DefaultMaxRevocations. Past it the
	// entries that expire first are dropped and FeedError says so (not ready).
	MaxEntries int
}

// DefaultMaxRevocations bounds a RevocationList: at about 60 bytes a
// session entry (BenchmarkRevocationSetMemory), 12 MiB.
const DefaultMaxRevocations = 200_000

// Revocations are the entries a poll added to a RevocationList.
type Revocations struct {
	SIDs  []string          // sessions revoked
	Users []wire.Revocation // user-level entries (see wire.Revocation)
}

// Matches reports whether a token with these claims is revoked by r.
func (r Revocations) Matches(c *Claims) bool {
	if slices.Contains(r.SIDs, c.SessionID) {
		return true
	}
	for _, u := range r.Users {
		if userEntryMatches(u.Subject, u.Before, u.ExceptSID, c) {
			return true
		}
	}
	return false
}

// userEntryMatches is the rule of a user-level entry (claim iat).
func userEntryMatches(sub string, before int64, except string, c *Claims) bool {
	return c.Subject == sub && c.IssuedAt < before && (except == "" || c.SessionID != except)
}

// userEntry is a user-level entry as the set keeps it, under its sub.
type userEntry struct {
	before int64
	except string
	until  int64
}

// revocationSet is one immutable state of the list.
type revocationSet struct {
	sids  map[string]int64       // sid → until (Unix seconds)
	users map[string][]userEntry // sub → entries
}

// RevocationList is the set of revoked sessions, kept from the issuer's
// revocation feed. Each poll merges the feed's window into the set (nothing
// is dropped because it left the window) and keeps every entry until its
// until plus the leeway, when every token it covers has expired anyway.
// When the issuer is unreachable the last set stays in force; when it
// answers with a feed that cannot be read whole, what could be read is
// applied and FeedError says why.
type RevocationList struct {
	url      string
	client   *http.Client
	interval time.Duration
	leeway   time.Duration
	now      func() time.Time
	log      *slog.Logger
	v2       bool
	onRevoke func(Revocations)
	observer RevocationObserver
	stream   string // the stream's URL; "" polls only
	maxSize  int

	set      atomic.Pointer[revocationSet] // copy-on-write
	streamUp atomic.Bool                   // the stream is connected: polls only age the set

	mu          sync.Mutex // serializes polls and stream merges
	etag        string
	cursor      string // the feed's cursor after the last entry merged; "" before a whole read
	capErr      error  // the set is over MaxEntries
	lastErr     error
	feedErr     error
	lastSuccess time.Time
	wg          sync.WaitGroup
}

// NewRevocationList polls feedURL (the discovery document's
// canopy_revocation_v2_uri with opts.UserLevel, else its
// canopy_revocation_uri) at once and then every Interval until ctx ends.
func NewRevocationList(ctx context.Context, feedURL string, opts RevocationOptions) *RevocationList {
	l := &RevocationList{
		url:      feedURL,
		client:   opts.Client,
		interval: opts.Interval,
		leeway:   opts.Leeway,
		now:      opts.Now,
		log:      opts.Logger,
		v2:       opts.UserLevel,
		onRevoke: opts.OnRevoke,
		observer: opts.Observer,
		maxSize:  opts.MaxEntries,
	}
	if opts.UserLevel {
		l.stream = opts.StreamURL
	}
	if l.maxSize <= 0 {
		l.maxSize = DefaultMaxRevocations
	}
	if l.client == nil {
		l.client = localhost.Client(10 * time.Second)
	}
	if l.interval <= 0 {
		l.interval = 10 * time.Second
	}
	switch {
	case l.leeway == 0:
		l.leeway = DefaultLeeway
	case l.leeway < 0:
		l.leeway = 0
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.set.Store(&revocationSet{sids: map[string]int64{}, users: map[string][]userEntry{}})
	l.wg.Add(1)
	go l.run(ctx)
	if l.stream != "" {
		l.wg.Go(func() { l.follow(ctx) })
	}
	return l
}

// Revoked reports whether the session sid is in the set. It takes no lock.
// It knows nothing of user-level entries: RevokedClaims does.
func (l *RevocationList) Revoked(sid string) bool {
	_, ok := l.set.Load().sids[sid]
	return ok
}

// RevokedClaims reports whether a token with these claims is revoked: its
// sid is in the set, or a user-level entry names its sub, it was issued
// before the entry's before and it is not of the session the entry spares.
// It takes no lock.
func (l *RevocationList) RevokedClaims(c *Claims) bool {
	set := l.set.Load()
	if _, ok := set.sids[c.SessionID]; ok {
		return true
	}
	for _, e := range set.users[c.Subject] {
		if userEntryMatches(c.Subject, e.before, e.except, c) {
			return true
		}
	}
	return false
}

// Len returns the number of entries in the set.
func (l *RevocationList) Len() int {
	set := l.set.Load()
	n := len(set.sids)
	for _, es := range set.users {
		n += len(es)
	}
	return n
}

// LastPollError returns the last poll's error, or nil when it succeeded.
func (l *RevocationList) LastPollError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// FeedError returns why the feed could not be read whole while the issuer
// answered (too large, malformed, an entry this package cannot apply, the
// issuer's overflow flag), or nil. Revocations may then be missed: a
// relying service reports itself not ready. An unreachable issuer does not
// set it (nor clear it): that is an outage, and the last set stays in force.
func (l *RevocationList) FeedError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return cmp.Or(l.feedErr, l.capErr)
}

// StreamConnected reports whether the revocation stream is connected.
func (l *RevocationList) StreamConnected() bool { return l.streamUp.Load() }

// LastSuccess returns when a poll last succeeded (zero: never).
func (l *RevocationList) LastSuccess() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSuccess
}

// feedError is a feed the issuer served but that could not be read whole.
type feedError struct{ msg string }

func (e *feedError) Error() string { return e.msg }

// Poll reads the feed now and merges it; tests use it to avoid waiting.
func (l *RevocationList) Poll(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	outcome, err := l.poll(ctx)
	l.lastErr = err
	var fe *feedError
	switch {
	case err == nil:
		l.feedErr = nil
		l.lastSuccess = l.now()
	case errors.As(err, &fe):
		outcome, l.feedErr = PollUnreadable, err
	default:
		outcome = PollUnreachable
		// Entries still age out while the feed is down.
		l.merge(nil, nil)
	}
	if l.observer != nil {
		l.observer.RevocationPolled(outcome)
	}
	return err
}

func (l *RevocationList) poll(ctx context.Context) (string, error) {
	if l.v2 && l.cursor != "" {
		outcome, err := l.pollAfter(ctx)
		var gone *cursorGone
		if !errors.As(err, &gone) {
			return outcome, err
		}
		l.cursor, l.etag = "", "" // read the whole window again
	}
	body, etag, err := l.fetch(ctx, l.url, l.etag)
	if err != nil {
		return "", err
	}
	if body == nil {
		l.merge(nil, nil)
		return PollNotModified, nil
	}
	var sids map[string]int64
	var users map[string][]userEntry
	if l.v2 {
		var cursor string
		sids, users, cursor, _, err = parseRevocationFeed(body)
		if err == nil {
			l.cursor = cursor
		}
	} else {
		sids, err = parseRevokedFeed(body)
	}
	if err != nil {
		err = &feedError{msg: fmt.Sprintf("GET %s: %v", l.url, err)}
	} else {
		// A feed that was not read whole is read again next time.
		l.etag = etag
	}
	l.merge(sids, users)
	return PollUpdated, err
}

// fetch GETs the feed: a nil body with a nil error is a 304. A transport
// error, a 5xx, a proxy's HTML page or a body cut short are outages (plain
// errors); any other answer that is not a readable feed is a *feedError.
func (l *RevocationList) fetch(ctx context.Context, url, ifNoneMatch string) (body []byte, etag string, err error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "application/json")
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && ifNoneMatch != "":
		return nil, ifNoneMatch, nil
	case resp.StatusCode >= 500:
		return nil, "", fmt.Errorf("GET %s: status %s", l.url, resp.Status)
	case resp.StatusCode == http.StatusGone:
		return nil, "", &cursorGone{}
	case resp.StatusCode != http.StatusOK:
		return nil, "", &feedError{msg: fmt.Sprintf("GET %s: status %s", l.url, resp.Status)}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		return nil, "", fmt.Errorf("GET %s: got an HTML page, not JSON", l.url)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxFeedBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: reading body: %w", l.url, err)
	}
	if len(body) > maxFeedBytes {
		return nil, "", &feedError{msg: fmt.Sprintf("GET %s: feed over %d bytes", l.url, maxFeedBytes)}
	}
	return body, resp.Header.Get("ETag"), nil
}

// parseRevokedFeed reads the first feed; entries without a sid are skipped.
func parseRevokedFeed(body []byte) (map[string]int64, error) {
	var feed wire.RevokedFeed
	if err := json.Unmarshal(body, &feed); err != nil {
		return nil, fmt.Errorf("not a revocation feed: %w", err)
	}
	add := make(map[string]int64, len(feed.Revoked))
	for _, r := range feed.Revoked {
		if r.SID != "" && r.Until > add[r.SID] {
			add[r.SID] = r.Until
		}
	}
	return add, nil
}

// parseRevocationFeed reads the second feed. An entry it cannot apply (a
// claim it does not know, neither kind) makes the feed unreadable, but the
// entries it can apply are still returned: revoking what is known beats
// revoking nothing.
// It also returns the feed's cursor and whether more pages follow.
func parseRevocationFeed(body []byte) (map[string]int64, map[string][]userEntry, string, bool, error) {
	var feed struct {
		Revocations *[]wire.Revocation `json:"revocations"`
		Overflow    bool               `json:"overflow"`
		Cursor      string             `json:"cursor"`
		More        bool               `json:"more"`
	}
	if err := json.Unmarshal(body, &feed); err != nil {
		return nil, nil, "", false, fmt.Errorf("not a revocation feed: %w", err)
	}
	if feed.Revocations == nil {
		return nil, nil, "", false, errors.New(`not a revocation feed: no "revocations"`)
	}
	sids, users := map[string]int64{}, map[string][]userEntry{}
	var bad []error
	for i, r := range *feed.Revocations {
		if err := addEntry(sids, users, r); err != nil {
			bad = append(bad, fmt.Errorf("entry %d %w", i, err))
		}
	}
	if feed.Overflow {
		bad = append(bad, errors.New("the issuer marks the feed as over its cap: some revocations are missing"))
	}
	if len(bad) > 3 {
		bad = append(bad[:3], fmt.Errorf("and %d more", len(bad)-3))
	}
	return sids, users, feed.Cursor, feed.More, errors.Join(bad...)
}

// addEntry adds one feed entry to sids or users; an entry this package
// cannot apply is an error that completes "entry N …".
func addEntry(sids map[string]int64, users map[string][]userEntry, r wire.Revocation) error {
	switch {
	case r.SID != "" && r.Subject == "" && r.Claim == "" && r.Before == 0 && r.ExceptSID == "":
		sids[r.SID] = max(sids[r.SID], r.Until)
	case r.SID == "" && r.Subject != "" && r.Claim == wire.ClaimIssuedAt && r.Before > 0:
		users[r.Subject] = addUserEntry(users[r.Subject], userEntry{before: r.Before, except: r.ExceptSID, until: r.Until})
	case r.SID == "" && r.Subject != "" && r.Claim != wire.ClaimIssuedAt:
		return fmt.Errorf("compares claim %q, which this service cannot apply", r.Claim)
	default:
		return errors.New("is neither a session nor a user entry")
	}
	return nil
}

// addUserEntry adds e to es, raising the until of an equal entry.
func addUserEntry(es []userEntry, e userEntry) []userEntry {
	for i := range es {
		if es[i].before == e.before && es[i].except == e.except {
			es[i].until = max(es[i].until, e.until)
			return es
		}
	}
	return append(es, e)
}

// merge installs a new set: the old one plus what a poll read, less
// entries past until + leeway, and tells OnRevoke what is new. The set is
// replaced, never changed, so readers need no lock.
func (l *RevocationList) merge(sids map[string]int64, users map[string][]userEntry) {
	cutoff := l.now().Add(-l.leeway).Unix()
	old := l.set.Load()
	if len(sids) == 0 && len(users) == 0 && !agedOut(old, cutoff) {
		return // an unchanged feed costs no copy
	}
	var added Revocations
	next := &revocationSet{sids: make(map[string]int64, len(old.sids)+len(sids)), users: make(map[string][]userEntry, len(old.users))}
	changed := false
	for sid, until := range old.sids {
		if until >= cutoff {
			next.sids[sid] = until
		} else {
			changed = true
		}
	}
	for sid, until := range sids {
		cur, ok := next.sids[sid]
		if until < cutoff || (ok && until <= cur) {
			continue
		}
		if !ok {
			added.SIDs = append(added.SIDs, sid)
		}
		next.sids[sid], changed = until, true
	}
	for sub, es := range old.users {
		for _, e := range es {
			if e.until >= cutoff {
				next.users[sub] = append(next.users[sub], e)
			} else {
				changed = true
			}
		}
	}
	for sub, es := range users {
		for _, e := range es {
			if e.until < cutoff {
				continue
			}
			before := len(next.users[sub])
			merged := addUserEntry(slices.Clone(next.users[sub]), e)
			if len(merged) > before {
				added.Users = append(added.Users, wire.Revocation{Subject: sub, Claim: wire.ClaimIssuedAt,
					Before: e.before, ExceptSID: e.except, Until: e.until})
			}
			if !slices.Equal(merged, next.users[sub]) {
				next.users[sub], changed = merged, true
			}
		}
	}
	if !changed {
		return
	}
	l.capErr = capSet(next, l.maxSize)
	l.set.Store(next)
	if l.onRevoke != nil && (len(added.SIDs) > 0 || len(added.Users) > 0) {
		l.onRevoke(added)
	}
}

// agedOut reports whether an entry of set is past cutoff.
func agedOut(set *revocationSet, cutoff int64) bool {
	for _, until := range set.sids {
		if until < cutoff {
			return true
		}
	}
	for _, es := range set.users {
		for _, e := range es {
			if e.until < cutoff {
				return true
			}
		}
	}
	return false
}

func (l *RevocationList) run(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		if l.streamUp.Load() {
			// The stream delivers; entries still age out.
			l.mu.Lock()
			l.merge(nil, nil)
			l.mu.Unlock()
		} else if err := l.Poll(ctx); err != nil && ctx.Err() == nil {
			var fe *feedError
			if errors.As(err, &fe) {
				l.log.Error("sso: the issuer's revocation feed cannot be read whole; applying what could be read and reporting not ready", "url", l.url, "err", err)
			} else {
				l.log.Warn("sso: revocation feed poll failed; keeping the last set", "url", l.url, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait blocks until the poller has stopped (after ctx ends).
func (l *RevocationList) wait() { l.wg.Wait() }
