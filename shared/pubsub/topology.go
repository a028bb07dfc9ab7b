package pubsub

import (
	"context"
	"strings"
	"time"

	ps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/autonomics/autonomics/shared/fault"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Subscription describes a subscription for Ensure.
//
// The Pub/Sub emulator crashes when it dead-letters a message of an ordered
// subscription: on the emulator, do not set both Ordered and
// DeadLetterTopic.
type Subscription struct {
	// Name is the subscription id.
	Name string
	// Topic is the id of the topic the subscription reads.
	Topic string
	// PushEndpoint is the URL that receives push deliveries; empty makes
	// a pull subscription.
	PushEndpoint string
	// Ordered enables message ordering. It cannot be changed once the
	// subscription exists.
	Ordered bool
	// DeadLetterTopic, when set, is the id of the topic that receives
	// messages after MaxDeliveryAttempts failed deliveries.
	DeadLetterTopic string
	// MaxDeliveryAttempts is 5 to 100; zero means the server default (5).
	MaxDeliveryAttempts int
	// AckDeadline is 10s to 600s; zero means the server default (10s).
	AckDeadline time.Duration
	// MinBackoff and MaxBackoff bound the redelivery delay; when both are
	// zero, failed messages are redelivered immediately.
	MinBackoff, MaxBackoff time.Duration
}

// Ensure creates the topics and then the subscriptions of project that do
// not exist yet. Topic and subscription names are ids; full resource names
// ("projects/<p>/topics/<t>") are accepted too.
//
// Existing resources are kept: Ensure can run at every start. The push
// endpoint of an existing subscription is brought to the one asked for,
// since local ports change between runs; an existing subscription that
// reads another topic, or whose ordering differs, is a fault.Conflict
// (neither can change without recreating it). Other settings of an
// existing subscription are left as they are.
func Ensure(ctx context.Context, client *ps.Client, project string, topics []string, subs []Subscription) error {
	const op = "pubsub.Ensure"
	for _, t := range topics {
		_, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName(project, t)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return wrap(op, err)
		}
	}
	for _, s := range subs {
		if err := ensureSubscription(ctx, client, project, s); err != nil {
			return err
		}
	}
	return nil
}

func ensureSubscription(ctx context.Context, client *ps.Client, project string, s Subscription) error {
	const op = "pubsub.Ensure"
	if s.Name == "" || s.Topic == "" {
		return fault.Errorf(fault.Invalid, op, "subscription %q needs a name and a topic", s.Name)
	}
	want := s.proto(project)
	_, err := client.SubscriptionAdminClient.CreateSubscription(ctx, want)
	if err == nil {
		return nil
	}
	if status.Code(err) != codes.AlreadyExists {
		return wrap(op, err)
	}
	got, err := client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: want.Name})
	if err != nil {
		return wrap(op, err)
	}
	if got.GetTopic() != want.Topic {
		return fault.Errorf(fault.Conflict, op, "subscription %s reads %s, not %s", want.Name, got.GetTopic(), want.Topic)
	}
	if got.GetEnableMessageOrdering() != want.EnableMessageOrdering {
		return fault.Errorf(fault.Conflict, op, "subscription %s has message ordering %v, want %v",
			want.Name, got.GetEnableMessageOrdering(), want.EnableMessageOrdering)
	}
	if got.GetPushConfig().GetPushEndpoint() != s.PushEndpoint {
		err := client.SubscriptionAdminClient.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{
			Subscription: want.Name,
			PushConfig:   want.PushConfig,
		})
		if err != nil {
			return wrap(op, err)
		}
	}
	return nil
}

// proto returns the subscription as the Pub/Sub API describes it.
func (s Subscription) proto(project string) *pubsubpb.Subscription {
	p := &pubsubpb.Subscription{
		Name:                  subscriptionName(project, s.Name),
		Topic:                 topicName(project, s.Topic),
		PushConfig:            &pubsubpb.PushConfig{},
		EnableMessageOrdering: s.Ordered,
		AckDeadlineSeconds:    int32(s.AckDeadline / time.Second),
	}
	if s.PushEndpoint != "" {
		p.PushConfig.PushEndpoint = s.PushEndpoint
	}
	if s.DeadLetterTopic != "" {
		p.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{
			DeadLetterTopic:     topicName(project, s.DeadLetterTopic),
			MaxDeliveryAttempts: int32(s.MaxDeliveryAttempts),
		}
	}
	if s.MinBackoff != 0 || s.MaxBackoff != 0 {
		p.RetryPolicy = &pubsubpb.RetryPolicy{}
		if s.MinBackoff != 0 {
			p.RetryPolicy.MinimumBackoff = durationpb.New(s.MinBackoff)
		}
		if s.MaxBackoff != 0 {
			p.RetryPolicy.MaximumBackoff = durationpb.New(s.MaxBackoff)
		}
	}
	return p
}

func topicName(project, id string) string {
	if strings.HasPrefix(id, "projects/") {
		return id
	}
	return "projects/" + project + "/topics/" + id
}

func subscriptionName(project, id string) string {
	if strings.HasPrefix(id, "projects/") {
		return id
	}
	return "projects/" + project + "/subscriptions/" + id
}

// PausePush turns the push subscriptions among subs into pull ones,
// keeping their backlog, so that Pub/Sub stops delivering to endpoints
// that are going away: the emulator otherwise retries every undelivered
// message against a dead port for as long as it runs, and spends its CPU
// on it. Ensure with the same subscriptions brings their endpoints back,
// and the messages held meanwhile are delivered then. A subscription that
// does not exist is skipped; the other errors are returned, the first of
// them, after every subscription was tried.
func PausePush(ctx context.Context, client *ps.Client, project string, subs []Subscription) error {
	const op = "pubsub.PausePush"
	var first error
	for _, s := range subs {
		if s.PushEndpoint == "" {
			continue
		}
		err := client.SubscriptionAdminClient.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{
			Subscription: subscriptionName(project, s.Name),
			PushConfig:   &pubsubpb.PushConfig{},
		})
		if err != nil && status.Code(err) != codes.NotFound && first == nil {
			first = wrap(op, err)
		}
	}
	return first
}
