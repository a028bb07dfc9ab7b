package signup

import (
	"errors"
	"fmt"
)

// Reason says why a sign-up token was refused.
type Reason string

// Reasons of a refusal.
const (
	// ReasonMissingToken: the request carries no token.
	ReasonMissingToken Reason = "missing_token"
	// ReasonMalformed: the token is not a well-formed JWT of at most
	// MaxTokenBytes, or names a token field twice.
	ReasonMalformed Reason = "malformed"
	// ReasonWrongAlg: the token is not signed with RS256 (none, HS256 and
	// every other algorithm are refused).
	ReasonWrongAlg Reason = "wrong_alg"
	// ReasonMissingKid: the token's header names no key.
	ReasonMissingKid Reason = "missing_kid"
	// ReasonUnknownKid: the issuer publishes no key of the token's kid.
	ReasonUnknownKid Reason = "unknown_kid"
	// ReasonKeyNotValid: the certificate of the token's key is outside its
	// validity window.
	ReasonKeyNotValid Reason = "key_not_valid"
	// ReasonBadSignature: the signature does not verify with the key, for
	// instance because the header or the claims were changed.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonWrongIssuer: iss is not the configured issuer.
	ReasonWrongIssuer Reason = "wrong_issuer"
	// ReasonWrongAudience: aud is not the configured audience.
	ReasonWrongAudience Reason = "wrong_audience"
	// ReasonExpired: exp is past (beyond the clock leeway).
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: iat or nbf is in the future (beyond the leeway).
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonLongLived: exp is more than MaxLifetime after iat.
	ReasonLongLived Reason = "long_lived"
	// ReasonMissingClaim: exp, iat or sub is missing.
	ReasonMissingClaim Reason = "missing_claim"
	// ReasonBadSubject: sub is not a valid Procurement account id.
	ReasonBadSubject Reason = "bad_subject"
	// ReasonKeysUnavailable: the issuer's keys could not be fetched. It
	// is the only reason that is no fault of the token: a retry can
	// succeed.
	ReasonKeysUnavailable Reason = "keys_unavailable"
)

// Error is a refused token: its reason, a message for the caller and the
// underlying cause, if any.
type Error struct {
	Reason  Reason
	Message string
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	return "sign-up token refused: " + string(e.Reason) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same token can verify later: only when
// the keys were unavailable.
func (e *Error) Retryable() bool { return e.Reason == ReasonKeysUnavailable }

// ReasonOf returns the Reason of the first *Error in err's chain, or ""
// when there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// refuse returns an *Error.
func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...)}
}
