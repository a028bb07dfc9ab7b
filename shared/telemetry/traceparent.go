package telemetry

import "strings"

// ParseTraceParent parses a W3C Trace Context traceparent value
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>") and returns the
// trace id and the parent span id. ok is false when the value is malformed:
// wrong lengths or separators, hex digits that are not lowercase, an
// all-zero id, or the forbidden version "ff". A version above 00 may carry
// further fields after the flags, as the specification allows.
func ParseTraceParent(tp string) (traceID, spanID string, ok bool) {
	tp = strings.Trim(tp, " \t")
	const size = 55 // 2 + 1 + 32 + 1 + 16 + 1 + 2
	if len(tp) < size {
		return "", "", false
	}
	version := tp[0:2]
	if !isHex(version) || version == "ff" {
		return "", "", false
	}
	if version == "00" && len(tp) != size {
		return "", "", false
	}
	if len(tp) > size && tp[size] != '-' {
		return "", "", false
	}
	if tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return "", "", false
	}
	traceID, spanID, flags := tp[3:35], tp[36:52], tp[53:55]
	if !isHex(traceID) || !isHex(spanID) || !isHex(flags) || allZero(traceID) || allZero(spanID) {
		return "", "", false
	}
	return traceID, spanID, true
}

// isHex reports whether s is made of lowercase hex digits only.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	return strings.Trim(s, "0") == ""
}
