package platform

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/otel"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/telemetry"
	"github.com/autonomics/autonomics/shared/topic"
)

// Runtime holds the connected clients and the engine of one process.
type Runtime struct {
	Config Config
	Logger *slog.Logger
	// Firestore is the client of the governors' database. LedgerFirestore
	// and MonitorFirestore are the clients of the ledger's and the
	// monitor's databases: the same client when the databases are the same.
	Firestore        *fs.Client
	LedgerFirestore  *fs.Client
	MonitorFirestore *fs.Client
	PubSub           *ps.Client
	Store            *firestore.Store
	Publisher        *pubsub.Publisher
	Topics           topic.Names
	Engine           *engine.Engine
	Telemetry        *telemetry.Telemetry
}

// Connect builds the clients and the engine. component names the process
// in its log lines; logs go to w.
func Connect(ctx context.Context, cfg Config, component string, w io.Writer) (*Runtime, error) {
	const op = "platform.Connect"
	log := telemetry.NewLogger(w, telemetry.LogOptions{ProjectID: cfg.ProjectID, Level: cfg.LogLevel, Component: component})
	tel, err := telemetry.Setup(ctx, telemetry.Options{
		Exporter: cfg.Telemetry, ProjectID: cfg.ProjectID, Service: component,
		Writer: w, SampleRatio: cfg.TraceSampleRatio, MetricsAddr: cfg.MetricsAddr,
	})
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op+" telemetry", err)
	}
	// The client libraries (Firestore, Pub/Sub) record their own spans
	// through the global providers, nested under the engine's spans.
	otel.SetTracerProvider(tel.Tracer)
	otel.SetMeterProvider(tel.Meter)
	otel.SetTextMapPropagator(telemetry.Propagator)
	fc, err := fs.NewClientWithDatabase(ctx, cfg.ProjectID, cfg.Database)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, op+" firestore", err)
	}
	clients := map[string]*fs.Client{cfg.Database: fc}
	for _, db := range []string{cfg.LedgerDatabase, cfg.MonitorDatabase} {
		if clients[db] != nil {
			continue
		}
		c, err := fs.NewClientWithDatabase(ctx, cfg.ProjectID, db)
		if err != nil {
			closeAll(clients)
			return nil, fault.Wrap(fault.Unavailable, op+" firestore "+db, err)
		}
		clients[db] = c
	}
	pc, err := ps.NewClient(ctx, cfg.ProjectID)
	if err != nil {
		closeAll(clients)
		return nil, fault.Wrap(fault.Unavailable, op+" pubsub", err)
	}
	rt := &Runtime{
		Config:           cfg,
		Logger:           log,
		Firestore:        fc,
		LedgerFirestore:  clients[cfg.LedgerDatabase],
		MonitorFirestore: clients[cfg.MonitorDatabase],
		PubSub:           pc,
		Store:            firestore.New(fc, firestore.Options{}),
		// A decision waits for its publications: batch for 1ms, not the
		// client's default 10ms.
		Publisher: pubsub.NewPublisher(pc, pubsub.PublisherOptions{DelayThreshold: time.Millisecond}),
		Topics:    topic.Names{Prefix: cfg.TopicPrefix},
		Telemetry: tel,
	}
	rt.Engine, err = engine.New(engine.Options{
		Store:     rt.Store,
		Publisher: rt.Publisher,
		Machines:  machines.New(cfg.Timers),
		Topics:    rt.Topics,
		// Pub/Sub names the subscription that delivered a push: these
		// deliver the internal topics, which only Autonomics publishes to.
		InternalSubscriptions: InternalSubscriptions(cfg.ProjectID, rt.Topics),
		ProviderTenant:        cfg.ProviderTenant,
		PlanOf:                machines.PlanOf,
		DedupTTL:              cfg.DedupTTL,
		Logger:                log,
		TracerProvider:        tel.Tracer,
		MeterProvider:         tel.Meter,
		// Timeouts from test clocks, outside production only.
		TestClock: cfg.TestClock(),
	})
	if err != nil {
		rt.Close()
		return nil, err
	}
	log.Info("connected",
		"project", cfg.ProjectID, "database", cfg.Database,
		"ledger_database", cfg.LedgerDatabase, "monitor_database", cfg.MonitorDatabase,
		"firestore", describeHost(cfg.FirestoreEmulator),
		"pubsub", describeHost(cfg.PubSubEmulator),
		"topic_prefix", cfg.TopicPrefix, "provider_tenant", cfg.ProviderTenant,
		"timer_overrides", FormatTimers(cfg.Timers),
		"environment", environmentName(cfg.Env), "test_clocks", cfg.TestClock(),
		"telemetry", telemetryName(cfg.Telemetry))
	return rt, nil
}

func environmentName(s string) string {
	if s == "" {
		return "unnamed"
	}
	return s
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
	clients := map[string]*fs.Client{}
	if rt.Firestore != nil {
		clients[rt.Config.Database] = rt.Firestore
	}
	if rt.LedgerFirestore != nil {
		clients[rt.Config.LedgerDatabase] = rt.LedgerFirestore
	}
	if rt.MonitorFirestore != nil {
		clients[rt.Config.MonitorDatabase] = rt.MonitorFirestore
	}
	return closeAll(clients)
}

// closeAll closes each distinct client once.
func closeAll(clients map[string]*fs.Client) error {
	var first error
	for _, c := range clients {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
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
