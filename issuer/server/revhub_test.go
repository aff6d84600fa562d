package server

import (
	"log/slog"
	"testing"
)

// TestRevHubCutsSlowSubscriber: a subscriber that stops reading is cut off
// once its buffer is full (it resumes from its cursor), its slot is freed,
// and the others keep receiving: one slow reader never blocks the fan-out.
func TestRevHubCutsSlowSubscriber(t *testing.T) {
	h := newRevHub(nil, slog.New(slog.DiscardHandler), 10, 10)
	h.started = true
	slow, _, err := h.subscribe("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	fast, _, err := h.subscribe("192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	for i := range subscriberBuffer + 1 {
		h.publish([]streamEvent{{pos: int64(i + 1), data: []byte(`{}`)}}, int64(i+1))
		<-fast.ch
	}
	select {
	case <-slow.cut:
	default:
		t.Fatal("a subscriber that read nothing was not cut off")
	}
	if n := h.count(); n != 1 {
		t.Errorf("%d subscribers after the cut, want the reading one alone", n)
	}
	select {
	case <-fast.cut:
		t.Error("the subscriber that kept reading was cut off")
	default:
	}
	h.unsubscribe(slow) // after the cut: a no-op
	h.unsubscribe(fast)
	if n := h.count(); n != 0 || len(h.perAddr) != 0 {
		t.Errorf("after both left: %d subscribers, per-address counts %v", n, h.perAddr)
	}
}
