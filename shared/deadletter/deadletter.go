// Package deadletter owns the attributes of the messages Autonomics copies
// to its dead-letter topic: why a message was refused, the error code, the
// component that refused it and the id it had. Every component that
// dead-letters a message builds the copy with New; the console and the CLI
// read a dead letter back with Parse, which also understands the messages
// Pub/Sub itself forwards when a subscription's delivery attempts are
// exhausted.
package deadletter

import (
	"maps"
	"strings"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/store"
)

// Attributes New adds to the original message's. Every name but
// AttrOriginalID starts with AttrPrefix.
const (
	// AttrReason says why the message was refused, at most MaxReason bytes.
	AttrReason = "dead_letter_reason"
	// AttrCode is the fault.Code of the refusal.
	AttrCode = "dead_letter_code"
	// AttrDomain names the component that refused the message: a governor
	// domain, or a name such as "actuator", "marketplace" or "monitor".
	AttrDomain = "dead_letter_domain"
	// AttrTruncated, set by a component that keeps only the head of a
	// message too large to keep whole, holds the number of bytes kept.
	AttrTruncated = "dead_letter_truncated"
	// AttrOriginalID is the Pub/Sub message id the message had, when it
	// had one.
	AttrOriginalID = "original_message_id"
	// AttrPrefix starts every dead-letter attribute but AttrOriginalID.
	AttrPrefix = "dead_letter_"
)

// Attributes Pub/Sub adds to a message it forwards to a dead-letter topic
// when a subscription's delivery attempts are exhausted.
const (
	// AttrPubSubSourceSubscription is the subscription whose attempts
	// were exhausted.
	AttrPubSubSourceSubscription = "CloudPubSubDeadLetterSourceSubscription"
	// PubSubAttrPrefix starts every attribute Pub/Sub adds.
	PubSubAttrPrefix = "CloudPubSubDeadLetter"
)

// DomainPubSub is the Letter.Domain of a message Pub/Sub forwarded itself.
const DomainPubSub = "pubsub"

// MaxReason bounds AttrReason in bytes: a longer reason is cut at a UTF-8
// boundary and ends with "…", within the bound.
const MaxReason = 1024

// ellipsis marks a reason cut to MaxReason.
const ellipsis = "…"

// New returns the copy of m for the dead-letter topic: m's data as is, and
// m's attributes (copied, so the caller may add its own to the result)
// with the reason (at most MaxReason bytes), the code, the refusing
// component's domain and, when m has an id, that id.
func New(topic string, m event.Message, domain string, code fault.Code, reason string) store.Message {
	attrs := make(map[string]string, len(m.Attributes)+4)
	maps.Copy(attrs, m.Attributes)
	attrs[AttrReason] = truncateReason(reason)
	attrs[AttrCode] = string(code)
	attrs[AttrDomain] = domain
	if m.ID != "" {
		attrs[AttrOriginalID] = m.ID
	}
	return store.Message{Topic: topic, Data: m.Data, Attributes: attrs}
}

// truncateReason bounds a reason to MaxReason bytes.
func truncateReason(s string) string {
	if len(s) <= MaxReason {
		return s
	}
	return httpjson.Truncate(s, MaxReason-len(ellipsis))
}

// Letter is what the attributes of a dead-letter message say.
type Letter struct {
	// Reason, Code and Domain are the refusal: for a message Pub/Sub
	// forwarded itself, Domain is DomainPubSub and Reason, unless the
	// message has one, names the subscription.
	Reason string
	Code   fault.Code
	Domain string
	// OriginalID is the message id the message had, if it was recorded.
	OriginalID string
	// Truncated says whether only the head of the message was kept.
	Truncated bool
	// SourceSubscription is the subscription whose delivery attempts
	// Pub/Sub exhausted, when Pub/Sub forwarded the message.
	SourceSubscription string
	// Attributes are the original message's own attributes: those of the
	// dead-letter message without any New or Pub/Sub added. A replay
	// carries these.
	Attributes map[string]string
}

// Parse reads the dead-letter attributes of a message of the dead-letter
// topic. Attributes come from outside and are returned as they are, not
// checked.
func Parse(attrs map[string]string) Letter {
	l := Letter{
		Reason: attrs[AttrReason], Code: fault.Code(attrs[AttrCode]), Domain: attrs[AttrDomain],
		OriginalID: attrs[AttrOriginalID], SourceSubscription: attrs[AttrPubSubSourceSubscription],
		Attributes: make(map[string]string, len(attrs)),
	}
	_, l.Truncated = attrs[AttrTruncated]
	if l.SourceSubscription != "" && l.Domain == "" {
		l.Domain = DomainPubSub
		if l.Reason == "" {
			l.Reason = "delivery attempts exhausted on subscription " + l.SourceSubscription
		}
	}
	for k, v := range attrs {
		if k != AttrOriginalID && !strings.HasPrefix(k, AttrPrefix) && !strings.HasPrefix(k, PubSubAttrPrefix) {
			l.Attributes[k] = v
		}
	}
	return l
}
