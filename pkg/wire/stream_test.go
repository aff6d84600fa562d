package wire

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestStreamReader reads the stream's events as the format defines them:
// any line ending, comments, multi-line data, an event cut short.
func TestStreamReader(t *testing.T) {
	in := "retry: 1000\r\nevent: ready\r\nid: 6\r\ndata: {}\r\n\r\n: heartbeat\n\n" +
		"event: revocation\rid: 7\rdata: {\"sid\":\"a\",\r\rdata:\n\ndata: x\ndata: y\n\nevent: revocation\nid: 8\ndata: {"
	r := NewStreamReader(strings.NewReader(in))
	beats := 0
	r.OnComment = func() { beats++ }
	want := []StreamEvent{
		{Type: StreamEventReady, ID: "6", Data: "{}"},
		{Type: StreamEventRevocation, ID: "7", Data: `{"sid":"a",`},
		{Type: "message", Data: ""},
		{Type: "message", Data: "x\ny"},
	}
	for i, w := range want {
		got, err := r.Next()
		if err != nil || got != w {
			t.Fatalf("event %d: %+v, %v; want %+v", i, got, err, w)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("an event cut short: %v, want io.ErrUnexpectedEOF", err)
	}
	if beats != 1 {
		t.Errorf("%d heartbeats, want 1", beats)
	}
	if _, err := NewStreamReader(strings.NewReader(strings.Repeat("a", maxStreamLine+1))).Next(); err == nil {
		t.Error("a line over the limit was read")
	}
}

// FuzzStreamReader: any input ends in an error or EOF, without a panic.
func FuzzStreamReader(f *testing.F) {
	f.Add("event: ready\nid: 1\ndata: {}\n\n")
	f.Add(": hb\r\n\r\nid\x00: 2\ndata\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := NewStreamReader(strings.NewReader(in))
		for range len(in) + 2 {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Fatal("more events than input bytes")
	})
}
