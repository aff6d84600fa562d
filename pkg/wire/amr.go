package wire

// Authentication methods (RFC 8176) a token's "amr" claim may carry.
const (
	AMRPassword = "pwd" // a password
	AMROTP      = "otp" // a one-time code: TOTP or a recovery code
	AMRHardware = "hwk" // a passkey: proof of possession of a hardware-bound key
)

// ValidAMR reports whether m is a method Canopy issues.
func ValidAMR(m string) bool { return m == AMRPassword || m == AMROTP || m == AMRHardware }
