package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/strictjson"
)

// MaxEcho bounds how much of a caller's input an error message quotes.
const MaxEcho = 64

// Decode reads one JSON value from r's body into v. The body is capped at
// limit bytes before any decoding (http.MaxBytesReader), must be valid
// UTF-8 and valid JSON, may not repeat a member name in any object, may not
// name fields v does not have, and may not be followed by a second value.
// Every failure is an Invalid *fault.Error whose message quotes at most
// MaxEcho bytes of the input.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	const op = "httpjson.Decode"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			// The *http.MaxBytesError stays in the chain: Error answers 413.
			return &fault.Error{Code: fault.Invalid, Op: op, Message: fmt.Sprintf("request body exceeds %d bytes", limit), Err: errTooLarge{tooBig}}
		}
		return fault.Errorf(fault.Invalid, op, "reading request body: %v", err)
	}
	if err := Unmarshal(body, v); err != nil {
		return fault.Wrap(fault.Invalid, op, err)
	}
	return nil
}

// errTooLarge keeps the *http.MaxBytesError in an error chain without
// repeating its text in the message.
type errTooLarge struct{ e *http.MaxBytesError }

func (e errTooLarge) Error() string { return "body too large" }
func (e errTooLarge) Unwrap() error { return e.e }

// Unmarshal is Decode's check and decoding of a body already read.
func Unmarshal(body []byte, v any) error {
	if err := CheckStrict(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid body: %s", Truncate(err.Error(), 4*MaxEcho))
	}
	return nil
}

// CheckStrict reports an error unless b is exactly one valid JSON value in
// valid UTF-8 in which no object repeats a member name.
func CheckStrict(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("body is not valid UTF-8")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("body is empty")
	}
	if !json.Valid(b) {
		return errors.New("body is not valid JSON (or holds more than one value)")
	}
	return strictjson.Check(b)
}

// Truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Quote quotes s for an error message, truncated to MaxEcho bytes.
func Quote(s string) string { return strconv.Quote(Truncate(s, MaxEcho)) }
