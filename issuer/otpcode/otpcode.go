// Package otpcode checks one-time codes: TOTP codes from an authenticator
// app (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of skew) and
// single-use recovery codes.
package otpcode

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/skip2/go-qrcode"
)

// The TOTP parameters every authenticator app supports.
const (
	Period = 30 * time.Second
	Digits = 6
	// Skew is how many steps before and after the current one are accepted,
	// for clocks a little apart and codes typed as they change.
	Skew = 1
)

var opts = totp.ValidateOpts{Period: uint(Period / time.Second), Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Errors of Check.
var (
	// ErrMalformed: the input is not six ASCII digits (spaces aside).
	ErrMalformed = errors.New("otpcode: not a 6-digit code")
	// ErrWrong: the code matches no step in the accepted window.
	ErrWrong = errors.New("otpcode: wrong code")
	// ErrUsed: the code matches a step no later than the last one used.
	ErrUsed = errors.New("otpcode: code already used")
)

// Key is a new TOTP secret with what an authenticator app needs to add it.
type Key struct {
	Secret string // base32, no padding: what a person types into the app
	URL    string // otpauth://totp/… for the QR code
}

// NewKey makes a random 160-bit secret for account at issuer (the names the
// authenticator app shows).
func NewKey(issuer, account string) (Key, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: opts.Period,
		SecretSize: 20, Digits: opts.Digits, Algorithm: opts.Algorithm})
	if err != nil {
		return Key{}, fmt.Errorf("otpcode: new key: %w", err)
	}
	return Key{Secret: k.Secret(), URL: k.URL()}, nil
}

// Step is the time step of t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code returns the code of secret for step (for tests and enrolment checks).
func Code(secret string, step int64) (string, error) {
	return totp.GenerateCodeCustom(secret, time.Unix(step*int64(Period/time.Second), 0), opts)
}

// Normalize returns the six digits of a code as typed: ASCII spaces (an app
// shows "123 456") are dropped; anything else but ASCII digits, such as
// other scripts' digits, makes it malformed.
func Normalize(input string) (string, bool) {
	code := strings.ReplaceAll(input, " ", "")
	if len(code) != Digits {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}

// Check checks input against secret at now, accepting the current step and
// Skew steps either side, but only steps after lastStep. It returns the step
// that matched, which the caller must record (store.UseTOTPStep) so that the
// code works once.
func Check(secret, input string, now time.Time, lastStep int64) (int64, error) {
	code, ok := Normalize(input)
	if !ok {
		return 0, ErrMalformed
	}
	cur := Step(now)
	matched, used := int64(-1), false
	// Every candidate is computed and compared, so the time taken does not
	// depend on which step matched.
	for step := cur - Skew; step <= cur+Skew; step++ {
		want, err := Code(secret, step)
		if err != nil {
			return 0, fmt.Errorf("otpcode: %w", err)
		}
		switch {
		case subtle.ConstantTimeCompare([]byte(code), []byte(want)) != 1:
		case step > lastStep:
			matched = max(matched, step)
		default:
			used = true
		}
	}
	switch {
	case matched >= 0:
		return matched, nil
	case used:
		return 0, ErrUsed
	}
	return 0, ErrWrong
}

// QRDataURI renders url as a PNG QR code in a data: URI, for an <img> the
// issuer's CSP allows (img-src 'self' data:).
func QRDataURI(url string) (template.URL, error) {
	png, err := qrcode.Encode(url, qrcode.Medium, 256)
	if err != nil {
		return "", fmt.Errorf("otpcode: QR code: %w", err)
	}
	// The data is a PNG made here, never user input: safe as a URL.
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
}

// Recovery codes: RecoveryCount codes of 10 base32 characters (50 bits),
// shown as "abcde-fghij".
const (
	RecoveryCount = 10
	recoveryLen   = 10
)

var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewRecoveryCodes returns RecoveryCount fresh codes as shown to the user
// and their hashes as stored.
func NewRecoveryCodes() (codes, hashes []string) {
	for range RecoveryCount {
		b := make([]byte, 7)
		_, _ = rand.Read(b) // never fails since Go 1.24
		raw := recoveryEncoding.EncodeToString(b)[:recoveryLen]
		codes = append(codes, raw[:5]+"-"+raw[5:])
		hashes = append(hashes, HashRecovery(raw))
	}
	return codes, hashes
}

// NormalizeRecovery returns a recovery code as stored from one as typed:
// case, spaces and hyphens do not matter.
func NormalizeRecovery(input string) (string, bool) {
	var b bytes.Buffer
	for _, r := range strings.ToLower(input) {
		switch {
		case r == ' ' || r == '-':
		case r >= 'a' && r <= 'z', r >= '2' && r <= '7':
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != recoveryLen {
		return "", false
	}
	return b.String(), true
}

// HashRecovery is the stored form of a normalized recovery code: its
// SHA-256 in hex. The codes carry 50 random bits and guessing is
// throttled, so an unsalted fast hash is enough.
func HashRecovery(normalized string) string {
	sum := sha256.Sum256([]byte("canopy recovery code\x00" + normalized))
	return hex.EncodeToString(sum[:])
}
