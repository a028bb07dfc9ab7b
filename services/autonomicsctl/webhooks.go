package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/autonomics/autonomics/services/actuator/actuatorenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/pubsub"
)

// The local stack's webhook endpoints: the receiver serves each at
// /hooks/{id}, and the stack registers each with the actuator.
const (
	// endpointProvider is the provider's systems: every action kind.
	endpointProvider = "provider"
	// endpointBilling is the provider's billing system, which is flaky:
	// it answers 503 to the first flakyFailures attempts of each action.
	endpointBilling = "billing"
	flakyFailures   = 2
	// flakyKind is the action kind the billing endpoint receives.
	flakyKind = "billing.issue_invoice"
)

// stackEndpoint is one of the stack's webhook endpoints.
type stackEndpoint struct {
	ID        string
	Kinds     []string
	FailFirst int
}

// stackEndpoints are the endpoints the stack registers, in display order.
var stackEndpoints = []stackEndpoint{
	{ID: endpointProvider, Kinds: []string{"*"}},
	{ID: endpointBilling, Kinds: []string{flakyKind}, FailFirst: flakyFailures},
}

// provisionerKeyID is the id of the provisioner's HMAC key.
const provisionerKeyID = "provisioner-1"

// Files the stack writes into .run/ on every start. The keys and secrets
// are new each time and readable by the owner only.
const (
	producersFile = "ingest-producers.json"
	hmacKeysFile  = "ingest-hmac-keys.json"
	receiverFile  = "receiver.json"
)

// Settings of the actuator in the local stack: its own sweep every second
// instead of Cloud Scheduler, and retries after about 1s, 3s, 9s, … for
// ten minutes, so that a flaky endpoint recovers within a demo.
var actuatorEnv = []string{
	actuatorenv.AllowLoopback + "=true",
	actuatorenv.InlineSecrets + "=true",
	actuatorenv.SweepInterval + "=1s",
	actuatorenv.RetryInitial + "=1s",
	actuatorenv.RetryMaxAge + "=10m",
}

// actuatorPort, ingestPort and receiverPort follow the monitor's port.
func (c stackConfig) actuatorPort() int { return c.QueryPort + 3 }
func (c stackConfig) ingestPort() int   { return c.QueryPort + 4 }
func (c stackConfig) receiverPort() int { return c.QueryPort + 5 }

// hookURL returns the receiver's URL of an endpoint.
func (c stackConfig) hookURL(endpoint string) string {
	return serviceURL(c.receiverPort()) + "/hooks/" + endpoint
}

// actuatorPushSubscription delivers every action to the actuator, a
// tenant's in publish order, as in production. Like the domain
// subscriptions it has no dead-letter policy (the emulator crashes when it
// dead-letters on an ordered subscription).
func (c stackConfig) actuatorPushSubscription() pubsub.Subscription {
	t := c.names().Actions()
	return pubsub.Subscription{
		Name: t + "-actuator-push", Topic: t, PushEndpoint: serviceURL(c.actuatorPort()) + "/v1/actions/push",
		Ordered: true, AckDeadline: ackDeadline, MinBackoff: minBackoff, MaxBackoff: maxBackoff,
	}
}

// producerRules returns the ingest API's producer rules: the provider's
// provisioning system, which reports multi_tenant.provisioned for any
// tenant, signing with provisionerKeyID.
func producerRules() []byte {
	b, _ := json.Marshal([]map[string]any{{
		"name": provisionerName, "class": "external", "key_ids": []string{provisionerKeyID},
		"types": []string{provisionedType}, "tenants": []string{"*"}, "rate": 50, "burst": 100,
	}})
	return b
}

// webhookSetup is what the stack generated for the webhooks of one run.
type webhookSetup struct {
	// Secrets are the endpoints' secrets, by endpoint id.
	Secrets map[string]string
	// ProducersFile, KeysFile and ReceiverFile are the files written.
	ProducersFile, KeysFile, ReceiverFile string
}

// writeSecretFile writes data to path readable by the owner only.
func writeSecretFile(path string, data []byte) error {
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fault.Wrap(fault.Internal, "autonomicsctl.writeSecretFile", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fault.Wrap(fault.Internal, "autonomicsctl.writeSecretFile", err)
	}
	return nil
}

// prepareWebhooks generates this run's endpoint secrets and the
// provisioner's HMAC key (with ingest -keygen) and writes the ingest
// API's producer rules and keys and the receiver's configuration into
// runDir.
func prepareWebhooks(ctx context.Context, cfg stackConfig, runDir string) (*webhookSetup, error) {
	const op = "autonomicsctl.prepareWebhooks"
	w := &webhookSetup{
		Secrets:       map[string]string{},
		ProducersFile: filepath.Join(runDir, producersFile),
		KeysFile:      filepath.Join(runDir, hmacKeysFile),
		ReceiverFile:  filepath.Join(runDir, receiverFile),
	}
	rc := receiverConfig{Endpoints: map[string]receiverEndpoint{}}
	for _, e := range stackEndpoints {
		s, err := newWhsec()
		if err != nil {
			return nil, err
		}
		w.Secrets[e.ID] = s
		rc.Endpoints[e.ID] = receiverEndpoint{Secret: s, FailFirst: e.FailFirst}
	}
	var keyOut bytes.Buffer
	gen := exec.CommandContext(ctx, filepath.Join(cfg.Root, "bin", "ingest"), "-keygen")
	gen.Stdout = &keyOut
	if err := gen.Run(); err != nil {
		return nil, fault.Wrap(fault.Internal, op+" ingest -keygen", err)
	}
	key := strings.TrimSpace(keyOut.String())
	rc.Ingest = receiverIngest{URL: serviceURL(cfg.ingestPort()), Producer: provisionerName, KeyID: provisionerKeyID, Key: key}
	if err := rc.check(); err != nil {
		return nil, err
	}
	keys, _ := json.Marshal(map[string]string{provisionerKeyID: key})
	recv, _ := json.MarshalIndent(rc, "", "  ")
	for _, f := range []struct {
		path string
		data []byte
	}{{w.ProducersFile, producerRules()}, {w.KeysFile, keys}, {w.ReceiverFile, recv}} {
		if err := writeSecretFile(f.path, f.data); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// registerEndpoints creates or replaces the stack's endpoints through the
// actuator's API, with this run's secrets, as an operator would.
func registerEndpoints(ctx context.Context, api *apiClient, cfg stackConfig, w *webhookSetup) error {
	for _, e := range stackEndpoints {
		body := map[string]any{"url": cfg.hookURL(e.ID), "kinds": e.Kinds, "secret": w.Secrets[e.ID]}
		if err := api.send(ctx, http.MethodPut, "/v1/endpoints/"+url.PathEscape(e.ID), body, nil); err != nil {
			return err
		}
	}
	return nil
}

// deliveryView is a delivery as GET /v1/actions/{id}/attempts shows it.
type deliveryView struct {
	EndpointID  string `json:"endpoint_id"`
	State       string `json:"state"`
	Cycle       int    `json:"cycle"`
	Attempts    int    `json:"attempts"`
	Reason      string `json:"reason"`
	DeliveredAt string `json:"delivered_at"`
}

// attemptView is an attempt as GET /v1/actions/{id}/attempts shows it.
type attemptView struct {
	EndpointID string  `json:"endpoint_id"`
	N          int     `json:"n"`
	Cycle      int     `json:"cycle"`
	StartedAt  string  `json:"started_at"`
	LatencyMS  float64 `json:"latency_ms"`
	Outcome    string  `json:"outcome"`
	Status     int     `json:"status"`
	Error      string  `json:"error"`
}

// actionHistory is the answer of GET /v1/actions/{id}/attempts.
type actionHistory struct {
	Action struct {
		ID      string `json:"id"`
		Kind    string `json:"kind"`
		Tenant  string `json:"tenant_id"`
		Subject string `json:"subject"`
	} `json:"action"`
	Deliveries []deliveryView `json:"deliveries"`
	Attempts   []attemptView  `json:"attempts"`
}

// delivery returns the delivery to an endpoint, if any.
func (h actionHistory) delivery(endpoint string) (deliveryView, bool) {
	for _, d := range h.Deliveries {
		if d.EndpointID == endpoint {
			return d, true
		}
	}
	return deliveryView{}, false
}

// statuses returns the HTTP statuses of the attempts to an endpoint in
// one cycle, in order; 0 for an attempt without an answer.
func (h actionHistory) statuses(endpoint string, cycle int) []int {
	var out []int
	for _, a := range h.Attempts {
		if a.EndpointID == endpoint && a.Cycle == cycle {
			out = append(out, a.Status)
		}
	}
	return out
}

// Attempts returns the deliveries and attempts of an action.
func (a *apiClient) Attempts(ctx context.Context, actionID string) (actionHistory, error) {
	var h actionHistory
	err := a.get(ctx, "/v1/actions/"+url.PathEscape(actionID)+"/attempts", &h)
	return h, err
}

// redelivered is one entry of POST /v1/actions/{id}/redeliver.
type redelivered struct {
	EndpointID string `json:"endpoint_id"`
	Status     string `json:"status"`
	Cycle      int    `json:"cycle"`
}

// Redeliver queues an action again to an endpoint.
func (a *apiClient) Redeliver(ctx context.Context, actionID, endpoint string) ([]redelivered, error) {
	var out struct {
		Redelivered []redelivered `json:"redelivered"`
	}
	path := "/v1/actions/" + url.PathEscape(actionID) + "/redeliver?endpoint=" + url.QueryEscape(endpoint)
	err := a.send(ctx, http.MethodPost, path, nil, &out)
	return out.Redelivered, err
}

// ReceiverLog reads the receiver's GET /v1/log.
func (a *apiClient) ReceiverLog(ctx context.Context) (receiverLog, error) {
	var l receiverLog
	err := a.get(ctx, "/v1/log", &l)
	return l, err
}

// send sends body (JSON, none when nil) with method and decodes a JSON
// answer of 2xx into v (when not nil).
func (a *apiClient) send(ctx context.Context, method, path string, body, v any) error {
	op := "autonomicsctl." + a.name
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fault.Wrap(fault.Internal, op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fault.Wrap(fault.Invalid, op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.do(req, path, v)
}

// healthy reports whether a service's /healthz answers 200.
func healthy(hc *http.Client, base string) bool {
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// describeWebhooks prints the webhook part of the stack.
func (s *stack) describeWebhooks(w io.Writer) {
	c := s.cfg
	fmt.Fprintf(w, "  actuator            %s  pid %d  log %s  (sweep every 1s, retries from 1s)\n",
		serviceURL(c.actuatorPort()), s.actuator.pid(), rel(c.Root, s.actuator.logPath))
	fmt.Fprintf(w, "  ingest API          %s  pid %d  log %s  (producer %s, HMAC key %s in %s)\n",
		serviceURL(c.ingestPort()), s.ingest.pid(), rel(c.Root, s.ingest.logPath), provisionerName, provisionerKeyID, rel(c.Root, s.webhooks.KeysFile))
	fmt.Fprintf(w, "  webhook receiver    %s  pid %d  log %s  (the provider's systems; GET /v1/log)\n",
		serviceURL(c.receiverPort()), s.receiver.pid(), rel(c.Root, s.receiver.logPath))
	fmt.Fprintf(w, "  webhook endpoints (secrets in %s):\n", rel(c.Root, s.webhooks.ReceiverFile))
	for _, e := range stackEndpoints {
		note := ""
		if e.FailFirst > 0 {
			note = fmt.Sprintf("  (flaky: 503 to the first %d attempts of each action)", e.FailFirst)
		}
		fmt.Fprintf(w, "    %-9s %-40s kinds %s%s\n", e.ID, c.hookURL(e.ID), strings.Join(e.Kinds, ","), note)
	}
}
