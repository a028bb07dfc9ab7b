package pubsub

import (
	"context"
	"errors"
	"sync"
	"time"

	ps "cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/store"
)

// PublisherOptions configure a Publisher. Zero values select the defaults
// of the Pub/Sub client library.
type PublisherOptions struct {
	// DelayThreshold is how long each topic's publisher waits to batch
	// messages before sending them (default 10ms).
	DelayThreshold time.Duration
	// Timeout bounds the sending of one batch, retries included
	// (default 60s).
	Timeout time.Duration
}

// Publisher publishes store.Message values to Pub/Sub topics. It keeps one
// client-library publisher per topic, with message ordering enabled. It is
// safe for concurrent use.
type Publisher struct {
	client *ps.Client
	opts   PublisherOptions

	mu     sync.Mutex
	topics map[string]*ps.Publisher
	closed bool
}

// NewPublisher returns a Publisher that publishes with client.
func NewPublisher(client *ps.Client, opts PublisherOptions) *Publisher {
	return &Publisher{client: client, opts: opts, topics: make(map[string]*ps.Publisher)}
}

// errClosed is returned by Publish after Close.
var errClosed = errors.New("publisher closed")

// Publish publishes m to the topic m.Topic (a topic id, or a full
// "projects/<p>/topics/<t>" name) and returns once the server has
// acknowledged it or ctx is done.
//
// When publishing a message with an ordering key fails, the client library
// pauses that key; Publish resumes it, so that the caller's retry — and
// every later message with that key — is published rather than refused.
func (p *Publisher) Publish(ctx context.Context, m store.Message) error {
	const op = "pubsub.Publish"
	if m.Topic == "" {
		return fault.Errorf(fault.Invalid, op, "message has no topic")
	}
	t, err := p.topic(m.Topic)
	if err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	res := t.Publish(ctx, &ps.Message{
		Data:        m.Data,
		Attributes:  m.Attributes,
		OrderingKey: m.OrderingKey,
	})
	select {
	case <-res.Ready():
	case <-ctx.Done():
		select {
		case <-res.Ready():
			return published(ctx, t, m, res)
		default:
		}
		// The message may still be sent. If it fails later, its key must
		// not stay paused.
		if m.OrderingKey != "" {
			go func() {
				<-res.Ready()
				if _, err := res.Get(context.Background()); err != nil {
					t.ResumePublish(m.OrderingKey)
				}
			}()
		}
		return fault.Wrap(fault.Unavailable, op, ctx.Err())
	}
	return published(ctx, t, m, res)
}

// published returns the outcome of a publish whose result is ready, resuming
// the ordering key on failure.
func published(ctx context.Context, t *ps.Publisher, m store.Message, res *ps.PublishResult) error {
	if _, err := res.Get(ctx); err != nil {
		if m.OrderingKey != "" {
			t.ResumePublish(m.OrderingKey)
		}
		return wrap("pubsub.Publish", err)
	}
	return nil
}

// topic returns the publisher of topic id, creating it on first use.
func (p *Publisher) topic(id string) (*ps.Publisher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if t, ok := p.topics[id]; ok {
		return t, nil
	}
	t := p.client.Publisher(id)
	t.EnableMessageOrdering = true
	if p.opts.DelayThreshold > 0 {
		t.PublishSettings.DelayThreshold = p.opts.DelayThreshold
	}
	if p.opts.Timeout > 0 {
		t.PublishSettings.Timeout = p.opts.Timeout
	}
	p.topics[id] = t
	return t, nil
}

// Close sends the messages still batched, stops every topic's publisher
// and makes later calls to Publish fail. It does not close the client.
func (p *Publisher) Close() {
	p.mu.Lock()
	topics := p.topics
	p.topics = nil
	p.closed = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range topics {
		wg.Go(t.Stop)
	}
	wg.Wait()
}

// wrap maps a Pub/Sub error to a governor error.
func wrap(op string, err error) error {
	switch {
	case errors.Is(err, ps.ErrOversizedMessage):
		return fault.Wrap(fault.Invalid, op, err)
	}
	switch status.Code(err) {
	case codes.NotFound:
		return fault.Wrap(fault.NotFound, op, err)
	case codes.InvalidArgument:
		return fault.Wrap(fault.Invalid, op, err)
	}
	return fault.Wrap(fault.Unavailable, op, err)
}
