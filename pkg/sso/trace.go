package sso

import "context"

// Tracer, when set (Options.Tracer, Config.Tracer, RemoteOptions.Tracer),
// records a span for every verification and key-set fetch. It is a hook
// rather than an OpenTelemetry dependency: package tracing adapts an
// OpenTelemetry tracer to it, and a service without tracing pays nothing.
type Tracer interface {
	// Start begins a span named name, a child of ctx's span if any.
	Start(ctx context.Context, name string) (context.Context, Span)
}

// Span is one span a Tracer started. Attribute values are never a token,
// key or cookie: only outcomes, reasons and the key set's URL.
type Span interface {
	// SetAttribute records a string, bool or int attribute.
	SetAttribute(key string, value any)
	// End ends the span; a non-nil err marks it failed.
	End(err error)
}

// Span names and attributes the package records.
const (
	SpanVerify        = "canopy.verify"
	SpanKeySetFetch   = "canopy.jwks.fetch"
	AttrVerifyCache   = "canopy.verify.cache"   // "cached" or "cold"
	AttrVerifyOutcome = "canopy.verify.outcome" // "accepted" or Reason(err)
	AttrKeySetURL     = "url.full"
	AttrKeySetOutcome = "canopy.jwks.outcome" // FetchUpdated, FetchNotModified or FetchError
	verifyCached      = "cached"
	verifyCold        = "cold"
	verifyAccepted    = "accepted"
)
