// Package event decodes and encodes the inbound CloudEvents of the
// governors (the event contract is in the README, "Contracts") and validates them strictly.
//
// # Accepted shapes
//
// A governor function receives a Pub/Sub message in one of two envelopes:
//
//   - a google.cloud.pubsub.topic.v1.messagePublished CloudEvent, from an
//     Eventarc trigger or converted by the Functions Framework from a push
//     request (DecodeMessagePublished);
//   - a raw Pub/Sub push body, {"message": {...}, "subscription": "..."},
//     as a push subscription or the emulator posts it (DecodePush). It is
//     the same JSON as the messagePublished event's data.
//
// ParsePush turns either into a Message. Decode then reads the autonomics
// CloudEvent (spec 1.0) from the message in one of the two content modes of
// the CloudEvents Pub/Sub protocol binding:
//
//   - structured, when the attribute content-type is
//     application/cloudevents+json, or when there is no ce-* attribute, no
//     content-type other than application/json, and the data is a JSON
//     object with a "specversion" member. The data is the JSON event; its
//     "data" member (a JSON object) or "data_base64" member (base64 of a
//     JSON object) is the event data. Pub/Sub attributes named ce-* may
//     repeat event attributes and must then agree with them.
//   - binary, when any attribute is named ce-*: the attributes ce-specversion,
//     ce-id, ce-source, ce-type, ce-tenantid, ce-subject, ce-time,
//     ce-correlationid, ce-causationid, ce-cascadedepth, ce-traceparent are
//     the event's attributes, content-type (or ce-datacontenttype) its
//     datacontenttype, and the message data its data. Attribute names are
//     case-insensitive.
//
// # Rules
//
// specversion must be "1.0"; id, source, type and the extension tenantid
// are required. type is autonomics.<domain>.<event> with a domain of
// governor.Domains and an event name of [a-z0-9_]+, optionally prefixed by
// "timeout."; whether the name belongs to the domain is checked by the
// machine, not here. Tenant ids are 1–128 characters of [A-Za-z0-9._-],
// not "." or "..", not starting with "__" (ValidTenant); subjects obey the
// same rules or are "*" (ValidSubject), and an absent subject is
// governor.DefaultSubject. id, correlationid and causationid are non-blank
// UTF-8 without control characters or surrounding white space. source is a URI-reference in the form
// net/url prints it, so that the (source, id) identity is the same in every
// encoding. time, when present, is RFC 3339. cascadedepth is a
// non-negative integer (in structured mode a string or a JSON integer) of
// at most CascadeDepthLimit. datacontenttype, when present, is
// application/json. data is empty or a JSON object; governor.Event.Data
// holds the exact bytes of the object, without the white space around it,
// so that both content modes yield the same bytes (blank data becomes nil). Unknown extensions are
// accepted and ignored if their names are lowercase letters and digits and
// their values scalars. A traceparent that is not valid W3C trace context
// is ignored, as that specification requires, rather than refused.
//
// JSON is parsed with encoding/json, after checking that the input is
// valid UTF-8 and valid JSON; duplicate member names are refused so that
// every accepted input has one meaning. The CloudEvents SDK's own JSON
// reader is not used for input because it accepts duplicate names and
// trailing bytes and can panic on some malformed events; the SDK is used
// to write structured events and for the messagePublished envelope.
//
// # Limits
//
// A push body is at most MaxPushBytes (512 KiB); a message, data plus
// attributes, at most MaxMessageBytes (256 KiB), with at most
// MaxAttributes (100) attributes of at most 256-byte names and 1024-byte
// values, the Pub/Sub limits; the event data at most MaxDataBytes
// (64 KiB); id, source, type, correlationid and causationid at most
// MaxTextBytes (256 bytes).
//
// # Errors
//
// Every failure is a *fault.Error with code fault.Invalid whose
// message says exactly what is wrong, for example
//
//	event.Decode: tenantid "../x": must match [A-Za-z0-9._-]{1,128}
//
// Values in messages are quoted and cut after 64 bytes. Such an event is
// dead-lettered, never retried. No input makes a function of this package
// panic.
//
// # Encoding
//
// Encode renders an event in binary mode for publishing and
// EncodeStructured in structured mode; Decode reverses both. PushBody wraps
// a message in a push body for tests and local tools.
package event
