package platform

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/telemetry"
	"github.com/autonomics/autonomics/shared/topic"
)

// Runtime holds the connected clients and the engine of one process.
type Runtime struct {
	Config    Config
	Logger    *slog.Logger
	Firestore *fs.Client
	PubSub    *ps.Client
	Store     *firestore.Store
	Publisher *pubsub.Publisher
	Topics    topic.Names
	Engine    *engine.Engine
	Telemetry *telemetry.Telemetry
}

// Connect builds the clients and the engine. component names the process
// in its log lines; logs go to w.
func Connect(ctx context.Context, cfg Config, component string, w io.Writer) (*Runtime, error) {
	const op = "platform.Connect"
	log := telemetry.NewLogger(w, telemetry.LogOptions{ProjectID: cfg.ProjectID, Level: cfg.LogLevel, Component: component})
	tel, err := telemetry.Setup(ctx, telemetry.Options{
		Exporter: cfg.Telemetry, ProjectID: cfg.ProjectID, Service: component,
		Writer: w, SampleRatio: cfg.TraceSampleRatio,
	})
	if err != nil {
		return nil, governor.Wrap(governor.Invalid, op+" telemetry", err)
	}
	// The client libraries (Firestore, Pub/Sub) record their own spans
	// through the global providers, nested under the engine's spans.
	otel.SetTracerProvider(tel.Tracer)
	otel.SetMeterProvider(tel.Meter)
	otel.SetTextMapPropagator(telemetry.Propagator)
	fc, err := fs.NewClientWithDatabase(ctx, cfg.ProjectID, cfg.Database)
	if err != nil {
		return nil, governor.Wrap(governor.Unavailable, op+" firestore", err)
	}
	pc, err := ps.NewClient(ctx, cfg.ProjectID)
	if err != nil {
		fc.Close()
		return nil, governor.Wrap(governor.Unavailable, op+" pubsub", err)
	}
	rt := &Runtime{
		Config:    cfg,
		Logger:    log,
		Firestore: fc,
		PubSub:    pc,
		Store:     firestore.New(fc, firestore.Options{}),
		// A decision waits for its publications: batch for 1ms, not the
		// client's default 10ms.
		Publisher: pubsub.NewPublisher(pc, pubsub.PublisherOptions{DelayThreshold: time.Millisecond}),
		Topics:    topic.Names{Prefix: cfg.TopicPrefix},
		Telemetry: tel,
	}
	rt.Engine, err = engine.New(engine.Options{
		Store:          rt.Store,
		Publisher:      rt.Publisher,
		Machines:       machines.New(cfg.Timers),
		Topics:         rt.Topics,
		ProviderTenant: cfg.ProviderTenant,
		PlanOf:         machines.PlanOf,
		DedupTTL:       cfg.DedupTTL,
		Logger:         log,
		TracerProvider: tel.Tracer,
		MeterProvider:  tel.Meter,
	})
	if err != nil {
		rt.Close()
		return nil, err
	}
	log.Info("connected",
		"project", cfg.ProjectID, "database", cfg.Database,
		"firestore", describeHost(cfg.FirestoreEmulator),
		"pubsub", describeHost(cfg.PubSubEmulator),
		"topic_prefix", cfg.TopicPrefix, "provider_tenant", cfg.ProviderTenant,
		"timer_overrides", FormatTimers(cfg.Timers),
		"telemetry", telemetryName(cfg.Telemetry))
	return rt, nil
}

func telemetryName(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func describeHost(v string) string {
	if v != "" {
		return "emulator " + v
	}
	return "google cloud"
}

// Close stops publishers, flushes telemetry and closes the clients.
func (rt *Runtime) Close() error {
	if rt.Telemetry != nil {
		_ = rt.Telemetry.Shutdown(context.Background())
	}
	if rt.Publisher != nil {
		rt.Publisher.Close()
	}
	if rt.PubSub != nil {
		rt.PubSub.Close()
	}
	if rt.Firestore != nil {
		return rt.Firestore.Close()
	}
	return nil
}

// Lazy connects on first use, so that a function instance that cannot
// reach its dependencies fails its requests (and they are retried) rather
// than its start-up. A failed connection is attempted again on the next
// call.
type Lazy struct {
	getenv    func(string) string
	component string
	w         io.Writer

	mu sync.Mutex
	rt *Runtime
}

// NewLazy returns a Lazy that reads its configuration through getenv.
func NewLazy(getenv func(string) string, component string, w io.Writer) *Lazy {
	return &Lazy{getenv: getenv, component: component, w: w}
}

// Runtime returns the connected runtime, connecting if needed.
func (l *Lazy) Runtime(ctx context.Context) (*Runtime, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rt != nil {
		return l.rt, nil
	}
	cfg, err := FromEnv(l.getenv)
	if err != nil {
		return nil, err
	}
	rt, err := Connect(context.WithoutCancel(ctx), cfg, l.component, l.w)
	if err != nil {
		return nil, err
	}
	l.rt = rt
	return rt, nil
}

// GovernorFunction returns the CloudEvent handler of a governor function:
// it accepts the messagePublished event that Eventarc or the Functions
// Framework (converting a Pub/Sub push) delivers, and hands the Pub/Sub
// message to the engine.
func (l *Lazy) GovernorFunction(domain governor.Domain) func(context.Context, cloudevents.Event) error {
	return func(ctx context.Context, ce cloudevents.Event) error {
		rt, err := l.Runtime(ctx)
		if err != nil {
			// Configuration errors are logged; returning the error makes
			// Pub/Sub redeliver until the deployment is fixed.
			slog.ErrorContext(ctx, "governor function not configured", "domain", domain, "error", err.Error())
			return err
		}
		// The instance may be frozen once the invocation returns.
		defer func() { _ = rt.Telemetry.Flush(context.WithoutCancel(ctx)) }()
		msg, err := event.ParsePush(ce.Data())
		if err != nil {
			return rt.Engine.DeadLetter(ctx, domain, event.Message{Data: ce.Data(), ID: ce.ID()}, err)
		}
		return rt.Engine.HandleMessage(ctx, domain, msg)
	}
}
