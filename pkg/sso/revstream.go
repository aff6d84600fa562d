package sso

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// Reconnection of the revocation stream: full jitter on an exponential
// delay, so relying services do not all come back at once after an issuer
// restart; a connection that stayed up streamStable starts again from
// streamRetryMin. The cap bounds how long after the issuer is back every
// stream is again: under 10 s however long the outage lasted (an 8 s cap
// spreads 1,000 subscribers at about 125 a second; see
// BenchmarkStreamRestart in e2e).
const (
	streamRetryMin = 250 * time.Millisecond
	streamRetryMax = 8 * time.Second
	streamStable   = 30 * time.Second
	// streamSilence: a stream that sends nothing this long (no heartbeat)
	// is taken for dead, as a proxy may hold a connection it no longer feeds.
	streamSilence = wire.StreamMaxHeartbeat + 15*time.Second
	// maxPollPages bounds the pages one incremental poll reads.
	maxPollPages = 50
)

// RevocationStreamObserver, when an Observer also implements it, is told
// when the revocation stream connects and disconnects.
type RevocationStreamObserver interface {
	RevocationStreamConnected(connected bool)
}

// cursorGone: the issuer does not know the cursor (410): read the whole window.
type cursorGone struct{}

func (*cursorGone) Error() string { return "the issuer does not know the feed cursor" }

// pollAfter reads what was committed after the cursor, page by page. It
// runs under l.mu.
func (l *RevocationList) pollAfter(ctx context.Context) (string, error) {
	outcome := PollNotModified
	for range maxPollPages {
		u, err := url.Parse(l.url)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set(wire.QueryAfter, l.cursor)
		u.RawQuery = q.Encode()
		body, _, err := l.fetch(ctx, u.String(), "")
		if err != nil {
			return "", err
		}
		sids, users, cursor, more, err := parseRevocationFeed(body)
		if len(sids) > 0 || len(users) > 0 {
			outcome = PollUpdated
		}
		l.merge(sids, users)
		if err != nil {
			return PollUpdated, &feedError{msg: fmt.Sprintf("GET %s: %v", l.url, err)}
		}
		if cursor != "" {
			l.cursor = cursor
		}
		if !more {
			break
		}
	}
	if outcome == PollNotModified {
		l.merge(nil, nil)
	}
	return outcome, nil
}

// capSet drops the entries of set that expire first until it holds at most
// limit, and says so; nil when it was within the limit.
func capSet(set *revocationSet, limit int) error {
	n := len(set.sids)
	for _, es := range set.users {
		n += len(es)
	}
	if n <= limit {
		return nil
	}
	untils := make([]int64, 0, n)
	for _, u := range set.sids {
		untils = append(untils, u)
	}
	for _, es := range set.users {
		for _, e := range es {
			untils = append(untils, e.until)
		}
	}
	slices.Sort(untils)
	cut := untils[n-limit] // keep entries whose until is at least cut
	for sid, u := range set.sids {
		if u < cut {
			delete(set.sids, sid)
		}
	}
	for sub, es := range set.users {
		es = slices.DeleteFunc(slices.Clone(es), func(e userEntry) bool { return e.until < cut })
		if len(es) == 0 {
			delete(set.users, sub)
		} else {
			set.users[sub] = es
		}
	}
	return fmt.Errorf("sso: %d revocations are more than this service keeps (%d): the soonest to expire were dropped", n, limit)
}

// follow keeps the revocation stream open until ctx ends: it resumes from
// the cursor after every disconnect, with backoff and jitter. While it is
// down, run polls.
func (l *RevocationList) follow(ctx context.Context) {
	delay := streamRetryMin
	for ctx.Err() == nil {
		l.mu.Lock()
		cursor := l.cursor
		l.mu.Unlock()
		if cursor == "" {
			// A stream starts from a whole read of the window.
			_ = l.Poll(ctx)
			l.mu.Lock()
			cursor = l.cursor
			l.mu.Unlock()
		}
		start := time.Now()
		if cursor != "" {
			if err := l.streamOnce(ctx, cursor); err != nil && ctx.Err() == nil {
				l.log.Debug("sso: revocation stream ended; polling until it resumes", "url", l.stream, "err", err)
			}
		}
		if time.Since(start) > streamStable {
			delay = streamRetryMin
		}
		wait := rand.N(delay) + time.Millisecond
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		delay = min(2*delay, streamRetryMax)
	}
}

// streamOnce holds one stream connection, merging each entry as it comes.
func (l *RevocationList) streamOnce(ctx context.Context, cursor string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.stream, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", cursor)
	client := *l.client
	client.Timeout = 0 // the stream lasts; silence is watched instead
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); {
	case resp.StatusCode == http.StatusGone:
		l.mu.Lock()
		if l.cursor == cursor {
			l.cursor, l.etag = "", ""
		}
		l.mu.Unlock()
		return &cursorGone{}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: status %s", l.stream, resp.Status)
	case mt != "text/event-stream":
		return fmt.Errorf("GET %s: content type %q, not an event stream", l.stream, mt)
	}
	silence := time.AfterFunc(streamSilence, cancel)
	defer silence.Stop()
	r := wire.NewStreamReader(resp.Body)
	r.OnComment = func() { silence.Reset(streamSilence) }
	connected := false
	defer func() {
		if connected {
			l.setStreamUp(false)
		}
	}()
	for {
		ev, err := r.Next()
		if err != nil {
			return err
		}
		silence.Reset(streamSilence)
		switch ev.Type {
		case wire.StreamEventReady:
			if !connected {
				connected = true
				l.setStreamUp(true)
			}
		case wire.StreamEventRevocation:
			if err := l.applyStreamed(ev); err != nil {
				return err
			}
		}
	}
}

// applyStreamed merges one streamed entry and moves the cursor past it.
func (l *RevocationList) applyStreamed(ev wire.StreamEvent) error {
	var r wire.Revocation
	sids, users := map[string]int64{}, map[string][]userEntry{}
	err := json.Unmarshal([]byte(ev.Data), &r)
	if err == nil {
		err = addEntry(sids, users, r)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		// Not applied: the cursor stays, and polling (which reports the
		// entry as unreadable) takes over.
		l.feedErr = &feedError{msg: fmt.Sprintf("GET %s: streamed entry %s %v", l.stream, ev.ID, err)}
		return l.feedErr
	}
	l.merge(sids, users)
	l.cursor = cmp.Or(ev.ID, l.cursor)
	return nil
}

func (l *RevocationList) setStreamUp(up bool) {
	l.streamUp.Store(up)
	if o, ok := l.observer.(RevocationStreamObserver); ok {
		o.RevocationStreamConnected(up)
	}
}
