package wire

// Authentication methods (RFC 8176) a token's "amr" claim may carry.
const (
	AMRPassword = "pwd" // a password
	AMROTP      = "otp" // a one-time code: TOTP or a recovery code
	AMRHardware = "hwk" // a passkey: proof of possession of a hardware-bound key
	// AMRFederated: signed in at an upstream OpenID provider (the token's
	// "idp" claim names it). Not in RFC 8176's registry; Canopy's own value.
	AMRFederated = "fed"
	// AMRMultiFactor: the upstream provider reported several factors
	// (RFC 8176 "mfa"); carried only from a provider configured with trust-amr.
	AMRMultiFactor = "mfa"
)

// AMRMethods lists every method Canopy issues, each with what it means,
// for help and error texts: "pwd (a password), otp (...), ...".
func AMRMethods() string {
	return AMRPassword + " (a password), " + AMROTP + " (a one-time code), " + AMRHardware + " (a passkey), " +
		AMRFederated + " (an upstream identity provider), " + AMRMultiFactor + " (several factors at a trusted provider)"
}

// ValidAMR reports whether m is a method Canopy issues.
func ValidAMR(m string) bool {
	switch m {
	case AMRPassword, AMROTP, AMRHardware, AMRFederated, AMRMultiFactor:
		return true
	}
	return false
}
