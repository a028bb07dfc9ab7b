// Package strictjson checks that JSON has one meaning: no object repeats a
// member name, at any depth. encoding/json keeps the last of repeated
// members while other parsers keep the first, so a document with
// duplicates can mean one thing to Autonomics and another to a reader of
// its receipts; every entry point refuses such input.
package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// MaxDepth bounds the nesting Check walks.
const MaxDepth = 64

// Check reports an error when b, which must be valid JSON, has an object
// that repeats a member name or nests deeper than MaxDepth. Numbers are not
// converted, so any valid number passes, however large.
func Check(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return checkValue(dec, 0)
}

func checkValue(dec *json.Decoder, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("JSON nested deeper than %d", MaxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return fmt.Errorf("invalid JSON: %v", err)
			}
			name, _ := k.(string)
			if seen[name] {
				if len(name) > 64 {
					name = name[:64]
				}
				return fmt.Errorf("duplicate member %s", strconv.Quote(name))
			}
			seen[name] = true
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}
