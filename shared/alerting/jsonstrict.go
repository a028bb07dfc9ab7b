package alerting

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/autonomics/autonomics/shared/strictjson"
)

// duplicateMember returns an error naming the first member name that an
// object of the JSON value b repeats, at any depth, or nil. b must be
// valid JSON.
func duplicateMember(b []byte) error {
	if err := strictjson.Check(b); err != nil {
		return errors.New(jsonProblem(err))
	}
	return nil
}

// unknownMember returns an error naming the first member of the JSON
// object b whose name is not one of allowed, compared exactly (encoding/json
// matches member names to struct fields regardless of case), or nil. A b
// that is not an object is left to the decoder.
func unknownMember(b []byte, allowed ...string) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil {
		return nil
	}
	for name := range obj {
		known := false
		for _, a := range allowed {
			if name == a {
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("unknown field %s", quoteInput(name))
		}
	}
	return nil
}
