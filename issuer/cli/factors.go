package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/canopy-sso/canopy/issuer/store"
)

// resetFactors removes every second factor of u (authenticator app,
// passkeys, recovery codes), for a user who lost them all: their password
// alone signs in again, and they can set up new ones. It returns what it removed.
func resetFactors(ctx context.Context, s store.Store, u store.User) (string, error) {
	removed := 0
	err := s.DisableTOTP(ctx, u.ID)
	switch {
	case err == nil:
		removed++
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	totp := removed == 1
	keys, err := s.Passkeys(ctx, u.ID)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if err := s.RemovePasskey(ctx, u.ID, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	if err := s.ReplaceRecoveryCodes(ctx, u.ID, nil); err != nil {
		return "", err
	}
	app := "no authenticator app"
	if totp {
		app = "the authenticator app"
	}
	return fmt.Sprintf("%s, %d passkey(s) and the recovery codes", app, len(keys)), nil
}
