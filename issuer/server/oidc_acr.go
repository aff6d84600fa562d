package server

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/canopy-sso/canopy/issuer/store"
	"github.com/canopy-sso/canopy/pkg/wire"
)

// This file maps acr_values (OIDC Core §3.1.2.1) to rules on the session's
// amr: wire.ACRValues lists the classes, strongest first.

// acrMet reports whether a session signed in with amr meets class acr.
func acrMet(acr string, amr []string) bool {
	switch acr {
	case wire.ACRPhishingResistant:
		return slices.Contains(amr, wire.AMRHardware)
	case wire.ACRMultiFactor:
		return slices.ContainsFunc(amr, func(m string) bool {
			return m == wire.AMROTP || m == wire.AMRHardware || m == wire.AMRMultiFactor
		})
	}
	return false
}

// parseACRValues keeps the classes Canopy knows from an acr_values
// parameter, in the client's order of preference, once each. The
// parameter asks, it does not demand (§3.1.2.1), so an unknown class is
// passed over rather than refused.
func parseACRValues(v string) []string {
	var out []string
	for _, a := range strings.Fields(v) {
		if slices.Contains(wire.ACRValues(), a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// firstACRMet is the first of the requested classes amr meets, "" if none.
func firstACRMet(requested, amr []string) string {
	for _, a := range requested {
		if acrMet(a, amr) {
			return a
		}
	}
	return ""
}

// canStepUp reports whether a fresh sign-in of the user could meet one of
// the classes: the account has a passkey (phr, mfa), an authenticator app
// (mfa) or a provider link (mfa: a provider with trust-amr may report a
// second factor).
func (s *Server) canStepUp(ctx context.Context, userID string, requested []string) (bool, error) {
	keys, err := s.store.Passkeys(ctx, userID)
	if err != nil {
		return false, err
	}
	if len(keys) > 0 {
		return true, nil
	}
	if !slices.Contains(requested, wire.ACRMultiFactor) {
		return false, nil
	}
	if _, err := s.store.TOTP(ctx, userID); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	ids, err := s.store.Identities(ctx, userID)
	return len(ids) > 0, err
}
