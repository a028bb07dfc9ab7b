package cost_test

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	pubsubpb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/autonomics/autonomics/shared/cost"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

var _ engine.Publisher = (*cost.Publisher)(nil)

// unary calls the recorder's unary interceptor with req; the invoker
// sleeps for d and returns err.
func unary(t *testing.T, r *cost.Recorder, method string, req, reply any, d time.Duration, err error) error {
	t.Helper()
	return r.UnaryInterceptor()(context.Background(), method, req, reply, nil,
		func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
			time.Sleep(d)
			return err
		})
}

func TestUnaryRPCsAreCountedByContent(t *testing.T) {
	tests := []struct {
		name   string
		method string
		req    any
		want   cost.Op
	}{
		{"commit", "/google.firestore.v1.Firestore/Commit", &pb.CommitRequest{Writes: []*pb.Write{
			{Operation: &pb.Write_Update{Update: &pb.Document{Name: "a"}}},
			{Operation: &pb.Write_Update{Update: &pb.Document{Name: "b"}}},
			{Operation: &pb.Write_Delete{Delete: "c"}},
		}}, cost.Op{Calls: 1, Writes: 2, Deletes: 1}},
		{"empty commit", "/google.firestore.v1.Firestore/Commit", &pb.CommitRequest{}, cost.Op{Calls: 1}},
		{"batch write", "/google.firestore.v1.Firestore/BatchWrite", &pb.BatchWriteRequest{Writes: []*pb.Write{
			{Operation: &pb.Write_Delete{Delete: "c"}},
		}}, cost.Op{Calls: 1, Deletes: 1}},
		{"begin", "/google.firestore.v1.Firestore/BeginTransaction", &pb.BeginTransactionRequest{}, cost.Op{Calls: 1}},
		{"small publish", "/google.pubsub.v1.Publisher/Publish", &pubsubpb.PublishRequest{Messages: []*pubsubpb.PubsubMessage{
			{Data: []byte("hello"), Attributes: map[string]string{"k": "v"}},
		}}, cost.Op{Calls: 1, Messages: 1, PublishBytes: cost.MinRequestBytes, DeliveryBytes: cost.MinRequestBytes}},
		{"large batch publish", "/google.pubsub.v1.Publisher/Publish", &pubsubpb.PublishRequest{Messages: []*pubsubpb.PubsubMessage{
			{Data: make([]byte, 700), OrderingKey: "acme"}, {Data: make([]byte, 700), OrderingKey: "acme"},
		}}, cost.Op{Calls: 1, Messages: 2, PublishBytes: 2 * (700 + 4 + 20 + cost.MessageIDBytes), DeliveryBytes: 2 * cost.MinRequestBytes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cost.NewRecorder()
			if err := unary(t, r, tt.method, tt.req, nil, 0, nil); err != nil {
				t.Fatal(err)
			}
			c := r.Counts()
			if c.Total != tt.want || c.RoundTrips != 1 {
				t.Errorf("Counts() = %+v, %d round trips; want %+v, 1", c.Total, c.RoundTrips, tt.want)
			}
		})
	}
}

func TestFailedRPCIsStillARoundTrip(t *testing.T) {
	r := cost.NewRecorder()
	want := errors.New("unavailable")
	if err := unary(t, r, "/google.firestore.v1.Firestore/Commit", &pb.CommitRequest{}, nil, 0, want); err != want {
		t.Fatalf("interceptor returned %v, want the invoker's %v", err, want)
	}
	if c := r.Counts(); c.Total.Calls != 1 || c.RoundTrips != 1 || c.Path[0] != "firestore.Commit" {
		t.Errorf("Counts() = %+v; want the failed commit as one call and round trip", c)
	}
}

// TestOverlappingRPCsAreOneRoundTrip issues two RPCs concurrently and a
// third after them: two sequential round trips.
func TestOverlappingRPCsAreOneRoundTrip(t *testing.T) {
	r := cost.NewRecorder()
	done := make(chan struct{})
	go func() {
		_ = unary(t, r, "/google.pubsub.v1.Publisher/Publish", &pubsubpb.PublishRequest{}, nil, 50*time.Millisecond, nil)
		close(done)
	}()
	_ = unary(t, r, "/google.pubsub.v1.Publisher/Publish", &pubsubpb.PublishRequest{}, nil, 50*time.Millisecond, nil)
	<-done
	_ = unary(t, r, "/google.firestore.v1.Firestore/Commit", &pb.CommitRequest{}, nil, 0, nil)
	c := r.Counts()
	if c.Total.Calls != 3 || c.RoundTrips != 2 || c.Path[0] != "pubsub.Publish+pubsub.Publish" || c.Path[1] != "firestore.Commit" {
		t.Errorf("Counts() = %d calls, %d round trips, path %q; want 3 calls in 2 round trips", c.Total.Calls, c.RoundTrips, c.Path)
	}
	r.Reset()
	if c := r.Counts(); c.Total != (cost.Op{}) || c.RoundTrips != 0 {
		t.Errorf("after Reset, Counts() = %+v", c)
	}
}

// fakeStream replays responses, then io.EOF.
type fakeStream struct {
	grpc.ClientStream
	resps []any
}

func (s *fakeStream) Header() (metadata.MD, error) { return nil, nil }
func (s *fakeStream) SendMsg(any) error            { return nil }
func (s *fakeStream) CloseSend() error             { return nil }
func (s *fakeStream) RecvMsg(m any) error {
	if len(s.resps) == 0 {
		return io.EOF
	}
	next := s.resps[0]
	s.resps = s.resps[1:]
	proto.Merge(m.(proto.Message), next.(proto.Message))
	return nil
}

func TestStreamedReadsAreCountedPerDocument(t *testing.T) {
	doc := &pb.Document{Name: "d"}
	tests := []struct {
		name   string
		method string
		resps  []any
		recv   func() any
		want   int64
	}{
		{"get found and missing", "/google.firestore.v1.Firestore/BatchGetDocuments", []any{
			&pb.BatchGetDocumentsResponse{Transaction: []byte("t")},
			&pb.BatchGetDocumentsResponse{Result: &pb.BatchGetDocumentsResponse_Found{Found: doc}},
			&pb.BatchGetDocumentsResponse{Result: &pb.BatchGetDocumentsResponse_Missing{Missing: "m"}},
		}, func() any { return new(pb.BatchGetDocumentsResponse) }, 2},
		{"query of three", "/google.firestore.v1.Firestore/RunQuery", []any{
			&pb.RunQueryResponse{Document: doc}, &pb.RunQueryResponse{Document: doc}, &pb.RunQueryResponse{Document: doc},
		}, func() any { return new(pb.RunQueryResponse) }, 3},
		{"empty query costs one read", "/google.firestore.v1.Firestore/RunQuery", []any{
			&pb.RunQueryResponse{},
		}, func() any { return new(pb.RunQueryResponse) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cost.NewRecorder()
			cs, err := r.StreamInterceptor()(context.Background(), &grpc.StreamDesc{ServerStreams: true}, nil, tt.method,
				func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
					return &fakeStream{resps: tt.resps}, nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if err := cs.SendMsg(&pb.RunQueryRequest{}); err != nil {
				t.Fatal(err)
			}
			for {
				if err := cs.RecvMsg(tt.recv()); err != nil {
					break
				}
			}
			c := r.Counts()
			if c.Total.Reads != tt.want || c.Total.Calls != 1 || c.RoundTrips != 1 {
				t.Errorf("Counts() = %+v, %d round trips; want %d reads in 1 call and round trip", c.Total, c.RoundTrips, tt.want)
			}
		})
	}
}

func TestStreamThatFailsToOpenIsCounted(t *testing.T) {
	r := cost.NewRecorder()
	_, err := r.StreamInterceptor()(context.Background(), &grpc.StreamDesc{}, nil, "/google.firestore.v1.Firestore/RunQuery",
		func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
			return nil, errors.New("refused")
		})
	if err == nil {
		t.Fatal("interceptor hid the streamer's error")
	}
	if c := r.Counts(); c.Total.Calls != 1 || c.RoundTrips != 1 {
		t.Errorf("Counts() = %+v; want one call", c)
	}
}

// decision returns the changes of a first decision of k with n outbox
// entries, arming timer arm and cancelling cancel.
func decision(k governor.Key, n int, arm, cancel string) store.Changes {
	ev := governor.Event{ID: "e-1", Source: "//test", Type: governor.TypeOf(k.Domain, "requested"), Domain: k.Domain, Name: "requested", Tenant: k.Tenant, Subject: k.Subject}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := receipt.New(governor.Instance{Key: k, State: governor.StateNone}, ev, governor.Decision{Outcome: governor.Accepted, From: governor.StateNone, To: "pending_verification"}, now)
	c := store.Changes{
		Instance: governor.Instance{Key: k, State: "pending_verification", Version: 1, LastHash: r.Hash, UpdatedAt: now},
		Dedup:    store.Dedup{Key: k, Source: ev.Source, EventID: ev.ID, ReceiptHash: r.Hash, ExpireAt: now.Add(time.Hour)},
		Receipt:  r,
	}
	for i := range n {
		c.Outbox = append(c.Outbox, store.OutboxEntry{ID: "o-" + string(rune('a'+i)) + r.Hash[:8], ReceiptHash: r.Hash, CreatedAt: now,
			Message: store.Message{Topic: "t", Data: []byte("{}")}})
	}
	if arm != "" {
		c.ArmTimers = []store.TimerEntry{{Key: k, Timer: governor.Timer{ID: arm, Name: "verification", Due: now.Add(time.Hour)}}}
	}
	if cancel != "" {
		c.CancelTimers = []string{cancel}
	}
	return c
}

func TestChangesCost(t *testing.T) {
	k := governor.Key{Tenant: "acme", Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
	tests := []struct {
		name string
		c    store.Changes
		want cost.Op
	}{
		{"plain", decision(k, 1, "", ""), cost.Op{Calls: 1, Writes: 3}},
		{"three messages", decision(k, 3, "", ""), cost.Op{Calls: 1, Writes: 3}},
		{"timer armed and another cancelled", decision(k, 1, "t-1", "t-0"), cost.Op{Calls: 1, Writes: 4, Deletes: 1}},
		{"timer re-armed is no delete", decision(k, 1, "t-1", "t-1"), cost.Op{Calls: 1, Writes: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cost.ChangesCost(tt.c); got != tt.want {
				t.Errorf("ChangesCost = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestStoreCountsADecision runs one decision's transaction, its
// delivery mark and a duplicate's outbox read through the wrapper on the
// in-memory store.
func TestStoreCountsADecision(t *testing.T) {
	r := cost.NewRecorder()
	s := cost.NewStore(memstore.New(), r)
	k := governor.Key{Tenant: "acme", Domain: governor.CustomerAccount, Subject: governor.DefaultSubject}
	c := decision(k, 2, "t-1", "")
	ctx := context.Background()
	err := s.RunTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, _, err := tx.Dedup(k, c.Dedup.Source, c.Dedup.EventID); err != nil {
			return err
		}
		if _, err := tx.Instance(k); err != nil {
			return err
		}
		return tx.Write(c)
	})
	if err != nil {
		t.Fatalf("RunTx = %v", err)
	}
	if err := s.MarkDelivered(ctx, c.Outbox[0].ID, c.Outbox[1].ID); err != nil {
		t.Fatal(err)
	}
	got := r.Counts()
	if got.Total.Reads != 2 || got.Total.Writes != 4+2 || got.Ops[cost.OpMarkDelivered].Writes != 2 || got.Ops[cost.OpTxAttempt].Calls != 1 {
		t.Errorf("Counts() = %+v; want 2 reads, the 4 writes of the decision and 2 delivery marks, one attempt", got.Ops)
	}
	if got.RoundTrips != 2 {
		t.Errorf("round trips = %d (%q), want the transaction and the mark", got.RoundTrips, got.Path)
	}
	r.Reset()
	out, err := s.Outbox(ctx, c.Receipt.Hash)
	if err != nil || len(out) != 2 {
		t.Fatalf("Outbox = %d entries, %v; want 2", len(out), err)
	}
	if got := r.Counts().Ops[cost.OpOutbox]; got.Reads != 2 || got.Calls != 1 {
		t.Errorf("Outbox cost = %+v, want 1 call reading 2 entries", got)
	}
}

// failing fails every publication.
type failing struct{}

func (failing) Publish(context.Context, store.Message) error { return errors.New("broker down") }

func TestPublisherCountsFailedPublishAsNoMessage(t *testing.T) {
	r := cost.NewRecorder()
	p := cost.NewPublisher(failing{}, r)
	if err := p.Publish(context.Background(), store.Message{Topic: "t", Data: []byte("x")}); err == nil {
		t.Fatal("Publish hid the failure")
	}
	if c := r.Counts(); c.Total.Calls != 1 || c.Total.Messages != 0 || c.RoundTrips != 1 {
		t.Errorf("Counts() = %+v; want one call, no message, one round trip", c)
	}
}

func TestRowDollarsFollowThePrices(t *testing.T) {
	p := cost.Prices{FirestoreRead: 1, FirestoreWrite: 10, FirestoreDelete: 100, PubSubByte: 0.001, CPUSecond: 2}
	var r cost.Row
	client := cost.Counts{Total: cost.Op{Reads: 4, Writes: 6, Deletes: 2, PublishBytes: 2000, DeliveryBytes: 2000}, RoundTrips: 6}
	r.Add(2, client, cost.Counts{}, 3)
	f, ps, cpu, total := r.Dollars(p)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }
	if !near(f, (4+60+200)*1e6/2) || !near(ps, 4*1e6/2) || !near(cpu, 0.006*1e6/2) || !near(total, f+ps+cpu) {
		t.Errorf("Dollars = %v, %v, %v, %v", f, ps, cpu, total)
	}
	table := cost.Table([]cost.Row{r}, p)
	if !strings.Contains(table, "CPU ms") || !strings.Contains(table, "| 2 | 3 | 1 |") {
		t.Errorf("Table =\n%s\nwant per-decision reads 2, writes 3, deletes 1 and the CPU columns", table)
	}
	r.Add(1, client, cost.Counts{}, -1)
	if table := cost.Table([]cost.Row{r}, p); strings.Contains(table, "CPU") {
		t.Errorf("Table with an unmeasured CPU =\n%s\nwant no CPU column", table)
	}
}

func TestListPricesAreTheDocumentedOnes(t *testing.T) {
	p := cost.ListPrices
	// A decision of 1 read, 1 write, 1 delete a million times.
	got := p.Firestore(cost.Op{Reads: 1e6, Writes: 1e6, Deletes: 1e6})
	if want := 0.6 + 1.8 + 0.2; math.Abs(got-want) > 1e-9 {
		t.Errorf("Firestore price of a million reads, writes and deletes = %v, want %v", got, want)
	}
	if got := p.PubSub(cost.Op{PublishBytes: 1 << 40}); math.Abs(got-40) > 1e-9 {
		t.Errorf("Pub/Sub price of a TiB = %v, want 40", got)
	}
	if got := p.CPU(1e6); math.Abs(got-0.018) > 1e-12 {
		t.Errorf("CPU price of 1,000 vCPU-s = %v, want 0.018", got)
	}
	if p.Date == "" {
		t.Error("ListPrices has no date")
	}
}

func TestPathsCompressRepeats(t *testing.T) {
	r := cost.Row{Kind: "k", Path: []string{"q", "a", "b", "a", "b", "a", "b", "c", "c"}}
	if got, want := cost.Paths([]cost.Row{r}), "- k: q → (a → b) ×3 → c ×2\n"; got != want {
		t.Errorf("Paths = %q, want %q", got, want)
	}
}
