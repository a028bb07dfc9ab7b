// Package fault is the typed error of Autonomics: a Code that transports
// map to an HTTP status or a retry decision without reading messages, the
// operation that failed, and a message fit for a log line or an API
// response. Invalid, NotFound and Conflict errors are never retried;
// Unavailable and Internal ones are.
package fault

import (
	"errors"
	"fmt"
)

// Code classifies an error so that transports can map it to an HTTP status
// or to a retry decision without inspecting messages.
type Code string

// Error codes used across Autonomics.
const (
	// Invalid marks malformed or hostile input. It is never retried.
	Invalid Code = "invalid"
	// NotFound marks a missing resource.
	NotFound Code = "not_found"
	// Conflict marks a request that contradicts stored state.
	Conflict Code = "conflict"
	// Unavailable marks a transient fault; the operation may be retried.
	Unavailable Code = "unavailable"
	// Internal marks a bug or an unexpected state.
	Internal Code = "internal"
)

// Error is the typed error of Autonomics: a code, the operation that failed
// and a message fit for a log line or an API response.
type Error struct {
	Code    Code
	Op      string
	Message string
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	msg := e.Message
	if e.Err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += e.Err.Error()
	}
	if e.Op != "" {
		return e.Op + ": " + msg
	}
	return msg
}

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code, operation and formatted message.
func Errorf(code Code, op, format string, args ...any) *Error {
	return &Error{Code: code, Op: op, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code and operation wrapping err.
// It returns nil when err is nil.
func Wrap(code Code, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Op: op, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal for
// any other non-nil error and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Code == "" && e.Err != nil {
			return ErrorCode(e.Err)
		}
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// err.Error() for other errors.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Message != "" {
			return e.Message
		}
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// IsRetryable reports whether err is transient: an Unavailable or Internal
// error is retried, an Invalid, NotFound or Conflict error is not.
func IsRetryable(err error) bool {
	switch ErrorCode(err) {
	case Invalid, NotFound, Conflict, "":
		return false
	}
	return true
}
