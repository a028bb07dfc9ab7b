package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Mode is a content mode of the CloudEvents HTTP binding.
type Mode string

// The content modes the API takes.
const (
	ModeBinary     Mode = "binary"
	ModeStructured Mode = "structured"
	ModeBatch      Mode = "batch"
)

// Media types of the structured and batched modes.
const (
	StructuredContentType = event.StructuredContentType
	BatchContentType      = "application/cloudevents-batch+json"
)

// ceHeaderPrefix starts the canonical name of every binary-mode header.
const ceHeaderPrefix = "Ce-"

// modeOf tells the content mode of a request from its headers, as the
// CloudEvents SDK's HTTP binding reads them: a CloudEvents format in
// Content-Type (structured or batch), else a ce-specversion header
// (binary).
func modeOf(h http.Header) (Mode, error) {
	const op = "ingest.mode"
	switch cehttp.NewMessage(h, nil).ReadEncoding() {
	case binding.EncodingBinary:
		return ModeBinary, nil
	case binding.EncodingStructured:
		return ModeStructured, nil
	case binding.EncodingBatch:
		return ModeBatch, nil
	}
	if sv := h.Get("Ce-Specversion"); sv != "" {
		return "", fault.Errorf(fault.Invalid, op, `binary mode: ce-specversion %s: must be "1.0"`, httpjson.Quote(sv))
	}
	return "", fault.Errorf(CodeUnsupportedMediaType, op,
		"Content-Type %s: send one event in binary mode (ce-* headers, Content-Type %s) or structured mode (Content-Type %s), or a batch (Content-Type %s)",
		httpjson.Quote(h.Get("Content-Type")), event.DataContentType, StructuredContentType, BatchContentType)
}

// repeatedHeader returns an Invalid error when a CloudEvents header or
// Content-Type is repeated: the SDK would read the first value only, and
// every accepted request must have one meaning.
func repeatedHeader(h http.Header) error {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if (strings.HasPrefix(k, ceHeaderPrefix) || k == "Content-Type") && len(h[k]) > 1 {
			return fault.Errorf(fault.Invalid, "ingest.decode", "header %s is repeated", httpjson.Quote(k))
		}
	}
	return nil
}

// binaryMessage reads a binary-mode request through the SDK's HTTP
// binding into the Pub/Sub message the binary mode of the Pub/Sub binding
// would carry: ce-* attributes, content-type, the body as data.
func binaryMessage(ctx context.Context, h http.Header, body []byte) (event.Message, error) {
	w := &binaryWriter{attrs: map[string]string{}}
	msg := cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(body)))
	if err := msg.ReadBinary(ctx, w); err != nil {
		return event.Message{}, fault.Errorf(fault.Invalid, "ingest.decode", "binary mode: %s", httpjson.Truncate(err.Error(), 4*httpjson.MaxEcho))
	}
	return event.Message{Data: w.data, Attributes: w.attrs}, nil
}

// binaryWriter collects what the SDK reads of a binary-mode message.
type binaryWriter struct {
	attrs map[string]string
	data  []byte
}

// Start implements binding.BinaryWriter.
func (w *binaryWriter) Start(context.Context) error { return nil }

// End implements binding.BinaryWriter.
func (w *binaryWriter) End(context.Context) error { return nil }

// SetAttribute implements binding.BinaryWriter: datacontenttype becomes
// the content-type attribute, the others ce-<name>.
func (w *binaryWriter) SetAttribute(a spec.Attribute, v any) error {
	s, _ := v.(string)
	if a.Kind() == spec.DataContentType {
		w.attrs["content-type"] = s
		return nil
	}
	w.attrs["ce-"+a.Name()] = s
	return nil
}

// SetExtension implements binding.BinaryWriter.
func (w *binaryWriter) SetExtension(name string, v any) error {
	s, _ := v.(string)
	w.attrs["ce-"+name] = s
	return nil
}

// SetData implements binding.BinaryWriter; the body is already read and
// capped.
func (w *binaryWriter) SetData(r io.Reader) error {
	b, err := io.ReadAll(r)
	w.data = b
	return err
}

// structuredMessage is the Pub/Sub message of a structured-mode request:
// the JSON event as data, Content-Type as content-type, and the ce-*
// headers as ce-* attributes, which the decoder requires to agree with the
// event.
func structuredMessage(h http.Header, body []byte) event.Message {
	attrs := map[string]string{"content-type": h.Get("Content-Type")}
	for k, vs := range h {
		if strings.HasPrefix(k, ceHeaderPrefix) && len(vs) > 0 {
			attrs[strings.ToLower(k)] = vs[0]
		}
	}
	return event.Message{Data: body, Attributes: attrs}
}

// batchMessages splits a batch, a JSON array of structured events, into
// one Pub/Sub message per event, at most max. The body as a whole must be
// valid UTF-8 and exactly one JSON array; each element is decoded on its
// own, so that a bad element refuses that event only.
func batchMessages(h http.Header, body []byte, max int) ([]event.Message, error) {
	const op = "ingest.decode"
	for k := range h {
		if strings.HasPrefix(k, ceHeaderPrefix) {
			return nil, fault.Errorf(fault.Invalid, op, "batch: header %s: ce-* headers do not apply to a batch", httpjson.Quote(k))
		}
	}
	switch {
	case !utf8.Valid(body):
		return nil, fault.Errorf(fault.Invalid, op, "batch: body is not valid UTF-8")
	case !json.Valid(body):
		return nil, fault.Errorf(fault.Invalid, op, "batch: body is not valid JSON (or holds more than one value)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fault.Errorf(fault.Invalid, op, "batch: body must be a JSON array of events")
	}
	var out []event.Message
	for dec.More() {
		if len(out) == max {
			return nil, fault.Errorf(fault.Invalid, op, "batch: more than %d events; send smaller batches", max)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fault.Errorf(fault.Invalid, op, "batch: %s", httpjson.Truncate(err.Error(), 4*httpjson.MaxEcho))
		}
		out = append(out, event.Message{Data: raw, Attributes: map[string]string{"content-type": StructuredContentType}})
	}
	if len(out) == 0 {
		return nil, fault.Errorf(fault.Invalid, op, "batch: no events")
	}
	return out, nil
}
