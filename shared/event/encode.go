package event

import (
	"bytes"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// Encode renders ev in binary mode for publishing: the message data is
// ev.Data as is, and the attributes are ce-specversion, ce-id, ce-source,
// ce-type, ce-tenantid, the optional ce-subject, ce-time,
// ce-correlationid, ce-causationid, ce-cascadedepth and ce-traceparent
// when set, and content-type application/json. When ev.Type is empty it is
// derived from ev.Domain and ev.Name. Encode does not validate; Decode of
// its result returns ev for every event Decode can return.
func Encode(ev governor.Event) (data []byte, attrs map[string]string) {
	attrs = map[string]string{
		binaryPrefix + attrSpecVersion: "1.0",
		binaryPrefix + attrID:          ev.ID,
		binaryPrefix + attrSource:      ev.Source,
		binaryPrefix + attrType:        typeOf(ev),
		binaryPrefix + attrTenant:      ev.Tenant,
		contentTypeAttr:                DataContentType,
	}
	opt := func(name, v string) {
		if v != "" {
			attrs[binaryPrefix+name] = v
		}
	}
	opt(attrSubject, ev.Subject)
	if !ev.Time.IsZero() {
		opt(attrTime, ev.Time.UTC().Format(time.RFC3339Nano))
	}
	opt(attrCorrelation, ev.CorrelationID)
	opt(attrCausation, ev.CausationID)
	if ev.CascadeDepth != 0 {
		opt(attrCascadeDepth, strconv.Itoa(ev.CascadeDepth))
	}
	opt(attrTraceParent, ev.TraceParent)
	return ev.Data, attrs
}

// EncodeStructured renders ev as a structured-mode JSON event
// (application/cloudevents+json): the context attributes and extensions,
// and data as the exact bytes of ev.Data. It returns an Invalid error for
// an event Decode would refuse.
func EncodeStructured(ev governor.Event) ([]byte, error) {
	const op = "event.EncodeStructured"
	data, attrs := Encode(ev)
	if _, err := decode(Message{Data: data, Attributes: attrs}); err != nil {
		err.Op = op
		return nil, err
	}
	ce := cloudevents.New(cloudevents.CloudEventsVersionV1)
	ce.SetID(ev.ID)
	ce.SetSource(ev.Source)
	ce.SetType(typeOf(ev))
	if ev.Subject != "" {
		ce.SetSubject(ev.Subject)
	}
	if !ev.Time.IsZero() {
		ce.SetTime(ev.Time.UTC())
	}
	ce.SetExtension(attrTenant, ev.Tenant)
	for name, v := range map[string]string{
		attrCorrelation: ev.CorrelationID,
		attrCausation:   ev.CausationID,
		attrTraceParent: ev.TraceParent,
	} {
		if v != "" {
			ce.SetExtension(name, v)
		}
	}
	if ev.CascadeDepth != 0 {
		ce.SetExtension(attrCascadeDepth, ev.CascadeDepth)
	}
	if len(bytes.TrimSpace(ev.Data)) > 0 {
		ce.SetDataContentType(DataContentType)
		ce.DataEncoded = ev.Data
	}
	if err := ce.Validate(); err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	// MarshalJSON directly: json.Marshal would compact the data and so
	// change the bytes whose digest the receipt records.
	b, err := ce.MarshalJSON()
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	return b, nil
}

// typeOf returns ev.Type, or the type derived from its domain and name.
func typeOf(ev governor.Event) string {
	if ev.Type != "" {
		return ev.Type
	}
	return governor.TypeOf(ev.Domain, ev.Name)
}
