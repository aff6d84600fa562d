package wire

import (
	"bufio"
	"io"
	"strings"
	"time"
)

// The revocation stream (PathRevocationStream) is Server-Sent Events. Each
// revocation is one event of type StreamEventRevocation whose data is a
// Revocation (JSON, one line) and whose id is the feed's cursor after it. On
// connection the issuer first sends a StreamEventReady event (data "{}")
// whose id is the cursor the stream starts from, so that a reader that
// reconnects with Last-Event-ID misses nothing even when no revocation came.
// Comment lines (": …") are heartbeats, sent at least every
// StreamMaxHeartbeat so that proxies do not close an idle connection.
const (
	StreamEventRevocation = "revocation"
	StreamEventReady      = "ready"
	// StreamMaxHeartbeat is the longest gap between two writes on a
	// healthy stream: a reader that hears nothing for longer (with a margin)
	// treats the connection as dead.
	StreamMaxHeartbeat = 15 * time.Second
)

// StreamEvent is one event read from the revocation stream.
type StreamEvent struct {
	Type string // "message" when the event named none
	ID   string // the cursor after it; "" when it carried no id
	Data string
}

// maxStreamLine bounds one line of the stream: an entry is well under 1 KiB.
const maxStreamLine = 16 << 10

// StreamReader reads events from the revocation stream, as the
// Server-Sent Events format (HTML Living Standard, "Interpreting an event
// stream") defines them, for the fields the stream uses. Comments
// (heartbeats) are reported to OnComment.
type StreamReader struct {
	sc *bufio.Scanner
	// OnComment, when set, is called for every comment line (a heartbeat).
	OnComment func()
}

// NewStreamReader reads events from r.
func NewStreamReader(r io.Reader) *StreamReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxStreamLine)
	sc.Split(scanStreamLines)
	return &StreamReader{sc: sc}
}

// Next returns the next event; io.EOF when the stream ended cleanly
// between events, another error when it was cut inside one or a line was
// too long.
func (s *StreamReader) Next() (StreamEvent, error) {
	var (
		ev      StreamEvent
		data    []string
		started bool
	)
	for s.sc.Scan() {
		line := s.sc.Text()
		if line == "" {
			if len(data) == 0 && ev.Type == "" && ev.ID == "" {
				started = false
				continue // nothing to dispatch
			}
			if ev.Type == "" {
				ev.Type = "message"
			}
			ev.Data = strings.Join(data, "\n")
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			if s.OnComment != nil {
				s.OnComment()
			}
			continue
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		}
	}
	if err := s.sc.Err(); err != nil {
		return StreamEvent{}, err
	}
	if started {
		return StreamEvent{}, io.ErrUnexpectedEOF
	}
	return StreamEvent{}, io.EOF
}

// scanStreamLines splits at CRLF, LF or CR, as the format allows.
func scanStreamLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // a CR at the end of the buffer: wait for the next byte
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
