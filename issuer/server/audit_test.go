package server

import (
	"testing"

	"github.com/canopy-sso/canopy/issuer/store"
)

// TestDescribeEscapes: what the account page shows of an event never carries
// the user's control or format characters as they are (html/template escapes
// markup, not a bidirectional override or a line separator).
func TestDescribeEscapes(t *testing.T) {
	tests := []struct {
		name string
		e    store.Event
		want string
	}{
		{"passkey name", store.Event{Kind: "passkey_added", Detail: "laptop\u202e\u2028\x1b[2J"}, `Passkey added: laptop\u202e\u2028\x1b[2J`},
		{"plain passkey name", store.Event{Kind: "passkey_added", Detail: "my laptop"}, "Passkey added: my laptop"},
		{"unknown kind", store.Event{Kind: "odd\nkind"}, `odd\nkind`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.e); got != tt.want {
				t.Errorf("describe = %q, want %q", got, tt.want)
			}
		})
	}
}
