package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/store"
)

// waitLimit bounds how long a test waits for deliveries before failing;
// it is a safety net, not a performance assertion.
const waitLimit = 60 * time.Second

// emulator returns a client of the Pub/Sub emulator and its project, or
// skips the test when PUBSUB_EMULATOR_HOST is not set.
func emulator(t *testing.T) (*ps.Client, string) {
	t.Helper()
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("PUBSUB_EMULATOR_HOST not set: start the emulator (gcloud beta emulators pubsub start --host-port=127.0.0.1:8086) and export PUBSUB_EMULATOR_HOST=127.0.0.1:8086")
	}
	project := os.Getenv("PUBSUB_PROJECT_ID")
	if project == "" {
		project = "demo-autonomics"
	}
	client, err := ps.NewClient(context.Background(), project)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client, project
}

// unique returns a resource id unique to this run.
func unique(t *testing.T, base string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	return fmt.Sprintf("t-%s-%s-%s", name, base, hex.EncodeToString(b[:]))
}

// collect pulls and acks messages from sub until it has n of them.
func collect(t *testing.T, client *ps.Client, sub string, n int) []*ps.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var (
		mu  sync.Mutex
		got []*ps.Message
	)
	err := Receive(ctx, client, sub, func(_ context.Context, m *ps.Message) {
		mu.Lock()
		got = append(got, m)
		if len(got) >= n {
			cancel()
		}
		mu.Unlock()
		m.Ack()
	})
	if err != nil {
		t.Fatalf("Receive(%s): %v", sub, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < n {
		t.Fatalf("Receive(%s) got %d messages in %v, want %d", sub, len(got), waitLimit, n)
	}
	return got
}

func getSubscription(t *testing.T, client *ps.Client, project, id string) *pubsubpb.Subscription {
	t.Helper()
	s, err := client.SubscriptionAdminClient.GetSubscription(context.Background(),
		&pubsubpb.GetSubscriptionRequest{Subscription: subscriptionName(project, id)})
	if err != nil {
		t.Fatalf("GetSubscription(%s): %v", id, err)
	}
	return s
}

func TestEnsureIdempotent(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic, dead := unique(t, "events"), unique(t, "dead")
	subs := []Subscription{
		{Name: unique(t, "ordered"), Topic: topic, Ordered: true, AckDeadline: 30 * time.Second},
		{Name: unique(t, "dl"), Topic: topic, DeadLetterTopic: dead, MaxDeliveryAttempts: 5,
			MinBackoff: time.Second, MaxBackoff: 10 * time.Second},
		{Name: unique(t, "push"), Topic: topic, PushEndpoint: "http://127.0.0.1:1/push"},
	}
	for i := range 2 {
		if err := Ensure(ctx, client, project, []string{topic, dead}, subs); err != nil {
			t.Fatalf("Ensure #%d: %v", i+1, err)
		}
	}
	for _, s := range subs {
		got := getSubscription(t, client, project, s.Name)
		if got.GetTopic() != topicName(project, s.Topic) {
			t.Errorf("subscription %s topic = %q, want %q", s.Name, got.GetTopic(), topicName(project, s.Topic))
		}
		if got.GetEnableMessageOrdering() != s.Ordered {
			t.Errorf("subscription %s ordering = %v, want %v", s.Name, got.GetEnableMessageOrdering(), s.Ordered)
		}
		if got.GetPushConfig().GetPushEndpoint() != s.PushEndpoint {
			t.Errorf("subscription %s push endpoint = %q, want %q", s.Name, got.GetPushConfig().GetPushEndpoint(), s.PushEndpoint)
		}
		wantDL := ""
		if s.DeadLetterTopic != "" {
			wantDL = topicName(project, s.DeadLetterTopic)
		}
		if got.GetDeadLetterPolicy().GetDeadLetterTopic() != wantDL {
			t.Errorf("subscription %s dead-letter topic = %q, want %q", s.Name, got.GetDeadLetterPolicy().GetDeadLetterTopic(), wantDL)
		}
		if s.AckDeadline != 0 && got.GetAckDeadlineSeconds() != int32(s.AckDeadline/time.Second) {
			t.Errorf("subscription %s ack deadline = %ds, want %v", s.Name, got.GetAckDeadlineSeconds(), s.AckDeadline)
		}
	}
}

func TestEnsureConflict(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic, other := unique(t, "a"), unique(t, "b")
	name := unique(t, "sub")
	if err := Ensure(ctx, client, project, []string{topic, other}, []Subscription{{Name: name, Topic: topic, Ordered: true}}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	tests := []struct {
		name string
		sub  Subscription
		want fault.Code
	}{
		{"same", Subscription{Name: name, Topic: topic, Ordered: true}, ""},
		{"other topic", Subscription{Name: name, Topic: other, Ordered: true}, fault.Conflict},
		{"ordering changed", Subscription{Name: name, Topic: topic}, fault.Conflict},
		{"no name", Subscription{Topic: topic}, fault.Invalid},
		{"missing topic", Subscription{Name: unique(t, "orphan"), Topic: unique(t, "missing")}, fault.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Ensure(ctx, client, project, nil, []Subscription{tt.sub})
			if got := fault.ErrorCode(err); got != tt.want {
				t.Errorf("Ensure(%+v) = %v (code %q), want code %q", tt.sub, err, got, tt.want)
			}
		})
	}
}

func TestEnsurePushEndpoint(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic, name := unique(t, "events"), unique(t, "push")
	// Each step ensures the subscription with an endpoint and reads it back.
	for _, endpoint := range []string{"http://127.0.0.1:1/a", "http://127.0.0.1:1/a", "http://127.0.0.1:2/b", ""} {
		sub := Subscription{Name: name, Topic: topic, PushEndpoint: endpoint}
		if err := Ensure(ctx, client, project, []string{topic}, []Subscription{sub}); err != nil {
			t.Fatalf("Ensure(endpoint %q): %v", endpoint, err)
		}
		if got := getSubscription(t, client, project, name).GetPushConfig().GetPushEndpoint(); got != endpoint {
			t.Errorf("after Ensure(endpoint %q), push endpoint = %q", endpoint, got)
		}
	}
}

func TestPausePushStopsDeliveriesToAGoneEndpointAndKeepsTheBacklog(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	// The endpoint refuses every delivery until it is told to accept,
	// as a stopped service's port would.
	var (
		pushes atomic.Int64
		accept atomic.Bool
		got    = make(chan struct{}, 1)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pushes.Add(1)
		if !accept.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		select {
		case got <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	topic := unique(t, "events")
	sub := Subscription{Name: unique(t, "push"), Topic: topic, PushEndpoint: srv.URL,
		MinBackoff: 2 * time.Second, MaxBackoff: 2 * time.Second}
	if err := Ensure(ctx, client, project, []string{topic}, []Subscription{sub}); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(client, PublisherOptions{})
	defer p.Close()
	if err := p.Publish(ctx, store.Message{Topic: topic, Data: []byte("held")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a first, refused delivery", func() bool { return pushes.Load() > 0 })

	missing := Subscription{Name: unique(t, "missing"), Topic: topic, PushEndpoint: srv.URL}
	pull := Subscription{Name: unique(t, "pull"), Topic: topic}
	if err := PausePush(ctx, client, project, []Subscription{sub, missing, pull}); err != nil {
		t.Fatalf("PausePush: %v", err)
	}
	if e := getSubscription(t, client, project, sub.Name).GetPushConfig().GetPushEndpoint(); e != "" {
		t.Fatalf("after PausePush the push endpoint is %q, want none", e)
	}
	// Past the retry backoff, a push subscription would have delivered
	// again; a paused one does not.
	before := pushes.Load()
	time.Sleep(5 * time.Second)
	if n := pushes.Load() - before; n != 0 {
		t.Errorf("%d deliveries after PausePush, want 0", n)
	}

	accept.Store(true)
	if err := Ensure(ctx, client, project, nil, []Subscription{sub}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(waitLimit):
		t.Fatalf("the message held while paused was not delivered within %v of Ensure", waitLimit)
	}
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPublishOrdered(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic, sub := unique(t, "events"), unique(t, "ordered")
	if err := Ensure(ctx, client, project, []string{topic}, []Subscription{{Name: sub, Topic: topic, Ordered: true}}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	p := NewPublisher(client, PublisherOptions{})
	defer p.Close()
	const perKey = 30
	keys := []string{"tenant-a", "tenant-b", "tenant-c"}
	for i := range perKey {
		for _, k := range keys {
			m := store.Message{Topic: topic, Data: fmt.Appendf(nil, "%d", i), OrderingKey: k}
			if err := p.Publish(ctx, m); err != nil {
				t.Fatalf("Publish(%s #%d): %v", k, i, err)
			}
		}
	}
	// Record the order of deliveries per key; deliveries of one key are
	// serialised by the ordered subscription.
	got := make(map[string][]string)
	for _, m := range collect(t, client, sub, perKey*len(keys)) {
		got[m.OrderingKey] = append(got[m.OrderingKey], string(m.Data))
	}
	for _, k := range keys {
		want := make([]string, perKey)
		for i := range want {
			want[i] = fmt.Sprint(i)
		}
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("key %s received %v, want %v", k, got[k], want)
		}
	}
}

func TestPublishRoundTrip(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic, sub := unique(t, "events"), unique(t, "pull")
	if err := Ensure(ctx, client, project, []string{topic}, []Subscription{{Name: sub, Topic: topic}}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	tests := []store.Message{
		{Data: []byte(`{"specversion":"1.0","id":"e1"}`), Attributes: map[string]string{"content-type": "application/cloudevents+json"}},
		{Data: []byte(`{"plan":"pro"}`), OrderingKey: "acme", Attributes: map[string]string{
			"ce-specversion": "1.0", "ce-id": "e2", "ce-source": "test", "ce-type": "autonomics.billing.opened", "ce-tenantid": "acme",
		}},
		{Data: []byte{0, 1, 2, 0xff, 0xfe}},
		{Attributes: map[string]string{"only": "attributes", "unicode": "Grüße ✓"}},
	}
	p := NewPublisher(client, PublisherOptions{})
	defer p.Close()
	for i := range tests {
		tests[i].Topic = topic
		if tests[i].Attributes == nil {
			tests[i].Attributes = map[string]string{}
		}
		tests[i].Attributes["test-index"] = fmt.Sprint(i)
		if err := p.Publish(ctx, tests[i]); err != nil {
			t.Fatalf("Publish(%+v): %v", tests[i], err)
		}
	}
	received := make(map[string]*ps.Message)
	for _, m := range collect(t, client, sub, len(tests)) {
		received[m.Attributes["test-index"]] = m
	}
	for i, want := range tests {
		m, ok := received[fmt.Sprint(i)]
		if !ok {
			t.Errorf("message %d not received", i)
			continue
		}
		if string(m.Data) != string(want.Data) {
			t.Errorf("message %d data = %q, want %q", i, m.Data, want.Data)
		}
		if !reflect.DeepEqual(m.Attributes, want.Attributes) {
			t.Errorf("message %d attributes = %v, want %v", i, m.Attributes, want.Attributes)
		}
		if m.OrderingKey != want.OrderingKey {
			t.Errorf("message %d ordering key = %q, want %q", i, m.OrderingKey, want.OrderingKey)
		}
	}
}

func TestPublishMissingTopic(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic := unique(t, "missing")
	p := NewPublisher(client, PublisherOptions{})
	defer p.Close()
	tests := []struct {
		name string
		key  string
	}{
		{"no ordering key", ""},
		{"ordering key", "acme"},
		{"ordering key again", "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Publish(ctx, store.Message{Topic: topic, Data: []byte("x"), OrderingKey: tt.key})
			if got := fault.ErrorCode(err); got != fault.NotFound {
				t.Errorf("Publish(missing topic, key %q) = %v (code %q), want code %q", tt.key, err, got, fault.NotFound)
			}
		})
	}
	// Once the topic exists, the key paused by the failures publishes again.
	if err := Ensure(ctx, client, project, []string{topic}, nil); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if err := p.Publish(ctx, store.Message{Topic: topic, Data: []byte("x"), OrderingKey: "acme"}); err != nil {
		t.Errorf("Publish after the topic was created = %v, want nil", err)
	}
}

func TestPublishRefused(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic := unique(t, "events")
	if err := Ensure(ctx, client, project, []string{topic}, nil); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	closed := NewPublisher(client, PublisherOptions{})
	closed.Close()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		p    *Publisher
		ctx  context.Context
		m    store.Message
		want fault.Code
	}{
		{"no topic", NewPublisher(client, PublisherOptions{}), ctx, store.Message{Data: []byte("x")}, fault.Invalid},
		{"closed", closed, ctx, store.Message{Topic: topic, Data: []byte("x")}, fault.Unavailable},
		{"canceled", NewPublisher(client, PublisherOptions{}), canceled, store.Message{Topic: topic, Data: []byte("x"), OrderingKey: "k"}, fault.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.p.Close()
			err := tt.p.Publish(tt.ctx, tt.m)
			if got := fault.ErrorCode(err); got != tt.want {
				t.Errorf("Publish(%+v) = %v (code %q), want code %q", tt.m, err, got, tt.want)
			}
		})
	}
}

func TestPublishConcurrent(t *testing.T) {
	client, project := emulator(t)
	ctx := context.Background()
	topic, sub := unique(t, "events"), unique(t, "ordered")
	if err := Ensure(ctx, client, project, []string{topic}, []Subscription{{Name: sub, Topic: topic, Ordered: true}}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	p := NewPublisher(client, PublisherOptions{DelayThreshold: time.Millisecond})
	defer p.Close()
	const workers, each = 16, 20
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Half of the workers share a key, so that one key is published
			// from several goroutines.
			key := fmt.Sprintf("tenant-%d", w%(workers/2))
			for i := range each {
				m := store.Message{Topic: topic, Data: fmt.Appendf(nil, "%d/%d", w, i), OrderingKey: key}
				if err := p.Publish(ctx, m); err != nil {
					errs <- fmt.Errorf("Publish(%s): %w", m.Data, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Every message arrives once; each worker's messages arrive in the
	// order it published them.
	next := make(map[int]int)
	for _, m := range collect(t, client, sub, workers*each) {
		var w, i int
		if _, err := fmt.Sscanf(string(m.Data), "%d/%d", &w, &i); err != nil {
			t.Fatalf("message data %q: %v", m.Data, err)
		}
		if i != next[w] {
			t.Errorf("worker %d: received message %d, want %d", w, i, next[w])
		}
		next[w] = i + 1
	}
}

func TestSubscriptionProto(t *testing.T) {
	tests := []struct {
		name string
		sub  Subscription
		want *pubsubpb.Subscription
	}{
		{
			name: "pull",
			sub:  Subscription{Name: "s", Topic: "t"},
			want: &pubsubpb.Subscription{Name: "projects/p/subscriptions/s", Topic: "projects/p/topics/t", PushConfig: &pubsubpb.PushConfig{}},
		},
		{
			name: "full",
			sub: Subscription{Name: "s", Topic: "projects/q/topics/t", PushEndpoint: "http://f", Ordered: true,
				DeadLetterTopic: "dl", MaxDeliveryAttempts: 7, AckDeadline: time.Minute, MinBackoff: time.Second, MaxBackoff: time.Minute},
			want: &pubsubpb.Subscription{
				Name:                  "projects/p/subscriptions/s",
				Topic:                 "projects/q/topics/t",
				PushConfig:            &pubsubpb.PushConfig{PushEndpoint: "http://f"},
				EnableMessageOrdering: true,
				AckDeadlineSeconds:    60,
				DeadLetterPolicy:      &pubsubpb.DeadLetterPolicy{DeadLetterTopic: "projects/p/topics/dl", MaxDeliveryAttempts: 7},
				RetryPolicy:           &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second), MaximumBackoff: durationpb.New(time.Minute)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sub.proto("p"); got.String() != tt.want.String() {
				t.Errorf("%+v.proto(p) = %v, want %v", tt.sub, got, tt.want)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		err  error
		want fault.Code
	}{
		{status.Error(codes.NotFound, "topic"), fault.NotFound},
		{fmt.Errorf("publish: %w", status.Error(codes.NotFound, "topic")), fault.NotFound},
		{status.Error(codes.InvalidArgument, "attribute"), fault.Invalid},
		{ps.ErrOversizedMessage, fault.Invalid},
		{status.Error(codes.Unavailable, "down"), fault.Unavailable},
		{status.Error(codes.PermissionDenied, "iam"), fault.Unavailable},
		{context.DeadlineExceeded, fault.Unavailable},
		{errors.New("other"), fault.Unavailable},
	}
	for _, tt := range tests {
		if got := fault.ErrorCode(wrap("op", tt.err)); got != tt.want {
			t.Errorf("ErrorCode(wrap(op, %v)) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		b.Skip("PUBSUB_EMULATOR_HOST not set")
	}
	ctx := context.Background()
	client, err := ps.NewClient(ctx, "demo-autonomics")
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	topic := fmt.Sprintf("b-publish-%d", time.Now().UnixNano())
	if err := Ensure(ctx, client, "demo-autonomics", []string{topic}, nil); err != nil {
		b.Fatal(err)
	}
	p := NewPublisher(client, PublisherOptions{DelayThreshold: time.Millisecond})
	defer p.Close()
	m := store.Message{Topic: topic, Data: []byte(`{"seq":1}`), OrderingKey: "acme"}
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			if err := p.Publish(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			m := m
			m.OrderingKey = fmt.Sprintf("tenant-%d", n.Add(1))
			for pb.Next() {
				if err := p.Publish(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
