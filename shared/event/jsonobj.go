package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// member is one name/value pair of a JSON object, the value kept as the
// exact bytes of the input.
type member struct {
	name  string
	value json.RawMessage
}

// readObject parses b as exactly one JSON object and returns its members in
// input order. Invalid UTF-8, invalid JSON, a value other than an object,
// duplicate member names and more than limit members are errors.
// encoding/json is used rather than a lenient parser so that every
// accepted input has one meaning.
func readObject(b []byte, limit int) ([]member, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	if !json.Valid(b) {
		return nil, jsonError(b)
	}
	if k := jsonKind(b); k != "object" {
		return nil, fmt.Errorf("must be a JSON object, got %s", k)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	var out []member
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("invalid JSON: member name is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		if seen[name] {
			return nil, fmt.Errorf("duplicate member %s", quote(name))
		}
		if len(out) == limit {
			return nil, fmt.Errorf("more than %d members", limit)
		}
		seen[name] = true
		out = append(out, member{name: name, value: v})
	}
	return out, nil
}

// jsonError explains why b, which json.Valid refused, is not JSON.
func jsonError(b []byte) error {
	var v json.RawMessage
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
	case err != nil:
		return fmt.Errorf("invalid JSON: %v", err)
	}
	return errors.New("invalid JSON")
}

// jsonKind names the kind of the JSON value b starts with.
func jsonKind(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// isNull reports whether v is the JSON literal null.
func isNull(v json.RawMessage) bool { return string(v) == "null" }

// jsonString decodes v, which must be a JSON string.
func jsonString(v json.RawMessage) (string, error) {
	if k := jsonKind(v); k != "string" {
		return "", fmt.Errorf("must be a string, got %s", k)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("invalid string: %v", err)
	}
	return s, nil
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
