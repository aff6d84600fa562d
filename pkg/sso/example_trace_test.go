package sso_test

import (
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// slogTracer is a Tracer without OpenTelemetry: each span becomes a log
// line with its duration and attributes. An OpenTelemetry adapter has the
// same shape (Start → tracer.Start, SetAttribute → span.SetAttributes).
type slogTracer struct{ log *slog.Logger }

type slogSpan struct {
	log   *slog.Logger
	name  string
	start time.Time
	attrs []any
}

func (t slogTracer) Start(ctx context.Context, name string) (context.Context, sso.Span) {
	return ctx, &slogSpan{log: t.log, name: name, start: time.Now()}
}

func (s *slogSpan) SetAttribute(key string, value any) { s.attrs = append(s.attrs, key, value) }

func (s *slogSpan) End(err error) {
	s.log.Info(s.name, append(s.attrs, "took", time.Since(s.start), "err", err)...)
}

// Every verification and key-set fetch reported as a span: here a log line
// such as `msg=canopy.verify canopy.verify.cache=cached canopy.verify.outcome=accepted`.
func ExampleTracer() {
	client, err := sso.New(context.Background(), sso.Options{
		Issuer: "http://domain.localhost:8080",
		Tracer: slogTracer{log: slog.Default()},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
}
