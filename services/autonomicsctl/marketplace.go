package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/services/marketplace/marketplaceenv"
	"github.com/autonomics/autonomics/services/signup/signupenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/marketplace/standin"
	"github.com/autonomics/autonomics/shared/marketplace/usage/scstandin"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/store"
)

// The Marketplace side of the local stack: the Procurement and Service
// Control stand-ins run inside this process on one port, the Marketplace
// and sign-up services as children, and the stand-in publishes its
// notifications to a local topic that stands for the Marketplace's partner
// topic.
const (
	// localProvider is the provider id the stand-in serves.
	localProvider = "demo-provider"
	// localAudience is the provider's domain: the audience of sign-up tokens.
	localAudience = "saas.example.com"
	// localUsageService is the Service Control service usage goes to.
	localUsageService = "demo-saas.gcpmarketplace.example.com"
	// localUsageWindow shortens Marketplace's hourly usage windows so a
	// demo sees them close.
	localUsageWindow = 5 * time.Second
	// partnerTopic is the local stand-in of the Marketplace's topic,
	// before the prefix.
	partnerTopic = "marketplace-partner"
)

// marketplacePort, signupPort and standinPort follow the receiver's.
func (c stackConfig) marketplacePort() int { return c.QueryPort + 6 }
func (c stackConfig) signupPort() int      { return c.QueryPort + 7 }
func (c stackConfig) standinPort() int     { return c.QueryPort + 8 }

// partnerTopic returns the local partner topic.
func (c stackConfig) partnerTopic() string { return c.TopicPrefix + partnerTopic }

// marketplacePushSubscriptions feed the partner topic to the adapter
// (unordered, as Marketplace publishes) and the actions to the
// Procurement actuator (ordered by tenant). The emulator does not filter,
// so the actuator sees every action and ignores those not marketplace.*.
func (c stackConfig) marketplacePushSubscriptions() []pubsub.Subscription {
	url := serviceURL(c.marketplacePort())
	a := c.names().Actions()
	return []pubsub.Subscription{
		{Name: c.partnerTopic() + "-push", Topic: c.partnerTopic(), PushEndpoint: url + "/v1/notifications/push",
			AckDeadline: ackDeadline, MinBackoff: minBackoff, MaxBackoff: maxBackoff},
		{Name: a + "-marketplace-push", Topic: a, PushEndpoint: url + "/v1/actions/push",
			Ordered: true, AckDeadline: ackDeadline, MinBackoff: minBackoff, MaxBackoff: maxBackoff},
	}
}

// marketplaceEnv is the Marketplace service's environment beyond the
// stack's: the stand-ins as endpoints, short windows and retries.
func (c stackConfig) marketplaceEnv() []string {
	base := serviceURL(c.standinPort()) + "/"
	return []string{
		platform.EnvMarketplaceProvider + "=" + localProvider,
		marketplaceenv.ProcurementEndpoint + "=" + base,
		marketplaceenv.ServiceControlEndpoint + "=" + base,
		marketplaceenv.Service + "=" + localUsageService,
		marketplaceenv.UsageWindow + "=" + localUsageWindow.String(),
		// Only api_calls is priced by usage; seats is a plan limit.
		marketplaceenv.UsageMetrics + `={"api_calls":"` + localUsageServiceMetric() + `"}`,
		marketplaceenv.GiveUpAfter + "=2m",
	}
}

// signupEnv is the sign-up service's environment beyond the stack's.
func (c stackConfig) signupEnv() []string {
	return []string{
		platform.EnvMarketplaceProvider + "=" + localProvider,
		signupenv.Audience + "=" + localAudience,
		signupenv.Issuer + "=" + standin.IssuerURL(serviceURL(c.standinPort())),
	}
}

// marketplaceSide is the running Marketplace side.
type marketplaceSide struct {
	// Procurement and ServiceControl are the stand-ins: the demo drives
	// the buyer's side through Procurement and reads both call logs.
	Procurement    *standin.Server
	ServiceControl *scstandin.StandIn
	srv            *http.Server
	pub            *pubsub.Publisher
	marketplace    *child
	signup         *child
}

// startMarketplace starts the stand-ins and the two services.
func (s *stack) startMarketplace(ctx context.Context, runDir string) error {
	const op = "autonomicsctl.startMarketplace"
	cfg := s.cfg
	m := &marketplaceSide{pub: pubsub.NewPublisher(s.pubsub, pubsub.PublisherOptions{})}
	s.market = m
	proc, err := standin.New(standin.Options{
		Provider: localProvider,
		Notify: func(ctx context.Context, data []byte) error {
			return m.pub.Publish(ctx, store.Message{Topic: cfg.partnerTopic(), Data: data})
		},
	})
	if err != nil {
		return err
	}
	proc.SetIssuer(standin.IssuerURL(serviceURL(cfg.standinPort())))
	m.Procurement = proc
	m.ServiceControl = scstandin.New(scstandin.Options{Services: []string{localUsageService}})
	mux := http.NewServeMux()
	mux.Handle("/v1/services/", m.ServiceControl.Handler())
	mux.Handle("/", proc.Handler())
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.standinPort())))
	if err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.failed <- fault.Wrap(fault.Unavailable, op+" stand-in", err):
			default:
			}
		}
	}()
	m.marketplace, err = startChild("marketplace", filepath.Join(cfg.Root, "bin", "marketplace"), nil, cfg.Root,
		append(cfg.childEnv(cfg.marketplacePort()), cfg.marketplaceEnv()...),
		filepath.Join(runDir, "marketplace.log"), s.failed)
	if err != nil {
		return err
	}
	m.signup, err = startChild("signup", filepath.Join(cfg.Root, "bin", "signup"), nil, cfg.Root,
		append(cfg.childEnv(cfg.signupPort()), cfg.signupEnv()...),
		filepath.Join(runDir, "signup.log"), s.failed)
	return err
}

// stop stops the services and the stand-ins.
func (m *marketplaceSide) stop() {
	for _, c := range []*child{m.marketplace, m.signup} {
		if c != nil {
			c.stop()
		}
	}
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.srv.Shutdown(ctx)
	}
	m.pub.Close()
}

// describe prints the Marketplace side.
func (m *marketplaceSide) describe(w io.Writer, c stackConfig) {
	fmt.Fprintf(w, "  marketplace         %s  pid %d  log %s  (provider %s)\n", serviceURL(c.marketplacePort()),
		m.marketplace.pid(), rel(c.Root, m.marketplace.logPath), localProvider)
	fmt.Fprintf(w, "  sign-up             %s/signup  pid %d  log %s  (audience %s)\n", serviceURL(c.signupPort()),
		m.signup.pid(), rel(c.Root, m.signup.logPath), localAudience)
	fmt.Fprintf(w, "  stand-ins           %s  Procurement API, Service Control (%s), sign-up keys at %s\n",
		serviceURL(c.standinPort()), localUsageService, standin.CertPath)
	fmt.Fprintf(w, "  partner topic       %s (stands for Marketplace's topic)\n", c.partnerTopic())
}
