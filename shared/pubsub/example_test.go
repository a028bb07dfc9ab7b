package pubsub_test

import (
	"context"
	"log"
	"time"

	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// Example sets up the topics and a pull subscription on the emulator,
// publishes a binary-mode CloudEvent and reads it back.
func Example() {
	// With PUBSUB_EMULATOR_HOST set, the client talks to the emulator.
	ctx := context.Background()
	client, err := ps.NewClient(ctx, "demo-autonomics")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	names := topic.Names{Prefix: "dev-"}
	subs := []pubsub.Subscription{{Name: "dev-receipts-tail", Topic: names.Receipts(), Ordered: true}}
	if err := pubsub.Ensure(ctx, client, "demo-autonomics", names.All(), subs); err != nil {
		log.Fatal(err)
	}

	pub := pubsub.NewPublisher(client, pubsub.PublisherOptions{})
	defer pub.Close()
	err = pub.Publish(ctx, store.Message{
		Topic:       names.Receipts(),
		Data:        []byte(`{"tenant_id":"acme","seq":1}`),
		Attributes:  map[string]string{"ce-type": "autonomics.receipt", "ce-tenantid": "acme"},
		OrderingKey: "acme",
	})
	if err != nil {
		log.Fatal(err)
	}

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = pubsub.Receive(rctx, client, "dev-receipts-tail", func(_ context.Context, m *ps.Message) {
		log.Printf("%s %s", m.Attributes["ce-tenantid"], m.Data)
		m.Ack()
		cancel()
	})
	if err != nil {
		log.Fatal(err)
	}
}
