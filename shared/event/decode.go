package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/strictjson"
)

// Media types of the two content modes.
const (
	// StructuredContentType marks a Pub/Sub message in structured mode.
	StructuredContentType = "application/cloudevents+json"
	// DataContentType is the only accepted datacontenttype.
	DataContentType = "application/json"
)

// Names of the CloudEvents attributes Autonomics reads. In binary mode each
// is carried by the Pub/Sub attribute "ce-" + name.
const (
	attrSpecVersion     = "specversion"
	attrID              = "id"
	attrSource          = "source"
	attrType            = "type"
	attrSubject         = "subject"
	attrTime            = "time"
	attrDataContentType = "datacontenttype"
	attrDataSchema      = "dataschema"
	attrTenant          = "tenantid"
	attrCorrelation     = "correlationid"
	attrCausation       = "causationid"
	attrCascadeDepth    = "cascadedepth"
	attrTraceParent     = "traceparent"
)

// binaryPrefix starts the Pub/Sub attribute names of binary mode.
const binaryPrefix = "ce-"

// contentTypeAttr is the Pub/Sub attribute naming the media type of the
// message data.
const contentTypeAttr = "content-type"

// mode is a content mode of the Pub/Sub protocol binding.
type mode int

const (
	binary mode = iota
	structured
)

// spell returns how an attribute is named on the wire in mode m.
func (m mode) spell(name string) string {
	if m == binary {
		return binaryPrefix + name
	}
	return name
}

func (m mode) String() string {
	if m == binary {
		return "binary mode"
	}
	return "structured mode"
}

// fail returns an Invalid *fault.Error; the public function that
// returns it sets Op.
func fail(format string, args ...any) *fault.Error {
	return fault.Errorf(fault.Invalid, "", format, args...)
}

// Decode decodes the autonomics CloudEvent carried by a Pub/Sub message in
// either content mode and validates it. Every error is an Invalid
// *fault.Error saying what is wrong.
func Decode(m Message) (governor.Event, error) {
	ev, err := decode(m)
	if err != nil {
		err.Op = "event.Decode"
		return governor.Event{}, err
	}
	return ev, nil
}

func decode(m Message) (governor.Event, *fault.Error) {
	attrs, err := normalizeAttributes(m)
	if err != nil {
		return governor.Event{}, err
	}
	ct, hasCT := attrs[contentTypeAttr]
	if hasCT {
		mt, params, perr := mime.ParseMediaType(ct)
		if perr != nil {
			return governor.Event{}, fail("attribute content-type %s: not a media type: %v", quote(ct), perr)
		}
		if strings.HasPrefix(mt, "application/cloudevents") {
			if mt != StructuredContentType {
				return governor.Event{}, fail("attribute content-type %s: unsupported event format, want %s", quote(ct), StructuredContentType)
			}
			if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
				return governor.Event{}, fail("attribute content-type %s: charset must be utf-8", quote(ct))
			}
			members, rerr := readObject(m.Data, MaxAttributes+2)
			if rerr != nil {
				return governor.Event{}, fail("structured mode: event: %v", rerr)
			}
			return decodeStructured(members, attrs)
		}
	}
	for k := range attrs {
		if strings.HasPrefix(k, binaryPrefix) {
			return decodeBinary(m.Data, attrs)
		}
	}
	if !hasCT || jsonMediaReason(ct) == "" {
		if members, rerr := readObject(m.Data, MaxAttributes+2); rerr == nil && hasMember(members, attrSpecVersion) {
			return decodeStructured(members, attrs)
		}
	}
	return governor.Event{}, fail("message carries no CloudEvent: no ce-specversion attribute (binary mode) and data is not a JSON event with specversion (structured mode)")
}

// normalizeAttributes checks the message against the size limits and
// returns its attributes keyed by lower-case name (the binding's attribute
// names are case-insensitive).
func normalizeAttributes(m Message) (map[string]string, *fault.Error) {
	if len(m.Data) > MaxMessageBytes {
		return nil, fail("message data is %d bytes, limit %d", len(m.Data), MaxMessageBytes)
	}
	if len(m.Attributes) > MaxAttributes {
		return nil, fail("message has %d attributes, limit %d", len(m.Attributes), MaxAttributes)
	}
	total := len(m.Data)
	out := make(map[string]string, len(m.Attributes))
	orig := make(map[string]string, len(m.Attributes))
	for _, k := range slices.Sorted(maps.Keys(m.Attributes)) {
		v := m.Attributes[k]
		switch {
		case k == "":
			return nil, fail("attribute with an empty name")
		case len(k) > MaxAttributeNameBytes:
			return nil, fail("attribute name %s: is %d bytes, limit %d", quote(k), len(k), MaxAttributeNameBytes)
		case !utf8.ValidString(k):
			return nil, fail("attribute name %s: invalid UTF-8", quote(k))
		case len(v) > MaxAttributeValueBytes:
			return nil, fail("attribute %s: value is %d bytes, limit %d", quote(k), len(v), MaxAttributeValueBytes)
		case !utf8.ValidString(v):
			return nil, fail("attribute %s: value is invalid UTF-8", quote(k))
		}
		lk := strings.ToLower(k)
		if o, dup := orig[lk]; dup {
			return nil, fail("attributes %s and %s differ only in case", quote(o), quote(k))
		}
		orig[lk] = k
		out[lk] = v
		total += len(k) + len(v)
	}
	if total > MaxMessageBytes {
		return nil, fail("message is %d bytes with attributes, limit %d", total, MaxMessageBytes)
	}
	return out, nil
}

func hasMember(members []member, name string) bool {
	for _, mb := range members {
		if mb.name == name {
			return true
		}
	}
	return false
}

// decodeBinary decodes a binary-mode message: the ce-* attributes are the
// event's attributes and the message data is its data.
func decodeBinary(data []byte, attrs map[string]string) (governor.Event, *fault.Error) {
	fields := make(map[string]string)
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		name, ok := strings.CutPrefix(k, binaryPrefix)
		if !ok {
			continue
		}
		if !validAttrName(name) || name == "data" {
			return governor.Event{}, fail("binary mode: attribute %s: not a CloudEvents attribute name (lowercase letters and digits)", quote(k))
		}
		fields[name] = attrs[k]
	}
	if ct, ok := attrs[contentTypeAttr]; ok {
		if dct, ok := fields[attrDataContentType]; ok && dct != ct {
			return governor.Event{}, fail("binary mode: attributes content-type %s and ce-datacontenttype %s differ", quote(ct), quote(dct))
		}
		fields[attrDataContentType] = ct
	}
	return build(binary, fields, data)
}

// decodeStructured decodes a structured-mode event from the members of its
// JSON object. Pub/Sub attributes named ce-* may repeat event attributes
// and must then agree with them.
func decodeStructured(members []member, attrs map[string]string) (governor.Event, *fault.Error) {
	fields := make(map[string]string)
	var data []byte
	var hasData, hasBase64 bool
	for _, mb := range members {
		if isNull(mb.value) {
			continue
		}
		switch mb.name {
		case "data":
			if k := jsonKind(mb.value); k != "object" {
				return governor.Event{}, fail("structured mode: data must be a JSON object, got %s", k)
			}
			data, hasData = mb.value, true
			continue
		case "data_base64":
			s, err := jsonString(mb.value)
			if err != nil {
				return governor.Event{}, fail("structured mode: data_base64: %v", err)
			}
			d, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return governor.Event{}, fail("structured mode: data_base64: %v", err)
			}
			data, hasBase64 = d, true
			continue
		}
		if !validAttrName(mb.name) {
			return governor.Event{}, fail("structured mode: member %s: not a CloudEvents attribute name (lowercase letters and digits)", quote(mb.name))
		}
		v, err := scalar(mb.name, mb.value)
		if err != nil {
			return governor.Event{}, err
		}
		fields[mb.name] = v
	}
	if hasData && hasBase64 {
		return governor.Event{}, fail("structured mode: data and data_base64 are mutually exclusive")
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		name, ok := strings.CutPrefix(k, binaryPrefix)
		if !ok {
			continue
		}
		v, ok := fields[name]
		if !ok {
			return governor.Event{}, fail("structured mode: attribute %s is not in the event", quote(k))
		}
		if !sameValue(name, attrs[k], v) {
			return governor.Event{}, fail("structured mode: attribute %s %s differs from the event's %s %s", quote(k), quote(attrs[k]), name, quote(v))
		}
	}
	return build(structured, fields, data)
}

// scalar returns the canonical string of a structured-mode attribute
// value. Context attributes and the string extensions must be JSON strings;
// cascadedepth may be a string or an integer; other extensions may be any
// JSON scalar.
func scalar(name string, v json.RawMessage) (string, *fault.Error) {
	k := jsonKind(v)
	if k == "string" {
		s, err := jsonString(v)
		if err != nil {
			return "", fail("structured mode: %s: %v", name, err)
		}
		return s, nil
	}
	switch name {
	case attrSpecVersion, attrID, attrSource, attrType, attrSubject, attrTime,
		attrDataContentType, attrDataSchema, attrTenant, attrCorrelation, attrCausation, attrTraceParent:
		return "", fail("structured mode: %s must be a string, got %s", name, k)
	}
	switch k {
	case "number", "boolean":
		return string(v), nil
	}
	return "", fail("structured mode: %s must be a string, number or boolean, got %s", name, k)
}

// sameValue reports whether a Pub/Sub attribute value equals the event
// attribute it repeats; times compare as instants.
func sameValue(name, attr, field string) bool {
	if attr == field {
		return true
	}
	if name == attrTime {
		a, err1 := time.Parse(time.RFC3339Nano, attr)
		b, err2 := time.Parse(time.RFC3339Nano, field)
		return err1 == nil && err2 == nil && a.Equal(b)
	}
	return false
}

// build validates the attributes and data of an event in either mode and
// returns the governor.Event.
func build(m mode, fields map[string]string, data []byte) (governor.Event, *fault.Error) {
	get := func(name string) (string, *fault.Error) {
		v, ok := fields[name]
		if !ok {
			return "", fail("%s: required attribute %s is missing", m, m.spell(name))
		}
		return v, nil
	}
	var ev governor.Event
	sv, err := get(attrSpecVersion)
	if err != nil {
		return ev, err
	}
	if sv != "1.0" {
		return ev, fail(`specversion %s: must be "1.0"`, quote(sv))
	}
	if ev.ID, err = get(attrID); err != nil {
		return ev, err
	}
	if r := textReason(ev.ID, MaxTextBytes); r != "" {
		return ev, fail("id %s: %s", quote(ev.ID), r)
	}
	if ev.Source, err = get(attrSource); err != nil {
		return ev, err
	}
	if r := sourceReason(ev.Source); r != "" {
		return ev, fail("source %s: %s", quote(ev.Source), r)
	}
	if ev.Type, err = get(attrType); err != nil {
		return ev, err
	}
	var r string
	if ev.Domain, ev.Name, r = parseType(ev.Type); r != "" {
		return ev, fail("type %s: %s", quote(ev.Type), r)
	}
	if ev.Tenant, err = get(attrTenant); err != nil {
		return ev, err
	}
	if r := idReason(ev.Tenant); r != "" {
		return ev, fail("tenantid %s: %s", quote(ev.Tenant), r)
	}
	ev.Subject = governor.DefaultSubject
	if s, ok := fields[attrSubject]; ok {
		if r := subjectReason(s); r != "" {
			return ev, fail("subject %s: %s", quote(s), r)
		}
		ev.Subject = s
	}
	if s, ok := fields[attrTime]; ok {
		t, terr := time.Parse(time.RFC3339Nano, s)
		if terr != nil {
			return ev, fail("time %s: must be an RFC 3339 timestamp", quote(s))
		}
		// An offset can move a year-0000 or year-9999 time out of the
		// range RFC 3339 can express in UTC.
		if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
			return ev, fail("time %s: must be between years 0000 and 9999 in UTC", quote(s))
		}
		ev.Time = t
	}
	if s, ok := fields[attrDataContentType]; ok {
		if r := jsonMediaReason(s); r != "" {
			return ev, fail("datacontenttype %s: %s", quote(s), r)
		}
	}
	if s, ok := fields[attrDataSchema]; ok {
		if u, uerr := url.Parse(s); uerr != nil || !u.IsAbs() || len(s) > MaxAttributeValueBytes {
			return ev, fail("dataschema %s: must be an absolute URI", quote(s))
		}
	}
	for _, a := range []struct {
		name string
		dst  *string
	}{{attrCorrelation, &ev.CorrelationID}, {attrCausation, &ev.CausationID}} {
		if s, ok := fields[a.name]; ok {
			if r := textReason(s, MaxTextBytes); r != "" {
				return ev, fail("%s %s: %s", a.name, quote(s), r)
			}
			*a.dst = s
		}
	}
	if s, ok := fields[attrCascadeDepth]; ok {
		if !isDigits(s) {
			return ev, fail("cascadedepth %s: must be a non-negative integer", quote(s))
		}
		n, perr := strconv.Atoi(s)
		if perr != nil || n > CascadeDepthLimit {
			return ev, fail("cascadedepth %s: must be at most %d", quote(s), CascadeDepthLimit)
		}
		ev.CascadeDepth = n
	}
	if s, ok := fields[attrTraceParent]; ok && validTraceParent(s) {
		ev.TraceParent = s
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		v := fields[name]
		if len(v) > MaxAttributeValueBytes {
			return ev, fail("%s: value is %d bytes, limit %d", name, len(v), MaxAttributeValueBytes)
		}
	}
	d, derr := checkData(data)
	if derr != nil {
		return ev, derr
	}
	ev.Data = d
	return ev, nil
}

// checkData returns the exact bytes of the JSON object data holds, without
// the white space around it, or nil when data is blank. The result is the
// same in both content modes: in structured mode the event's "data" member
// never includes surrounding white space either. It is an error unless data
// is a JSON object of at most MaxDataBytes.
func checkData(data []byte) (json.RawMessage, *fault.Error) {
	data = bytes.Trim(data, " \t\r\n")
	if len(data) == 0 {
		return nil, nil
	}
	switch {
	case len(data) > MaxDataBytes:
		return nil, fail("data is %d bytes, limit %d", len(data), MaxDataBytes)
	case !utf8.Valid(data):
		return nil, fail("data: invalid UTF-8")
	case !json.Valid(data):
		return nil, fail("data: %v", jsonError(data))
	}
	if k := jsonKind(data); k != "object" {
		return nil, fail("data must be a JSON object, got %s", k)
	}
	if err := strictjson.Check(data); err != nil {
		return nil, fail("data: %v", err)
	}
	return json.RawMessage(data), nil
}
