package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canopy-sso/canopy/pkg/wire"
)

// streamRetryAfter is the Retry-After of a full stream, in seconds: the
// client polls meanwhile, so nothing is missed while it waits.
const streamRetryAfter = 30

// revocationStream serves wire.PathRevocationStream: every revocation as it
// commits, as Server-Sent Events whose ids are feed cursors. A client that
// sends Last-Event-ID first gets what it missed, from the log.
func (s *Server) revocationStream(c echo.Context) error {
	req := c.Request()
	from, resume := int64(0), false
	if v := req.Header.Get("Last-Event-ID"); v != "" {
		pos, ok := parseCursor(v)
		if !ok {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "invalid_cursor"})
		}
		from, resume = pos, true
	}
	sub, head, err := s.hub.subscribe(clientAddr(c))
	if err != nil {
		c.Response().Header().Set("Retry-After", strconv.Itoa(streamRetryAfter))
		if errors.Is(err, errStreamFull) {
			s.log.Warn("revocation stream full", "ip", c.RealIP(), "open", s.hub.count())
		}
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "stream_unavailable"})
	}
	defer s.hub.unsubscribe(sub)
	if resume && from > head {
		// Ahead of what this instance has fanned out: another instance's
		// commit this one has not read yet, or a cursor of another database.
		if dbHead, err := s.store.RevocationHead(req.Context()); err != nil {
			return err
		} else if from > dbHead {
			return c.JSON(http.StatusGone, map[string]string{"error": "cursor_unknown"})
		}
	}
	if !resume {
		from = head
	}

	rc := http.NewResponseController(c.Response().Writer)
	// The server's read timeout would cancel the request when it fires.
	_ = rc.SetReadDeadline(time.Time{})
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	c.Response().WriteHeader(http.StatusOK)

	w := bufio.NewWriterSize(c.Response(), 512)
	last := from
	// flush writes what is buffered, each write under a fresh deadline, so
	// the server's write timeout does not end a healthy stream and a
	// client that stopped reading does not hold the handler forever.
	flush := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.streamHeartbeat + 10*time.Second)); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	fmt.Fprintf(w, "retry: 1000\nevent: %s\nid: %d\ndata: {}\n\n", wire.StreamEventReady, from)
	if err := flush(); err != nil {
		return nil
	}
	if resume {
		if err := s.streamBacklog(req.Context(), w, flush, &last, head); err != nil {
			return nil // the client went away, or the store failed: it resumes
		}
	}
	s.metrics.StreamOpened()
	defer s.metrics.StreamClosed()
	beat := time.NewTicker(s.streamHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-req.Context().Done():
			return nil
		case <-s.hub.done:
			return nil
		case <-sub.cut:
			return nil
		case <-beat.C:
			w.WriteString(": heartbeat\n\n")
		case events := <-sub.ch:
			for _, e := range events {
				if e.pos > last {
					writeEvent(w, e)
					last = e.pos
				}
			}
		}
		if err := flush(); err != nil {
			return nil
		}
	}
}

// streamBacklog sends what the log holds after *last up to head (what the
// subscription delivers starts after head).
func (s *Server) streamBacklog(ctx context.Context, w *bufio.Writer, flush func() error, last *int64, head int64) error {
	for *last < head {
		list, err := s.store.RevocationsAfter(ctx, *last, hubPage)
		if err != nil {
			s.log.Warn("revocation stream: reading the backlog failed", "err", err)
			return err
		}
		if len(list) == 0 {
			return nil
		}
		for _, l := range list {
			data, _ := json.Marshal(wireRevocation(l))
			writeEvent(w, streamEvent{pos: l.Pos, data: data})
			*last = l.Pos
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

func writeEvent(w *bufio.Writer, e streamEvent) {
	fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", wire.StreamEventRevocation, e.pos, e.data)
}
