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
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/telemetry"
	"github.com/autonomics/autonomics/shared/topic"
)

// Clients are the connected clients of one process, with the
// configuration they were built from, its logger and its telemetry. Every
// process has them; only the processes that decide build the governors'
// engine on them (Governors).
type Clients struct {
	Config Config
	Logger *slog.Logger
	// Firestore is the client of the governors' database. LedgerFirestore
	// and MonitorFirestore are the clients of the ledger's and the
	// monitor's databases: the same client when the databases are the same.
	Firestore        *fs.Client
	LedgerFirestore  *fs.Client
	MonitorFirestore *fs.Client
	PubSub           *ps.Client
	// Store is the governors' store, over Firestore.
	Store     *firestore.Store
	Publisher *pubsub.Publisher
	Topics    topic.Names
	Telemetry *telemetry.Telemetry
}

// Connect sets up telemetry and builds the clients of the three databases
// and of Pub/Sub. component names the process in its log lines; logs go
// to w. It builds no engine: see Governors.
func Connect(ctx context.Context, cfg Config, component string, w io.Writer) (*Clients, error) {
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
		client, err := fs.NewClientWithDatabase(ctx, cfg.ProjectID, db)
		if err != nil {
			closeAll(clients)
			return nil, fault.Wrap(fault.Unavailable, op+" firestore "+db, err)
		}
		clients[db] = client
	}
	pc, err := ps.NewClient(ctx, cfg.ProjectID)
	if err != nil {
		closeAll(clients)
		return nil, fault.Wrap(fault.Unavailable, op+" pubsub", err)
	}
	c := &Clients{
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
	log.Info("connected",
		"project", cfg.ProjectID, "database", cfg.Database,
		"ledger_database", cfg.LedgerDatabase, "monitor_database", cfg.MonitorDatabase,
		"firestore", describeHost(cfg.FirestoreEmulator),
		"pubsub", describeHost(cfg.PubSubEmulator),
		"topic_prefix", cfg.TopicPrefix, "provider_tenant", cfg.ProviderTenant,
		"timer_overrides", FormatTimers(cfg.Timers),
		"environment", environmentName(cfg.Env), "test_clocks", cfg.TestClock(),
		"telemetry", telemetryName(cfg.Telemetry))
	return c, nil
}

// Governors builds the engine that runs the eight governors on c: their
// machines with c's timer overrides, over c's store and publisher, with
// c's logger and telemetry. Only the processes that decide call it (the
// governor functions and the scheduler's, through Lazy); the services
// that only read or publish use the clients alone.
func Governors(c *Clients) (*engine.Engine, error) {
	const op = "platform.Governors"
	if c == nil || c.Store == nil || c.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "clients without a store or a publisher")
	}
	cfg := c.Config
	o := engine.Options{
		Store:     c.Store,
		Publisher: c.Publisher,
		Machines:  machines.New(cfg.Timers),
		Topics:    c.Topics,
		// Pub/Sub names the subscription that delivered a push: these
		// deliver the internal topics, which only Autonomics publishes to.
		InternalSubscriptions: InternalSubscriptions(cfg.ProjectID, c.Topics),
		ProviderTenant:        cfg.ProviderTenant,
		DedupTTL:              cfg.DedupTTL,
		Logger:                c.Logger,
		// Timeouts from test clocks, outside production only.
		TestClock: cfg.TestClock(),
	}
	if c.LedgerFirestore != nil {
		// The ledger the integrator writes, under its default name:
		// a receipt it holds witnesses its decision's delivery.
		o.Witness = ledger.DeliveryWitness{Store: firestore.NewLedger(c.LedgerFirestore, firestore.LedgerOptions{})}
	}
	if c.Telemetry != nil {
		o.TracerProvider, o.MeterProvider = c.Telemetry.Tracer, c.Telemetry.Meter
	}
	return engine.New(o)
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
func (c *Clients) Close() error {
	if c.Telemetry != nil {
		_ = c.Telemetry.Shutdown(context.Background())
	}
	if c.Publisher != nil {
		c.Publisher.Close()
	}
	if c.PubSub != nil {
		c.PubSub.Close()
	}
	clients := map[string]*fs.Client{}
	if c.Firestore != nil {
		clients[c.Config.Database] = c.Firestore
	}
	if c.LedgerFirestore != nil {
		clients[c.Config.LedgerDatabase] = c.LedgerFirestore
	}
	if c.MonitorFirestore != nil {
		clients[c.Config.MonitorDatabase] = c.MonitorFirestore
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

// Lazy connects the clients and builds the governors' engine on first
// use, so that a function instance that cannot reach its dependencies
// fails its requests (and they are retried) rather than its start-up. A
// failed connection is attempted again on the next call.
type Lazy struct {
	getenv    func(string) string
	component string
	w         io.Writer

	mu      sync.Mutex
	clients *Clients
	engine  *engine.Engine
}

// NewLazy returns a Lazy that reads its configuration through getenv.
func NewLazy(getenv func(string) string, component string, w io.Writer) *Lazy {
	return &Lazy{getenv: getenv, component: component, w: w}
}

// Governors returns the governors' engine and the clients it runs on,
// connecting and building it if needed.
func (l *Lazy) Governors(ctx context.Context) (*engine.Engine, *Clients, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.engine != nil {
		return l.engine, l.clients, nil
	}
	cfg, err := FromEnv(l.getenv)
	if err != nil {
		return nil, nil, err
	}
	c, err := Connect(context.WithoutCancel(ctx), cfg, l.component, l.w)
	if err != nil {
		return nil, nil, err
	}
	eng, err := Governors(c)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	l.clients, l.engine = c, eng
	return eng, c, nil
}
