// Package tracing turns on OpenTelemetry tracing from the standard OTEL_*
// variables, exporting OTLP over HTTP, and adapts it to pkg/sso's Tracer
// hook and to net/http servers.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/canopy-sso/canopy/pkg/sso"
)

// Provider is tracing turned on: an OpenTelemetry tracer exporting OTLP
// over HTTP. A nil *Provider is tracing turned off; its methods are safe.
type Provider struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// Enabled reports whether the OTEL_* variables ask for traces: an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// is set, OTEL_SDK_DISABLED is not true and OTEL_TRACES_EXPORTER is not none.
func Enabled(lookup func(string) (string, bool)) bool {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(get("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup returns a Provider when Enabled, else nil. The exporter reads the
// rest of the standard variables itself (headers, timeout, compression,
// OTEL_TRACES_SAMPLER, OTEL_BSP_*); service is service.name unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names one. Only the
// http/protobuf protocol is built in.
func Setup(ctx context.Context, service string, lookup func(string) (string, bool)) (*Provider, error) {
	if !Enabled(lookup) {
		return nil, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		if v, _ := lookup(k); v != "" && v != "http/protobuf" {
			return nil, fmt.Errorf("tracing: %s=%q: only http/protobuf is supported", k, v)
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// Later detectors win: the variables over the built-in name.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Provider{tp: tp, tracer: tp.Tracer("github.com/canopy-sso/canopy")}, nil
}

// Shutdown exports what is buffered and stops.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// Tracer is the OpenTelemetry tracer; nil when tracing is off.
func (p *Provider) Tracer() trace.Tracer {
	if p == nil {
		return nil
	}
	return p.tracer
}

// SSO adapts the provider to sso.Options.Tracer; nil when tracing is off.
func (p *Provider) SSO() sso.Tracer {
	if p == nil {
		return nil
	}
	return ssoTracer{p.tracer}
}

type ssoTracer struct{ t trace.Tracer }

func (t ssoTracer) Start(ctx context.Context, name string) (context.Context, sso.Span) {
	ctx, s := t.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
	return ctx, ssoSpan{s}
}

type ssoSpan struct{ s trace.Span }

func (s ssoSpan) SetAttribute(key string, value any) {
	switch v := value.(type) {
	case string:
		s.s.SetAttributes(attribute.String(key, v))
	case bool:
		s.s.SetAttributes(attribute.Bool(key, v))
	case int:
		s.s.SetAttributes(attribute.Int(key, v))
	}
}

func (s ssoSpan) End(err error) {
	if err != nil {
		// The sentinel's text only: a wrapped error may quote a header.
		s.s.SetStatus(codes.Error, sso.Reason(err))
	}
	s.s.End()
}

// Handler wraps next in a server span for each request name names (""
// traces nothing), a child of the caller's W3C traceparent. It records the
// method, the name and the status: never a header, a cookie, a query or a
// body.
func (p *Provider) Handler(name func(*http.Request) string, next http.Handler) http.Handler {
	if p == nil {
		return next
	}
	prop := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := name(r)
		if n == "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := p.tracer.Start(ctx, n, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
