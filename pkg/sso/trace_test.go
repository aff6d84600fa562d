package sso

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/canopy-sso/canopy/pkg/internal/ssotest"
)

// recordingTracer keeps every span it was given, ended or not.
type recordingTracer struct {
	mu    sync.Mutex
	spans []*recordedSpan
}

type recordedSpan struct {
	name   string
	parent string // the name of ctx's span
	attrs  map[string]any
	err    error
	ended  bool
}

type spanKey struct{}

func (rt *recordingTracer) Start(ctx context.Context, name string) (context.Context, Span) {
	parent, _ := ctx.Value(spanKey{}).(string)
	s := &recordedSpan{name: name, parent: parent, attrs: map[string]any{}}
	rt.mu.Lock()
	rt.spans = append(rt.spans, s)
	rt.mu.Unlock()
	return context.WithValue(ctx, spanKey{}, name), s
}

func (s *recordedSpan) SetAttribute(k string, v any) { s.attrs[k] = v }
func (s *recordedSpan) End(err error)                { s.err, s.ended = err, true }

// TestTracerSpans: a verification is a span, cold then cached, with its
// outcome; a key-set fetch is a root span; no attribute holds the token.
func TestTracerSpans(t *testing.T) {
	ed := ssotest.NewEdKey(t, "ed1")
	srv := ssotest.NewJWKSServer(t, ed)
	tr := &recordingTracer{}
	ks := NewRemoteKeySet(t.Context(), srv.URL, RemoteOptions{Logger: ssotest.DiscardLogger(), Tracer: tr})
	if err := ks.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, ks, ssotest.NewClock(), func(c *Config) { c.Tracer = tr })
	tok := ed.Mint(t, ssotest.ValidClaims())
	ctx := context.WithValue(context.Background(), spanKey{}, "request")
	for range 2 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Verify(ctx, "a.b"); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	var got []string
	for _, s := range tr.spans {
		if !s.ended {
			t.Errorf("span %s never ended", s.name)
		}
		got = append(got, fmt.Sprintf("%s<%s>%v/%v", s.name, s.parent, s.attrs[AttrVerifyCache], s.attrs[AttrVerifyOutcome]))
		for k, v := range s.attrs {
			if str, _ := v.(string); strings.Contains(str, tok) {
				t.Errorf("span %s attribute %s holds the token", s.name, k)
			}
		}
	}
	want := "canopy.jwks.fetch<><nil>/<nil> canopy.verify<request>cold/accepted canopy.verify<request>cached/accepted canopy.verify<request>cold/malformed"
	if strings.Join(got, " ") != want {
		t.Fatalf("spans\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if f := tr.spans[0]; f.attrs[AttrKeySetOutcome] != FetchUpdated || f.attrs[AttrKeySetURL] != srv.URL || f.err != nil {
		t.Errorf("fetch span %+v", f)
	}
	if last := tr.spans[3]; !errors.Is(last.err, ErrMalformed) {
		t.Errorf("a refused token's span ended with %v", last.err)
	}
}
