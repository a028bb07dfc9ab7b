package pubsub

import (
	"context"

	ps "cloud.google.com/go/pubsub/v2"
)

// Receive pulls messages from the pull subscription with id (or full name)
// subscription and calls fn for each, until ctx is done; it then returns
// nil once the calls in progress have returned. fn must Ack or Nack its
// message. fn is called from several goroutines, except that on an ordered
// subscription the messages of one ordering key are handed over one at a
// time, in order.
//
// Receive is meant for tests, the demo and load tools. It returns an error
// only when Pub/Sub refuses the pull, e.g. fault.NotFound for a missing
// subscription.
func Receive(ctx context.Context, client *ps.Client, subscription string, fn func(context.Context, *ps.Message)) error {
	if err := client.Subscriber(subscription).Receive(ctx, fn); err != nil {
		return wrap("pubsub.Receive", err)
	}
	return nil
}
