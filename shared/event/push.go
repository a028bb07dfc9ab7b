package event

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// MessagePublishedType is the CloudEvents type under which the Functions
// Framework and Eventarc hand a Pub/Sub message to a function.
const MessagePublishedType = "google.cloud.pubsub.topic.v1.messagePublished"

// Message is a Pub/Sub message as a push delivery carries it.
type Message struct {
	// Data is the message payload, base64-decoded.
	Data []byte
	// Attributes are the message attributes; nil when there are none.
	Attributes map[string]string
	// ID is the message id Pub/Sub assigned.
	ID string
	// PublishTime is when Pub/Sub accepted the message; zero if absent.
	PublishTime time.Time
	// OrderingKey is the ordering key; the Functions Framework drops it.
	OrderingKey string
	// Subscription is the push subscription's resource name, if given.
	Subscription string
	// DeliveryAttempt counts deliveries when the subscription has a
	// dead-letter policy; 0 if absent.
	DeliveryAttempt int
}

// ParsePush parses a Pub/Sub push body, which is also the data of a
// messagePublished CloudEvent:
//
//	{"message": {"data": "<base64>", "attributes": {...}, "messageId": "...",
//	  "publishTime": "...", "orderingKey": "..."}, "subscription": "...",
//	  "deliveryAttempt": 1}
//
// The snake_case spellings Eventarc adds (message_id, publish_time,
// ordering_key) are accepted and must agree with the camelCase ones.
// Members ParsePush does not use, such as "@type", are ignored. Every
// error is an Invalid *fault.Error.
func ParsePush(body []byte) (Message, error) {
	m, err := parsePush(body)
	if err != nil {
		err.Op = "event.ParsePush"
		return Message{}, err
	}
	return m, nil
}

func parsePush(body []byte) (Message, *fault.Error) {
	var m Message
	if len(body) > MaxPushBytes {
		return m, fail("push body is %d bytes, limit %d", len(body), MaxPushBytes)
	}
	members, err := readObject(body, MaxAttributes)
	if err != nil {
		return m, fail("push body: %v", err)
	}
	var msg json.RawMessage
	for _, mb := range members {
		if isNull(mb.value) {
			continue
		}
		switch mb.name {
		case "message":
			msg = mb.value
		case "subscription":
			if m.Subscription, err = jsonString(mb.value); err != nil {
				return m, fail("push body: subscription: %v", err)
			}
			if r := textReason(m.Subscription, MaxTextBytes); r != "" {
				return m, fail("push body: subscription %s: %s", quote(m.Subscription), r)
			}
		case "deliveryAttempt":
			s := string(mb.value)
			if !isDigits(s) || len(s) > 9 {
				return m, fail("push body: deliveryAttempt %s: must be a non-negative integer below 10^9", quote(s))
			}
			m.DeliveryAttempt, _ = strconv.Atoi(s)
		}
	}
	if msg == nil {
		return m, fail(`push body: member "message" is missing`)
	}
	fields, err := readObject(msg, MaxAttributes)
	if err != nil {
		return m, fail("push body: message: %v", err)
	}
	strs := map[string]string{}
	for _, mb := range fields {
		if isNull(mb.value) {
			continue
		}
		switch mb.name {
		case "data":
			s, err := jsonString(mb.value)
			if err != nil {
				return m, fail("push body: message.data: %v", err)
			}
			if m.Data, err = base64.StdEncoding.DecodeString(s); err != nil {
				return m, fail("push body: message.data: %v", err)
			}
		case "attributes":
			attrs, err := readObject(mb.value, MaxAttributes)
			if err != nil {
				return m, fail("push body: message.attributes: %v", err)
			}
			m.Attributes = make(map[string]string, len(attrs))
			for _, a := range attrs {
				v, err := jsonString(a.value)
				if err != nil {
					return m, fail("push body: message.attributes[%s]: %v", quote(a.name), err)
				}
				m.Attributes[a.name] = v
			}
		case "messageId", "message_id", "publishTime", "publish_time", "orderingKey", "ordering_key":
			s, err := jsonString(mb.value)
			if err != nil {
				return m, fail("push body: message.%s: %v", mb.name, err)
			}
			strs[mb.name] = s
		}
	}
	var ferr *fault.Error
	pick := func(camel, snake string) string {
		a, okA := strs[camel]
		b, okB := strs[snake]
		if okA && okB && a != b && ferr == nil {
			ferr = fail("push body: message.%s %s and message.%s %s differ", camel, quote(a), snake, quote(b))
		}
		if okA {
			return a
		}
		return b
	}
	m.ID = pick("messageId", "message_id")
	pt := pick("publishTime", "publish_time")
	m.OrderingKey = pick("orderingKey", "ordering_key")
	if ferr != nil {
		return m, ferr
	}
	if m.ID != "" {
		if r := textReason(m.ID, MaxTextBytes); r != "" {
			return m, fail("push body: message.messageId %s: %s", quote(m.ID), r)
		}
	}
	if len(m.OrderingKey) > MaxAttributeValueBytes {
		return m, fail("push body: message.orderingKey is %d bytes, limit %d", len(m.OrderingKey), MaxAttributeValueBytes)
	}
	if pt != "" {
		t, err := time.Parse(time.RFC3339Nano, pt)
		if err != nil {
			return m, fail("push body: message.publishTime %s: must be an RFC 3339 timestamp", quote(pt))
		}
		m.PublishTime = t.UTC()
	}
	return m, nil
}

// DecodePush parses a push body and decodes the event it carries. The
// message is returned whenever the body parses, even if the event is
// invalid, so that it can be dead-lettered with its id and attributes.
func DecodePush(body []byte) (governor.Event, Message, error) {
	m, err := ParsePush(body)
	if err != nil {
		return governor.Event{}, Message{}, err
	}
	ev, err := Decode(m)
	return ev, m, err
}

// DecodeMessagePublished decodes the event carried by a messagePublished
// CloudEvent as the Functions Framework hands it to a function, whether it
// came from Eventarc or was converted from a Pub/Sub push body. Like
// DecodePush it returns the message whenever the envelope parses.
func DecodeMessagePublished(ce cloudevents.Event) (governor.Event, Message, error) {
	const op = "event.DecodeMessagePublished"
	if ce.Type() != MessagePublishedType {
		return governor.Event{}, Message{}, fault.Errorf(fault.Invalid, op, "CloudEvent type %s: want %s", quote(ce.Type()), MessagePublishedType)
	}
	if ct := ce.DataContentType(); ct != "" && jsonMediaReason(ct) != "" {
		return governor.Event{}, Message{}, fault.Errorf(fault.Invalid, op, "CloudEvent datacontenttype %s: %s", quote(ct), jsonMediaReason(ct))
	}
	return DecodePush(ce.Data())
}

// PushBody builds a push body carrying one message, as the Pub/Sub emulator
// posts it to a push endpoint. It is meant for tests and local tools.
func PushBody(data []byte, attrs map[string]string, messageID string) []byte {
	type message struct {
		Data       string            `json:"data,omitempty"`
		Attributes map[string]string `json:"attributes,omitempty"`
		MessageID  string            `json:"messageId,omitempty"`
	}
	body := struct {
		Message message `json:"message"`
	}{message{
		Data:       base64.StdEncoding.EncodeToString(data),
		Attributes: attrs,
		MessageID:  messageID,
	}}
	// Strings and maps of strings always marshal.
	b, _ := json.Marshal(body)
	return b
}
