package tracing

import (
	"context"
	"strings"
	"testing"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"blank endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, false},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{"sdk not disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "false"}, true},
		{"no traces exporter", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, false},
		{"service name alone", map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
	} {
		lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		if got := Enabled(lookup); got != tc.want {
			t.Errorf("%s: Enabled = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSetupOff: nil Provider, and its methods are safe to call.
func TestSetupOff(t *testing.T) {
	p, err := Setup(context.Background(), "x", func(string) (string, bool) { return "", false })
	if p != nil || err != nil {
		t.Fatalf("Setup with no variables: %v, %v", p, err)
	}
	if p.Tracer() != nil || p.SSO() != nil || p.Shutdown(context.Background()) != nil || p.Handler(nil, nil) != nil {
		t.Fatal("a nil Provider is not off")
	}
}

func TestSetupRefusesGRPC(t *testing.T) {
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
	_, err := Setup(context.Background(), "x", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), "only http/protobuf") {
		t.Fatalf("grpc: %v", err)
	}
}
