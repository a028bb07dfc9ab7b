package cost

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	pubsubpb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
)

// Op is what the calls of one operation cost: a store or publisher method
// at the interface level, a gRPC method at the client level.
type Op struct {
	// Calls is the number of calls (at the client level: of RPCs).
	Calls int64
	// Reads, Writes and Deletes count documents as Firestore bills them:
	// a read per document a get asks for (found or missing) and per
	// document a query returns, at least one per query; a write per
	// set, create or update, a delete per delete.
	Reads, Writes, Deletes int64
	// Messages is the number of Pub/Sub messages published.
	Messages int64
	// PublishBytes is the billable volume of the publish requests: the
	// data volume of their messages, at least MinRequestBytes per request.
	PublishBytes int64
	// DeliveryBytes is the billable volume of delivering every message
	// once by push, one message per request: each message's data volume,
	// at least MinRequestBytes.
	DeliveryBytes int64
}

func (o *Op) add(p Op) {
	o.Calls += p.Calls
	o.Reads += p.Reads
	o.Writes += p.Writes
	o.Deletes += p.Deletes
	o.Messages += p.Messages
	o.PublishBytes += p.PublishBytes
	o.DeliveryBytes += p.DeliveryBytes
}

// Counts is what a Recorder saw since its last Reset.
type Counts struct {
	// Ops holds the cost of every operation by name (a store or publisher
	// method, or a gRPC method such as "firestore.Commit").
	Ops map[string]Op
	// Total is the sum of Ops.
	Total Op
	// RoundTrips is the number of sequential round trips: the calls
	// recorded, with those that overlapped in time counted once.
	RoundTrips int64
	// Path lists the round trips in order, each as the names of the
	// calls it overlapped joined by "+", e.g. "firestore.BeginTransaction",
	// "pubsub.Publish+pubsub.Publish".
	Path []string
}

// span is one call's interval.
type span struct {
	name       string
	start, end time.Time
}

// Recorder accumulates costs and the intervals of the calls that incurred
// them. It is safe for concurrent use. The zero value is not usable; call
// NewRecorder.
type Recorder struct {
	now func() time.Time

	mu    sync.Mutex
	ops   map[string]*Op
	spans []*span
}

// maxSpans bounds the intervals a Recorder keeps between resets; further
// calls are counted but leave the round trips unchanged.
const maxSpans = 100_000

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{now: time.Now, ops: map[string]*Op{}}
}

// Reset forgets everything recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = map[string]*Op{}
	r.spans = nil
}

// begin opens a call named name and returns its span, nil when the span
// budget is spent.
func (r *Recorder) begin(name string) *span {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) >= maxSpans {
		return nil
	}
	now := r.now()
	s := &span{name: name, start: now, end: now}
	r.spans = append(r.spans, s)
	return s
}

// count adds p to the operation name, and moves the end of s (when not
// nil) to now.
func (r *Recorder) count(name string, s *span, p Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.ops[name]
	if o == nil {
		o = &Op{}
		r.ops[name] = o
	}
	o.add(p)
	if s != nil {
		s.end = r.now()
	}
}

// Counts returns what was recorded since the last Reset.
func (r *Recorder) Counts() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Counts{Ops: make(map[string]Op, len(r.ops))}
	for name, o := range r.ops {
		c.Ops[name] = *o
		c.Total.add(*o)
	}
	spans := make([]span, len(r.spans))
	for i, s := range r.spans {
		spans[i] = *s
	}
	c.Path = stages(spans)
	c.RoundTrips = int64(len(c.Path))
	return c
}

// stages merges overlapping spans and names each merged stage by its
// calls in start order.
func stages(spans []span) []string {
	slices.SortStableFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	var out []string
	var names []string
	var end time.Time
	for i, s := range spans {
		if i > 0 && s.start.After(end) {
			out = append(out, strings.Join(names, "+"))
			names = names[:0]
		}
		names = append(names, s.name)
		if i == 0 || s.end.After(end) {
			end = s.end
		}
	}
	if len(names) > 0 {
		out = append(out, strings.Join(names, "+"))
	}
	return out
}

// Names returns the operation names of c in order.
func (c Counts) Names() []string { return slices.Sorted(maps.Keys(c.Ops)) }

// Billing constants of Pub/Sub's data volume (see Prices).
const (
	// MinRequestBytes is the least billable volume of a publish, push or
	// pull request.
	MinRequestBytes = 1000
	// timestampBytes is the volume Pub/Sub adds per message for its
	// publish time.
	timestampBytes = 20
	// MessageIDBytes is the volume assumed for the message id Pub/Sub
	// assigns (production ids are about 16 decimal digits).
	MessageIDBytes = 16
)

// MessageBytes is the billable data volume of one message: its data, the
// keys and values of its attributes, its ordering key, the publish
// timestamp and the message id.
func MessageBytes(data []byte, attrs map[string]string, orderingKey string) int64 {
	n := int64(len(data)+len(orderingKey)) + timestampBytes + MessageIDBytes
	for k, v := range attrs {
		n += int64(len(k) + len(v))
	}
	return n
}

// RPC method names as the recorder names them: the service's short name
// and the method, e.g. "firestore.Commit", "pubsub.Publish".
func rpcName(method string) string {
	// method is "/google.firestore.v1.Firestore/Commit".
	svc, m, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok {
		return method
	}
	switch {
	case strings.HasPrefix(svc, "google.firestore."):
		return "firestore." + m
	case strings.HasPrefix(svc, "google.pubsub."):
		return "pubsub." + m
	}
	if i := strings.LastIndex(svc, "."); i >= 0 {
		svc = svc[i+1:]
	}
	return svc + "." + m
}

// requestCost is what a unary request (or the first message of a stream)
// costs by its content.
func requestCost(req any) Op {
	switch q := req.(type) {
	case *pb.CommitRequest:
		return writesCost(q.GetWrites())
	case *pb.BatchWriteRequest:
		return writesCost(q.GetWrites())
	case *pb.GetDocumentRequest:
		return Op{Reads: 1}
	case *pubsubpb.PublishRequest:
		var o Op
		var total int64
		for _, m := range q.GetMessages() {
			n := MessageBytes(m.GetData(), m.GetAttributes(), m.GetOrderingKey())
			total += n
			o.DeliveryBytes += max(n, MinRequestBytes)
		}
		o.Messages = int64(len(q.GetMessages()))
		o.PublishBytes = max(total, MinRequestBytes)
		return o
	}
	return Op{}
}

func writesCost(ws []*pb.Write) Op {
	var o Op
	for _, w := range ws {
		if w.GetDelete() != "" {
			o.Deletes++
		} else {
			o.Writes++
		}
	}
	return o
}

// responseCost is what one response message costs. docs counts the
// documents a query's stream returned so far: the first is paid by the
// query's minimum charge.
func responseCost(resp any, docs *int) Op {
	switch m := resp.(type) {
	case *pb.BatchGetDocumentsResponse:
		if m.GetFound() != nil || m.GetMissing() != "" {
			return Op{Reads: 1}
		}
	case *pb.RunQueryResponse:
		if m.GetDocument() != nil {
			*docs++
			if *docs > 1 {
				return Op{Reads: 1}
			}
		}
	case *pb.ListDocumentsResponse:
		return Op{Reads: int64(len(m.GetDocuments()))}
	}
	return Op{}
}

// UnaryInterceptor returns a gRPC client interceptor that records every
// unary RPC: its method, its interval and what its request costs.
func (r *Recorder) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		name := rpcName(method)
		s := r.begin(name)
		err := invoker(ctx, method, req, reply, cc, opts...)
		p := requestCost(req)
		p.Calls = 1
		if resp, ok := reply.(*pb.ListDocumentsResponse); ok && err == nil {
			var n int
			p.add(responseCost(resp, &n))
		}
		r.count(name, s, p)
		return err
	}
}

// StreamInterceptor returns a gRPC client interceptor that records every
// streaming RPC: its method, its interval (from its start to its last
// message received) and the documents it reads. A query costs at least
// one read.
func (r *Recorder) StreamInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		name := rpcName(method)
		s := r.begin(name)
		p := Op{Calls: 1}
		if strings.HasSuffix(method, "/RunQuery") || strings.HasSuffix(method, "/RunAggregationQuery") {
			p.Reads = 1
		}
		r.count(name, s, p)
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			r.count(name, s, Op{})
			return nil, err
		}
		return &countedStream{ClientStream: cs, r: r, name: name, span: s}, nil
	}
}

// countedStream records what a stream sends and receives.
type countedStream struct {
	grpc.ClientStream
	r    *Recorder
	name string
	span *span
	docs int
	sent bool
}

func (s *countedStream) SendMsg(m any) error {
	if !s.sent {
		s.sent = true
		s.r.count(s.name, nil, requestCost(m))
	}
	return s.ClientStream.SendMsg(m)
}

func (s *countedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	var p Op
	if err == nil {
		p = responseCost(m, &s.docs)
	}
	// The stream's interval ends with its last message, io.EOF or a
	// failure.
	s.r.count(s.name, s.span, p)
	return err
}

// DialOptions returns the gRPC dial options that install the recorder's
// interceptors, chained after any others.
func (r *Recorder) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(r.UnaryInterceptor()),
		grpc.WithChainStreamInterceptor(r.StreamInterceptor()),
	}
}

// ClientOptions returns the client options that install the recorder's
// interceptors in a Google Cloud client (firestore.NewClientWithDatabase,
// pubsub.NewClient). A client given its own connection
// (option.WithGRPCConn, as the Firestore client makes one for its
// emulator) ignores dial options: dial that connection with DialOptions
// instead.
func (r *Recorder) ClientOptions() []option.ClientOption {
	var out []option.ClientOption
	for _, o := range r.DialOptions() {
		out = append(out, option.WithGRPCDialOption(o))
	}
	return out
}
