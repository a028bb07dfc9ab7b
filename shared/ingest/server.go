package ingest

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// Defaults of Limits.
const (
	// DefaultMaxEventBytes caps the body of one event: a whole Pub/Sub
	// message, the most an event can be.
	DefaultMaxEventBytes = event.MaxMessageBytes
	// DefaultMaxBatchBytes caps the body of a batch.
	DefaultMaxBatchBytes = 1 << 20
	// DefaultMaxBatchEvents bounds the events of a batch.
	DefaultMaxBatchEvents = 100
	// DefaultMaxInFlight bounds the requests one instance serves at once
	// (Cloud Run's concurrency is below it).
	DefaultMaxInFlight = 256
	// DefaultMaxLanes bounds the tenants of one batch published at once.
	DefaultMaxLanes = 16
	// DefaultPublishTimeout bounds the publication of one request.
	DefaultPublishTimeout = 30 * time.Second
)

// maxControlBody caps the body of the other routes, which take none.
const maxControlBody = 4 << 10

// Limits bound the work of a request and of the instance. Zero values
// select the defaults.
type Limits struct {
	// MaxEventBytes caps the body of a binary or structured request and
	// MaxBatchBytes that of a batch; MaxBatchEvents bounds a batch's
	// events.
	MaxEventBytes  int64
	MaxBatchBytes  int64
	MaxBatchEvents int
	// MaxInFlight bounds the requests served at once; more are answered
	// 503 with Retry-After.
	MaxInFlight int
	// MaxLanes bounds the tenants of one request published at once.
	MaxLanes int
	// PublishTimeout bounds the publication of one request's events.
	PublishTimeout time.Duration
}

// withDefaults returns l with its zero values replaced by the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxBatchBytes <= 0 {
		l.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if l.MaxBatchEvents <= 0 {
		l.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.MaxLanes <= 0 {
		l.MaxLanes = DefaultMaxLanes
	}
	if l.PublishTimeout <= 0 {
		l.PublishTimeout = DefaultPublishTimeout
	}
	return l
}

// Options configure a Server.
type Options struct {
	// Rules are the producers; required.
	Rules *Rules
	// Keys are the HMAC keys; every key id of Rules must have one.
	Keys Keys
	// Tokens verifies ID tokens; required when a producer has an email.
	Tokens TokenVerifier
	// Publisher publishes accepted events; required.
	Publisher engine.Publisher
	// Topics names the domain topics.
	Topics topic.Names
	// Machines are the governors' machines; machines.New(nil) when nil.
	Machines map[governor.Domain]*governor.Machine
	// Clock is the time of rate limits and signature timestamps;
	// time.Now when nil.
	Clock func() time.Time
	// Logger gets a line per request and per refused event;
	// slog.Default() when nil.
	Logger *slog.Logger
	// MeterProvider receives the events counter (MetricEvents); a no-op
	// provider when nil.
	MeterProvider metric.MeterProvider
	Limits        Limits
}

// MetricEvents counts the events the API answered, by producer, outcome
// (accepted or refused) and error code; a request refused as a whole
// counts once, with outcome "refused".
const MetricEvents = "autonomics.ingest.events"

// producerState is a producer's rate limiter and replay cache.
type producerState struct {
	limiter *rate.Limiter
	replay  *replayCache
}

// Server is the ingest API. It is safe for concurrent use.
type Server struct {
	o        Options
	state    map[string]*producerState
	inflight chan struct{}
	answered metric.Int64Counter
}

// New returns a Server after checking its options.
func New(o Options) (*Server, error) {
	const op = "ingest.New"
	if o.Rules == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "producer rules and a publisher are required")
	}
	for _, id := range o.Rules.KeyIDs() {
		if len(o.Keys[id]) == 0 {
			return nil, fault.Errorf(fault.Invalid, op, "producer %s signs with key %s, which is not among the HMAC keys", o.Rules.ByKeyID(id).Name, id)
		}
	}
	if o.Rules.usesTokens() && o.Tokens == nil {
		return nil, fault.Errorf(fault.Invalid, op, "producers authenticate with ID tokens, but no token verifier (audience) is configured")
	}
	if o.Machines == nil {
		o.Machines = machines.New(nil)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Limits = o.Limits.withDefaults()
	if o.MeterProvider == nil {
		o.MeterProvider = noop.NewMeterProvider()
	}
	counter, err := o.MeterProvider.Meter("github.com/autonomics/autonomics/shared/ingest").Int64Counter(MetricEvents,
		metric.WithDescription("Events the ingest API answered, by producer, outcome and code."))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	s := &Server{o: o, state: map[string]*producerState{}, inflight: make(chan struct{}, o.Limits.MaxInFlight), answered: counter}
	for _, p := range o.Rules.Producers() {
		s.state[p.Name] = &producerState{
			limiter: rate.NewLimiter(rate.Limit(p.Rate), p.Burst),
			replay:  newReplayCache(2*Tolerance, MaxReplayEntries),
		}
	}
	return s, nil
}

// Handler returns the API's routes: POST /v1/events, GET /healthz, and a
// JSON 404 for everything else.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", s.events)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
		httpjson.Error(w, fault.Errorf(fault.NotFound, "ingest", "no route for %s %s", httpjson.Quote(r.Method), httpjson.Quote(r.URL.Path)))
	})
	return mux
}

// Result is the answer for one event.
type Result struct {
	// Index is the event's position in its request (0 for a single event).
	Index int `json:"index"`
	// Status is "accepted" (published to the domain topic) or "refused".
	Status string `json:"status"`
	// ID, Type and Tenant identify the event (a refused event has those
	// that could be read); Source is the source it was published with.
	ID     string `json:"id,omitempty"`
	Source string `json:"source,omitempty"`
	Type   string `json:"type,omitempty"`
	Tenant string `json:"tenantid,omitempty"`
	// Error says why the event was refused: code invalid (fix the event),
	// forbidden (the producer may not send it) or unavailable (retry).
	Error *ErrorBody `json:"error,omitempty"`
}

// Statuses of a Result.
const (
	StatusAccepted = "accepted"
	StatusRefused  = "refused"
)

// item is one event of a request on its way through.
type item struct {
	index int
	ev    governor.Event
	msg   store.Message
	err   error
}

// result returns the item's Result.
func (it *item) result() Result {
	r := Result{Index: it.index, ID: it.ev.ID, Type: it.ev.Type, Tenant: it.ev.Tenant}
	if it.err != nil {
		r.Status, r.Error = StatusRefused, errorBody(it.err)
		return r
	}
	r.Status, r.Source = StatusAccepted, it.ev.Source
	return r
}

// events serves POST /v1/events.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		writeError(w, busy("ingest", time.Second, "the instance serves %d requests already; retry", s.o.Limits.MaxInFlight))
		return
	}
	log := s.o.Logger.With("remote", r.RemoteAddr)
	p, mode, items, err := s.admit(w, r)
	if err != nil {
		log.WarnContext(r.Context(), "ingest request refused", "producer", producerName(p), "mode", string(mode),
			"code", fault.ErrorCode(err), "error", httpjson.Truncate(err.Error(), maxMessage), "status", status(err))
		s.count(r.Context(), p, err)
		writeError(w, err)
		return
	}
	log = log.With("producer", p.Name, "mode", string(mode))
	for _, it := range items {
		if it.err == nil {
			it.msg, it.ev, it.err = s.check(p, it.msg)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.Limits.PublishTimeout)
	s.publish(ctx, items)
	cancel()
	results := make([]Result, len(items))
	accepted := 0
	for i, it := range items {
		results[i] = it.result()
		s.count(r.Context(), p, it.err)
		if it.err == nil {
			accepted++
			continue
		}
		log.WarnContext(r.Context(), "event refused", "index", it.index, "type", httpjson.Truncate(it.ev.Type, 4*httpjson.MaxEcho),
			"code", fault.ErrorCode(it.err), "error", httpjson.Truncate(it.err.Error(), maxMessage))
	}
	code := http.StatusOK
	switch {
	case mode != ModeBatch && items[0].err != nil:
		code = status(items[0].err)
		writeError(w, items[0].err)
	case mode != ModeBatch:
		code = http.StatusAccepted
		httpjson.Write(w, code, results[0])
	default:
		httpjson.Write(w, code, results)
	}
	log.InfoContext(r.Context(), "ingest request", "events", len(items), "accepted", accepted, "refused", len(items)-accepted,
		"status", code, "duration_ms", float64(time.Since(start).Microseconds())/1000)
}

// count adds one answered event to MetricEvents. Producers are named by
// the configuration, so the label stays bounded; a caller that is no
// producer counts as "unknown".
func (s *Server) count(ctx context.Context, p *Producer, err error) {
	producer, outcome, code := producerName(p), StatusAccepted, ""
	if producer == "" {
		producer = "unknown"
	}
	if err != nil {
		outcome, code = StatusRefused, string(fault.ErrorCode(err))
	}
	s.answered.Add(ctx, 1, metric.WithAttributes(attribute.String("producer", producer),
		attribute.String("outcome", outcome), attribute.String("code", code)))
}

func producerName(p *Producer) string {
	if p == nil {
		return ""
	}
	return p.Name
}

// admit authenticates the request, reads its body and splits it into
// events, and charges the producer's rate limit (and, for a signed
// request, its replay cache). Every error refuses the request as a whole.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (*Producer, Mode, []*item, error) {
	const op = "ingest.admit"
	token, hasToken, err := bearer(r.Header)
	if err != nil {
		return nil, "", nil, err
	}
	sig, hasSig, err := signedHeaders(r.Header)
	if err != nil {
		return nil, "", nil, err
	}
	var p *Producer
	switch {
	case hasToken && hasSig:
		return nil, "", nil, fault.Errorf(CodeUnauthenticated, op, "send an ID token or an HMAC signature, not both")
	case !hasToken && !hasSig:
		return nil, "", nil, fault.Errorf(CodeUnauthenticated, op, "no credentials: send Authorization: Bearer <Google-signed ID token>, or sign the request (%s, %s, %s, %s)",
			HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature, HeaderKeyID)
	case hasToken:
		if p, err = s.byToken(r.Context(), token); err != nil {
			return nil, "", nil, err
		}
	}
	mode, err := modeOf(r.Header)
	if err != nil {
		return p, "", nil, err
	}
	if hasSig && mode == ModeBinary {
		return p, mode, nil, fault.Errorf(CodeUnsupportedMediaType, op,
			"HMAC-signed requests carry their events in the signed body: use structured mode (%s) or a batch (%s), not binary mode", StructuredContentType, BatchContentType)
	}
	if err := repeatedHeader(r.Header); err != nil {
		return p, mode, nil, err
	}
	limit := s.o.Limits.MaxEventBytes
	if mode == ModeBatch {
		limit = s.o.Limits.MaxBatchBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return p, mode, nil, &fault.Error{Code: fault.Invalid, Op: op, Message: fmt.Sprintf("request body exceeds %d bytes (%s mode)", limit, mode), Err: tooBig}
		}
		return p, mode, nil, fault.Wrap(fault.Unavailable, op, errors.New("reading the request body failed"))
	}
	now := s.o.Clock()
	if hasSig {
		if p, err = s.bySignature(sig, body, now); err != nil {
			return nil, mode, nil, err
		}
	}
	var msgs []event.Message
	switch mode {
	case ModeBinary:
		m, err := binaryMessage(r.Context(), r.Header, body)
		if err != nil {
			return p, mode, nil, err
		}
		msgs = []event.Message{m}
	case ModeStructured:
		msgs = []event.Message{structuredMessage(r.Header, body)}
	default:
		if msgs, err = batchMessages(r.Header, body, s.o.Limits.MaxBatchEvents); err != nil {
			return p, mode, nil, err
		}
	}
	if len(msgs) > p.Burst {
		return p, mode, nil, fault.Errorf(fault.Invalid, op, "%d events in one request, more than producer %s's burst of %d; send smaller batches", len(msgs), p.Name, p.Burst)
	}
	st := s.state[p.Name]
	res := st.limiter.ReserveN(now, len(msgs))
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return p, mode, nil, limited(op, d, "producer %s is over its rate of %g events per second (burst %d)", p.Name, p.Rate, p.Burst)
	}
	if hasSig {
		switch outcome, until := st.replay.add(sig.id, now); outcome {
		case replaySeen:
			res.CancelAt(now)
			return p, mode, nil, fault.Errorf(fault.Conflict, op, "%s %s was already used by producer %s; sign every request with a new id", HeaderWebhookID, httpjson.Quote(sig.id), p.Name)
		case replayFull:
			res.CancelAt(now)
			return p, mode, nil, limited(op, until.Sub(now), "producer %s has signed %d requests in the last %s; retry later", p.Name, MaxReplayEntries, 2*Tolerance)
		}
	}
	items := make([]*item, len(msgs))
	for i, m := range msgs {
		items[i] = &item{index: i, msg: store.Message{Data: m.Data, Attributes: m.Attributes}}
	}
	return p, mode, items, nil
}

// byToken returns the producer whose ID token this is.
func (s *Server) byToken(ctx context.Context, token string) (*Producer, error) {
	if s.o.Tokens == nil {
		return nil, fault.Errorf(CodeUnauthenticated, "ingest.authenticate", "this deployment takes no ID tokens (no producer has an email); sign the request")
	}
	email, err := s.o.Tokens.VerifyToken(ctx, token)
	if err != nil {
		return nil, err
	}
	p := s.o.Rules.ByEmail(email)
	if p == nil {
		return nil, fault.Errorf(CodeForbidden, "ingest.authenticate", "%s is not a producer", httpjson.Quote(email))
	}
	return p, nil
}

// bySignature returns the producer whose key signed the request; the
// replay check comes later, once the request is admitted.
func (s *Server) bySignature(sig signed, body []byte, now time.Time) (*Producer, error) {
	const op = "ingest.authenticate"
	p := s.o.Rules.ByKeyID(sig.keyID)
	key := s.o.Keys[sig.keyID]
	if p == nil || len(key) == 0 {
		return nil, fault.Errorf(CodeUnauthenticated, op, "unknown key id %s", httpjson.Quote(sig.keyID))
	}
	if err := sig.verify(key, body, now); err != nil {
		return nil, err
	}
	return p, nil
}

// check decodes one event with the governors' decoder, sets its source to
// the producer's, and applies, in the engine's order, what the engine
// requires of an event from outside, the machine's sender rules, then the
// producer's rules, and last the machine's payload check. It returns the
// message to publish: the event in binary mode, as event.Encode renders
// it, decoded again by event.Decode exactly as the governor will.
func (s *Server) check(p *Producer, m store.Message) (store.Message, governor.Event, error) {
	const op = "ingest.check"
	ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
	if err != nil {
		return m, governor.Event{}, err
	}
	// What the caller claims: no source, extension or path of Autonomics'
	// own components.
	if _, err := engine.SenderOf(false, ev); err != nil {
		return m, ev, err
	}
	ev.Source = p.Source()
	data, attrs := event.Encode(ev)
	final, err := event.Decode(event.Message{Data: data, Attributes: attrs})
	if err != nil {
		return m, ev, err
	}
	mach := s.o.Machines[final.Domain]
	if mach == nil {
		return m, final, fault.Errorf(fault.Invalid, op, "domain %s is not served", final.Domain)
	}
	if !mach.HasEvent(final.Name) {
		// CheckEvent says so: unknown event type for the domain.
		return m, final, mach.CheckEvent(final)
	}
	class, err := engine.SenderOf(false, final)
	if err != nil {
		return m, final, err
	}
	if class != p.Class {
		return m, final, fault.Errorf(fault.Internal, op, "source %s classifies as %s, producer %s is %s", final.Source, class, p.Name, p.Class)
	}
	if !mach.May(class, final.Name) {
		return m, final, fault.Errorf(CodeForbidden, op, "%s may be sent by %s only, not by a sender of class %s",
			final.Type, joinSenders(mach.SendersOf(final.Name)), class)
	}
	if !p.mayType(final.Domain, final.Type) {
		return m, final, fault.Errorf(CodeForbidden, op, "producer %s may not send %s", p.Name, final.Type)
	}
	if !p.mayTenant(final.Tenant) {
		return m, final, fault.Errorf(CodeForbidden, op, "producer %s may not send for tenant %s", p.Name, httpjson.Quote(final.Tenant))
	}
	// The payload, as the engine checks it before reading any state.
	if err := mach.CheckEvent(final); err != nil {
		return m, final, err
	}
	return store.Message{Topic: s.o.Topics.Domain(final.Domain), Data: data, Attributes: attrs, OrderingKey: final.Tenant}, final, nil
}

// joinSenders lists sender classes for a message.
func joinSenders(ss []governor.Sender) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// publish publishes the items that passed their checks. Each tenant's
// events are published one after the other in request order (the ordering
// key is the tenant), at most Limits.MaxLanes tenants at once; once one
// fails, that tenant's later events are not published, so that none
// overtakes it.
func (s *Server) publish(ctx context.Context, items []*item) {
	const op = "ingest.publish"
	var order []string
	lanes := map[string][]*item{}
	for _, it := range items {
		if it.err != nil {
			continue
		}
		k := it.msg.OrderingKey
		if lanes[k] == nil {
			order = append(order, k)
		}
		lanes[k] = append(lanes[k], it)
	}
	sem := make(chan struct{}, s.o.Limits.MaxLanes)
	var wg sync.WaitGroup
	for _, k := range order {
		lane := lanes[k]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			failed := false
			for _, it := range lane {
				if failed {
					it.err = fault.Errorf(fault.Unavailable, op, "not published: an earlier event of tenant %s in this request was not; retry both", httpjson.Quote(it.ev.Tenant))
					continue
				}
				if err := s.o.Publisher.Publish(ctx, it.msg); err != nil {
					failed = true
					s.o.Logger.ErrorContext(ctx, "publishing an accepted event failed", "topic", it.msg.Topic, "error", err.Error())
					it.err = fault.Errorf(fault.Unavailable, op, "publishing to the domain topic failed; retry")
				}
			}
		})
	}
	wg.Wait()
}
