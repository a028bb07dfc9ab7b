package main

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// Source is the CloudEvents source of everything the monitor publishes.
const Source = "autonomics/monitor"

// Attributes added to alert messages, for subscription filters.
const (
	AttrFingerprint = "fingerprint"
	AttrSeverity    = "severity"
	AttrPolicy      = "policy"
)

// notifier publishes notifications as binary-mode CloudEvents: alerts to
// the alerts topic, ordered by fingerprint; noisy-neighbour events to the
// multi_tenant internal topic, ordered by tenant. Governors accept events
// of Autonomics itself (such as these, from Source) only from internal
// topics, which only Autonomics may publish to.
type notifier struct {
	pub    engine.Publisher
	topics topic.Names
}

func (n notifier) Publish(ctx context.Context, note alerting.Notification) error {
	m := message(note, n.topics)
	return n.pub.Publish(ctx, m)
}

// message renders a notification as the Pub/Sub message to publish.
func message(note alerting.Notification, topics topic.Names) store.Message {
	ev := governor.Event{
		ID: note.ID, Source: Source, Type: note.Type, Tenant: note.Tenant, Subject: note.Subject,
		Time: note.Time, Data: note.Data,
	}
	if note.Channel == alerting.ChannelMultiTenant {
		ev.Domain = governor.MultiTenant
		ev.Name = governor.EventName(strings.TrimPrefix(note.Type, "autonomics.multi_tenant."))
		data, attrs := event.Encode(ev)
		return store.Message{Topic: topics.Internal(governor.MultiTenant), Data: data, Attributes: attrs, OrderingKey: note.Tenant}
	}
	data, attrs := event.Encode(ev)
	if note.Tenant == "" {
		delete(attrs, "ce-tenantid")
	}
	var d struct {
		Fingerprint string `json:"fingerprint"`
		Severity    string `json:"severity"`
		Policy      string `json:"policy"`
	}
	_ = json.Unmarshal(note.Data, &d)
	for k, v := range map[string]string{AttrFingerprint: d.Fingerprint, AttrSeverity: d.Severity, AttrPolicy: d.Policy} {
		if v != "" {
			attrs[k] = v
		}
	}
	return store.Message{Topic: topics.Alerts(), Data: data, Attributes: attrs, OrderingKey: d.Fingerprint}
}
