package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/topic"
)

// directTenantPrefix sets the direct phase's tenants apart from the
// emulator-push phase's, which share the database.
const directTenantPrefix = "direct-"

// receiptGrace bounds how long the direct phase waits, after the last
// decision, for the receipts it has not seen yet.
const receiptGrace = 30 * time.Second

// maxResponseBytes bounds what is read of a function's answer.
const maxResponseBytes = 64 << 10

// directPush is a push body as Pub/Sub push delivers it to an endpoint.
type directPush struct {
	Message struct {
		Data        string            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime string            `json:"publishTime"`
		OrderingKey string            `json:"orderingKey,omitempty"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// directPushBody returns the push body of event id on the domain topic's
// push subscription, as Pub/Sub push posts it, with its entry point.
func directPushBody(cfg stackConfig, id string, e loadEvent, now time.Time) (path string, body []byte, err error) {
	data, attrs := event.Encode(governor.Event{
		ID: id, Source: loadSource, Domain: e.Domain, Name: e.Name,
		Tenant: e.Tenant, Subject: e.Subject, Time: now.UTC(), Data: []byte(e.Data),
	})
	var p directPush
	p.Message.Data = base64.StdEncoding.EncodeToString(data)
	p.Message.Attributes = attrs
	p.Message.MessageID = id
	p.Message.PublishTime = now.UTC().Format(time.RFC3339Nano)
	p.Message.OrderingKey = e.Tenant
	p.Subscription = topic.SubscriptionName(cfg.Project, topic.Push(cfg.names().Domain(e.Domain)))
	body, err = json.Marshal(p)
	return "/" + entryPoints[e.Domain], body, err
}

// directPoster posts push bodies to the functions host and retries what it
// does not acknowledge, as Pub/Sub push does: any answer but a 2xx is a
// negative acknowledgement, redelivered after an exponential backoff.
type directPoster struct {
	base       string
	hc         *http.Client
	minBackoff time.Duration
	maxBackoff time.Duration
	retries    atomic.Int64
}

func newDirectPoster(base string, concurrency int) *directPoster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = concurrency, concurrency
	return &directPoster{
		base: base, hc: &http.Client{Transport: tr, Timeout: ackDeadline},
		minBackoff: minBackoff, maxBackoff: maxBackoff,
	}
}

// post delivers body to path until it is acknowledged or ctx ends.
func (d *directPoster) post(ctx context.Context, path string, body []byte) error {
	backoff := d.minBackoff
	var answer error // the last refusal the host answered
	for attempt := 0; ; attempt++ {
		err := d.once(ctx, path, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil && answer != nil {
			// The context ended during the attempt: the host's last
			// answer says more than the cancelled request.
			return errors.Join(ctx.Err(), answer)
		}
		if fault.ErrorCode(err) == fault.Unavailable {
			answer = err
		}
		d.retries.Add(1)
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, d.maxBackoff)
	}
}

// once makes one delivery attempt.
func (d *directPoster) once(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode/100 != 2 {
		return fault.Errorf(fault.Unavailable, "autonomicsctl.directPost", "%s: %d %s", path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// measureDirect posts the load's push bodies straight to the functions
// host, l.Concurrency in flight, one at a time per tenant as an ordered
// subscription delivers them. A decision is done when its function
// acknowledges it; the receipts on autonomics-receipts are counted to
// check that each decision left one. The CPU of procs is measured over
// the phase.
func measureDirect(ctx context.Context, s *stack, l loadConfig, run string, procs []cpuProcess, progress io.Writer) (endToEnd, error) {
	poster := newDirectPoster(s.cfg.functionsURL(), l.Concurrency)
	deliver := func(ctx context.Context, id string, e loadEvent) error {
		path, body, err := directPushBody(s.cfg, id, e, time.Now())
		if err != nil {
			return err
		}
		return poster.post(ctx, path, body)
	}

	fmt.Fprintf(progress, "direct push: warming up the functions host\n")
	for i, e := range warmupEvents(directTenantPrefix + "load-warmup") {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := deliver(wctx, fmt.Sprintf("%s-direct-warmup-%d", run, i), e)
		cancel()
		if err != nil {
			return endToEnd{}, fmt.Errorf("direct warm-up: %w; see %s", err, s.functions.logPath)
		}
	}

	// Receipts: a tracker with room for every event, so that receipts
	// only count and never hold a delivery back.
	tr := newTracker(l.Events, l.Events)
	stopReceiving, recvErr := receiveOutcomes(ctx, s, tr)
	defer stopReceiving()

	fmt.Fprintf(progress, "direct push: %d push bodies over %d tenants to %s, %d in flight (timeout %v)\n",
		l.Events, l.Tenants, s.cfg.functionsURL(), l.Concurrency, l.Timeout)
	lctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()

	var (
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, l.Events)
		failed   int
		last     time.Time
		done     atomic.Int64
		wg       sync.WaitGroup
		slots    = make(chan struct{}, l.Concurrency)
		tenantMu = make([]sync.Mutex, l.Tenants)
		ticker   = time.NewTicker(5 * time.Second)
	)
	defer ticker.Stop()
	before := takeCPUSnapshot(procs)
	begin := time.Now()
dispatching:
	for i := range l.Events {
		select {
		case slots <- struct{}{}:
		case <-lctx.Done():
			break dispatching
		}
		// The dispatcher takes the tenant's lock in event order, so a
		// tenant's events are delivered in order, one at a time.
		t := i % l.Tenants
		tenantMu[t].Lock()
		id := run + "-d-" + strconv.Itoa(i)
		e := loadPlan(i, l.Tenants)
		e.Tenant = directTenantPrefix + e.Tenant
		start := time.Now()
		tr.start(id, start)
		tr.slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			defer tenantMu[t].Unlock()
			err := deliver(lctx, id, e)
			end := time.Now()
			done.Add(1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			lat = append(lat, end.Sub(start))
			if end.After(last) {
				last = end
			}
		})
		select {
		case <-ticker.C:
			fmt.Fprintf(progress, "  %d dispatched, %d decided\n", i+1, done.Load())
		default:
		}
	}
	wg.Wait()
	mu.Lock()
	decided, elapsed := len(lat), last.Sub(begin)
	mu.Unlock()
	after := takeCPUSnapshot(procs)

	// The receipts of the decisions, published after each commit.
	select {
	case <-tr.finished:
	case <-time.After(receiptGrace):
	case <-ctx.Done():
	}
	stopReceiving()
	if err := recvErr(); err != nil {
		return endToEnd{}, err
	}
	cpu := cpuBetween(procs, before, after, decided)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return endToEnd{
		phaseResult:       newPhaseResult(l.Events, lat, elapsed, failed),
		Accepted:          tr.accepted,
		Rejected:          tr.rejected,
		DeadLetters:       tr.dead,
		DuplicateReceipts: tr.dups,
		Retries:           int(poster.retries.Load()),
		MissingReceipts:   l.Events - len(tr.done),
		CPU:               &cpu,
	}, nil
}

// warmupEvents returns one event per domain the load uses, for tenant, so
// that the functions host connects its governors before the clock starts.
func warmupEvents(tenant string) []loadEvent {
	return []loadEvent{
		{Tenant: tenant, Domain: account, Name: evRequested, Subject: def, Data: "{}"},
		{Tenant: tenant, Domain: quota, Name: "limit_set", Subject: "api_calls", Data: `{"limit":10}`},
		{Tenant: tenant, Domain: billing, Name: evUsage, Subject: demoPeriod, Data: `{"meter":"api_calls","quantity":1}`},
	}
}

// receiveOutcomes completes tr's events from the receipts and the dead
// letters until stop is called; wait then returns the receivers' errors.
func receiveOutcomes(ctx context.Context, s *stack, tr *tracker) (stop func(), wait func() error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	errc := make(chan error, 2)
	go func() {
		errc <- pubsub.Receive(rctx, s.pubsub, s.cfg.pullName(pullReceipts), func(_ context.Context, m *ps.Message) {
			at := time.Now()
			m.Ack()
			var r struct {
				ExecutionID string `json:"execution_id"`
				Outcome     string `json:"outcome"`
			}
			if json.Unmarshal(m.Data, &r) == nil {
				tr.complete(r.ExecutionID, r.Outcome, at)
			}
		})
	}()
	go func() {
		errc <- pubsub.Receive(rctx, s.pubsub, s.cfg.pullName(pullDeadLetter), func(_ context.Context, m *ps.Message) {
			m.Ack()
			tr.complete(m.Attributes["ce-id"], "dead", time.Now())
		})
	}()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() {
			cancel()
			var errs []error
			for range 2 {
				if e := <-errc; e != nil {
					errs = append(errs, e)
				}
			}
			err = errors.Join(errs...)
		})
		return err
	}
	return cancel, wait
}
