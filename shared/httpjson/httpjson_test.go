package httpjson

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
)

func TestError(t *testing.T) {
	tests := []struct {
		err     error
		status  int
		code    string
		message string
	}{
		{fault.Errorf(fault.Invalid, "op", "bad tenant"), 400, "invalid", "bad tenant"},
		{fault.Errorf(fault.NotFound, "op", "no receipt"), 404, "not_found", "no receipt"},
		{fault.Errorf(fault.Conflict, "op", "lease held"), 409, "conflict", "lease held"},
		{fault.Wrap(fault.Unavailable, "op", errors.New("down")), 503, "unavailable", "op: down"},
		{errors.New("secret detail"), 500, "internal", "internal error"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		Error(rec, tt.err)
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tt.status || body.Error.Code != tt.code || body.Error.Message != tt.message {
			t.Errorf("Error(%v) = %d %+v, want %d %s %q", tt.err, rec.Code, body.Error, tt.status, tt.code, tt.message)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
}
