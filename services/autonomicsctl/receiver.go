package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// The receiver stands in for the provider's systems behind its webhook
// endpoints: it verifies every delivery with the reference implementation
// of Standard Webhooks (not Autonomics' own code, so that the two check
// each other), deduplicates by webhook-id, and answers as the provider's
// systems would. On tenant.provision it provisions the tenant and reports
// multi_tenant.provisioned to the ingest API, HMAC-signed, closing the
// loop. An endpoint may be flaky: it answers 503 to the first attempts of
// each action before it answers 200.
//
// Its routes:
//
//	POST /hooks/{endpoint}  a webhook delivery
//	GET  /v1/log            what it received, refused and provisioned
//	GET  /healthz

// Bounds of the receiver.
const (
	// maxHookBody caps a delivery's body; an action's is far smaller.
	maxHookBody = 256 << 10
	// maxReceived bounds the deliveries remembered; the oldest are
	// forgotten first, and with them their deduplication.
	maxReceived = 100_000
	// maxRefused bounds the refused requests remembered.
	maxRefused = 1000
	// ingestTimeout bounds one call to the ingest API.
	ingestTimeout = 10 * time.Second
	// maxIngestEventID bounds the id of an event sent to the ingest API.
	maxIngestEventID = 256
)

// Headers of a request the receiver signs for the ingest API: Standard
// Webhooks' three and the key id.
const (
	headerKeyID           = "autonomics-key-id"
	contentTypeStructured = "application/cloudevents+json"
)

// actionProvision is the action kind the receiver provisions on.
const actionProvision = "tenant.provision"

// provisionedType is the event the provisioner reports.
const provisionedType = "autonomics.multi_tenant.provisioned"

// receiverConfig is the receiver's configuration file, which the stack
// writes into .run/ with mode 0600 on every start.
type receiverConfig struct {
	// Endpoints are served at /hooks/{id}.
	Endpoints map[string]receiverEndpoint `json:"endpoints"`
	// Ingest is where the provisioner reports, and the key it signs with.
	Ingest receiverIngest `json:"ingest"`
}

// receiverEndpoint is one endpoint of the receiver.
type receiverEndpoint struct {
	// Secret verifies its deliveries: "whsec_<base64>".
	Secret string `json:"secret"`
	// FailFirst is how many attempts of each action it answers 503 before
	// it answers 200; 0 for a healthy endpoint.
	FailFirst int `json:"fail_first"`
}

// receiverIngest is the ingest API as the provisioner calls it.
type receiverIngest struct {
	// URL is the ingest API's base URL.
	URL string `json:"url"`
	// Producer is the provisioner's name in the producer rules; the
	// events' source before the ingest API replaces it with its own.
	Producer string `json:"producer"`
	// KeyID and Key are the HMAC key the provisioner signs with.
	KeyID string `json:"key_id"`
	Key   string `json:"key"`
}

// readReceiverConfig reads and checks a receiver configuration file.
func readReceiverConfig(path string) (receiverConfig, error) {
	const op = "autonomicsctl.receiver config"
	b, err := os.ReadFile(path)
	if err != nil {
		return receiverConfig{}, fault.Wrap(fault.Invalid, op, err)
	}
	var c receiverConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return receiverConfig{}, fault.Errorf(fault.Invalid, op, "%s: %v", path, err)
	}
	return c, c.check()
}

// check validates the configuration without quoting a secret.
func (c receiverConfig) check() error {
	const op = "autonomicsctl.receiver config"
	if len(c.Endpoints) == 0 {
		return fault.Errorf(fault.Invalid, op, "no endpoints")
	}
	for id, e := range c.Endpoints {
		if id == "" || strings.ContainsAny(id, "/?#") {
			return fault.Errorf(fault.Invalid, op, "endpoint id %q: want a path segment", id)
		}
		if _, err := decodeWhsec(e.Secret); err != nil {
			return fault.Errorf(fault.Invalid, op, "endpoint %s: %v", id, err)
		}
		if e.FailFirst < 0 {
			return fault.Errorf(fault.Invalid, op, "endpoint %s: fail_first %d is negative", id, e.FailFirst)
		}
	}
	if c.Ingest.URL == "" || c.Ingest.KeyID == "" || c.Ingest.Producer == "" {
		return fault.Errorf(fault.Invalid, op, "ingest: url, producer and key_id are required")
	}
	if _, err := decodeWhsec(c.Ingest.Key); err != nil {
		return fault.Errorf(fault.Invalid, op, "ingest key %s: %v", c.Ingest.KeyID, err)
	}
	return nil
}

// decodeWhsec decodes a "whsec_<base64>" secret of 24 to 64 bytes. The
// error never quotes the secret.
func decodeWhsec(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`a secret starts with "whsec_"`)
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New(`a secret is "whsec_" and standard base64`)
	}
	if len(k) < 24 || len(k) > 64 {
		return nil, fmt.Errorf("a secret's key is 24 to 64 bytes, this one %d", len(k))
	}
	return k, nil
}

// newWhsec returns a new random secret of 32 bytes, "whsec_<base64>".
func newWhsec() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fault.Wrap(fault.Internal, "autonomicsctl.newWhsec", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:]), nil
}

// hookPayload is the part of a delivery's body the receiver reads.
type hookPayload struct {
	Type        string          `json:"type"`
	Timestamp   string          `json:"timestamp"`
	Data        json.RawMessage `json:"data"`
	ActionID    string          `json:"action_id"`
	TenantID    string          `json:"tenant_id"`
	Domain      string          `json:"domain"`
	Subject     string          `json:"subject"`
	ReceiptHash string          `json:"receipt_hash"`
}

// hookRequest is one verified request for an action, as answered.
type hookRequest struct {
	At time.Time `json:"at"`
	// Timestamp is the request's webhook-timestamp.
	Timestamp string `json:"webhook_timestamp"`
	// Verified is always true: a request whose signature does not verify
	// is refused, and recorded apart.
	Verified bool   `json:"verified"`
	Status   int    `json:"status"`
	Note     string `json:"note,omitempty"`
}

// provisioning is what the provisioner did for a tenant.provision.
type provisioning struct {
	At     time.Time `json:"at"`
	Tenant string    `json:"tenant_id"`
	// EventID is the id of the multi_tenant.provisioned event sent to
	// the ingest API, derived from the action id so that a retry sends
	// the same event.
	EventID string `json:"event_id"`
	// Status is the ingest API's HTTP status; Source the source it
	// published the event with.
	Status int    `json:"status"`
	Source string `json:"source,omitempty"`
}

// receivedAction is an action one endpoint received, once per webhook-id.
type receivedAction struct {
	Endpoint  string `json:"endpoint"`
	WebhookID string `json:"webhook_id"`
	Kind      string `json:"kind"`
	Tenant    string `json:"tenant_id"`
	Subject   string `json:"subject"`
	// Requests are every verified request for it, in order.
	Requests []hookRequest `json:"requests"`
	// Delivered counts the requests answered 2xx: more than one is a
	// redelivery, acknowledged without acting again.
	Delivered int `json:"delivered"`
	// Provisioned is set once the provisioner has reported it.
	Provisioned *provisioning `json:"provisioned,omitempty"`

	mu sync.Mutex
}

// refusal is a request whose signature did not verify.
type refusal struct {
	At        time.Time `json:"at"`
	Endpoint  string    `json:"endpoint"`
	WebhookID string    `json:"webhook_id"`
	Reason    string    `json:"reason"`
}

// receiverLog is the answer of GET /v1/log.
type receiverLog struct {
	Received []*receivedAction `json:"received"`
	Refused  []refusal         `json:"refused"`
}

// hookEndpoint is an endpoint with its verifier.
type hookEndpoint struct {
	id        string
	wh        *standardwebhooks.Webhook
	failFirst int
}

// receivedKey names an action received by an endpoint.
type receivedKey struct{ endpoint, id string }

// receiver serves the endpoints.
type receiver struct {
	endpoints map[string]*hookEndpoint
	ingest    receiverIngest
	signer    *standardwebhooks.Webhook
	http      *http.Client
	log       *slog.Logger
	now       func() time.Time

	mu       sync.Mutex
	received map[receivedKey]*receivedAction
	order    []receivedKey
	refused  []refusal
}

// newReceiver builds a receiver from a checked configuration.
func newReceiver(c receiverConfig, log *slog.Logger) (*receiver, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	r := &receiver{
		endpoints: map[string]*hookEndpoint{}, ingest: c.Ingest,
		http: &http.Client{Timeout: ingestTimeout}, log: log, now: time.Now,
		received: map[receivedKey]*receivedAction{},
	}
	for id, e := range c.Endpoints {
		wh, err := standardwebhooks.NewWebhook(e.Secret)
		if err != nil {
			return nil, fault.Errorf(fault.Invalid, "autonomicsctl.receiver", "endpoint %s: the secret does not decode", id)
		}
		r.endpoints[id] = &hookEndpoint{id: id, wh: wh, failFirst: e.FailFirst}
	}
	signer, err := standardwebhooks.NewWebhook(c.Ingest.Key)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "autonomicsctl.receiver", "ingest key %s does not decode", c.Ingest.KeyID)
	}
	r.signer = signer
	return r, nil
}

// handler returns the receiver's routes.
func (r *receiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{endpoint}", r.hook)
	mux.HandleFunc("GET /v1/log", r.serveLog)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// answer writes a JSON answer.
func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// hook receives one delivery.
func (r *receiver) hook(w http.ResponseWriter, req *http.Request) {
	ep, ok := r.endpoints[req.PathValue("endpoint")]
	if !ok {
		answer(w, http.StatusNotFound, map[string]string{"error": "no such endpoint"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxHookBody))
	if err != nil {
		answer(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large or unreadable"})
		return
	}
	id := req.Header.Get(standardwebhooks.HeaderWebhookID)
	// The raw body, before anything parses it.
	if err := ep.wh.Verify(body, req.Header); err != nil {
		r.refuse(ep.id, id, err)
		answer(w, http.StatusUnauthorized, map[string]string{"error": "signature does not verify"})
		return
	}
	var p hookPayload
	if err := json.Unmarshal(body, &p); err != nil || p.ActionID != id || p.Type == "" || p.TenantID == "" {
		// Signed but not an action: a permanent refusal.
		answer(w, http.StatusBadRequest, map[string]string{"error": "not an action of Autonomics (or action_id differs from webhook-id)"})
		return
	}
	ra := r.entry(ep.id, p)
	ra.mu.Lock()
	status, note := r.respond(req.Context(), ep, ra, p)
	ra.Requests = append(ra.Requests, hookRequest{
		At: r.now().UTC(), Timestamp: req.Header.Get(standardwebhooks.HeaderWebhookTimestamp), Verified: true, Status: status, Note: note,
	})
	if status/100 == 2 {
		ra.Delivered++
	}
	n, delivered := len(ra.Requests), ra.Delivered
	ra.mu.Unlock()
	r.log.Info("webhook", "endpoint", ep.id, "webhook_id", id, "kind", p.Type, "tenant", p.TenantID,
		"subject", p.Subject, "request", n, "status", status, "note", note)
	answer(w, status, map[string]any{"status": note, "webhook_id": id, "requests": n, "delivered": delivered})
}

// respond decides the answer to a verified request of ra: a flaky
// endpoint's outage, a duplicate, or the action acted on. It runs with
// ra locked.
func (r *receiver) respond(ctx context.Context, ep *hookEndpoint, ra *receivedAction, p hookPayload) (int, string) {
	switch {
	case len(ra.Requests) < ep.failFirst:
		return http.StatusServiceUnavailable, fmt.Sprintf("simulated outage (%d of %d)", len(ra.Requests)+1, ep.failFirst)
	case ra.Delivered > 0:
		return http.StatusOK, "duplicate"
	case p.Type == actionProvision:
		prov, err := r.provision(ctx, p)
		if err != nil {
			r.log.Warn("provisioning not reported; the actuator retries", "tenant", p.TenantID, "webhook_id", p.ActionID, "error", err.Error())
			return http.StatusBadGateway, "ingest API: " + err.Error()
		}
		ra.Provisioned = &prov
		return http.StatusOK, "provisioned"
	}
	return http.StatusOK, "received"
}

// entry returns the record of an action received by endpoint, creating
// it (and forgetting the oldest beyond maxReceived).
func (r *receiver) entry(endpoint string, p hookPayload) *receivedAction {
	k := receivedKey{endpoint, p.ActionID}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ra, ok := r.received[k]; ok {
		return ra
	}
	ra := &receivedAction{Endpoint: endpoint, WebhookID: p.ActionID, Kind: p.Type, Tenant: p.TenantID, Subject: p.Subject}
	r.received[k] = ra
	r.order = append(r.order, k)
	if len(r.order) > maxReceived {
		delete(r.received, r.order[0])
		r.order = r.order[1:]
	}
	return ra
}

// refuse records a request whose signature did not verify.
func (r *receiver) refuse(endpoint, id string, err error) {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	r.log.Warn("webhook refused", "endpoint", endpoint, "webhook_id", id, "error", err.Error())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, refusal{At: r.now().UTC(), Endpoint: endpoint, WebhookID: id, Reason: err.Error()})
	if len(r.refused) > maxRefused {
		r.refused = r.refused[len(r.refused)-maxRefused:]
	}
}

// serveLog answers GET /v1/log.
func (r *receiver) serveLog(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	out := receiverLog{Received: make([]*receivedAction, 0, len(r.order)), Refused: slices.Clone(r.refused)}
	entries := make([]*receivedAction, 0, len(r.order))
	for _, k := range r.order {
		entries = append(entries, r.received[k])
	}
	r.mu.Unlock()
	if out.Refused == nil {
		out.Refused = []refusal{}
	}
	for _, ra := range entries {
		ra.mu.Lock()
		c := &receivedAction{
			Endpoint: ra.Endpoint, WebhookID: ra.WebhookID, Kind: ra.Kind, Tenant: ra.Tenant, Subject: ra.Subject,
			Requests: slices.Clone(ra.Requests), Delivered: ra.Delivered, Provisioned: ra.Provisioned,
		}
		ra.mu.Unlock()
		out.Received = append(out.Received, c)
	}
	answer(w, http.StatusOK, out)
}

// ingestEvent is a structured-mode CloudEvent for the ingest API.
type ingestEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	TenantID        string          `json:"tenantid"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// ingestResult is the ingest API's answer to one event.
type ingestResult struct {
	Status string `json:"status"`
	ID     string `json:"id"`
	Source string `json:"source"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// provisionedEventID returns the id of the provisioned event answering
// action id: the same on every retry, so that the governor applies it
// once.
func provisionedEventID(actionID string) string {
	id := "provisioned-" + actionID
	if len(id) > maxIngestEventID {
		sum := sha256.Sum256([]byte(actionID))
		id = "provisioned-" + hex.EncodeToString(sum[:])
	}
	return id
}

// provision provisions p's tenant (here: records it) and reports
// multi_tenant.provisioned to the ingest API, structured mode, signed
// with the provisioner's HMAC key.
func (r *receiver) provision(ctx context.Context, p hookPayload) (provisioning, error) {
	now := r.now().UTC()
	ev := ingestEvent{
		SpecVersion: "1.0", ID: provisionedEventID(p.ActionID), Source: r.ingest.Producer, Type: provisionedType,
		TenantID: p.TenantID, Subject: governor.DefaultSubject, Time: now.Format(time.RFC3339Nano),
		DataContentType: "application/json", Data: json.RawMessage(`{}`),
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return provisioning{}, err
	}
	status, res, err := r.postSigned(ctx, body, now)
	if err != nil {
		return provisioning{}, err
	}
	if status != http.StatusAccepted || res.Status != "accepted" {
		msg := res.Status
		if res.Error != nil {
			msg = res.Error.Code + ": " + res.Error.Message
		}
		return provisioning{}, fmt.Errorf("answered %d %s", status, msg)
	}
	return provisioning{At: now, Tenant: p.TenantID, EventID: ev.ID, Status: status, Source: res.Source}, nil
}

// postSigned POSTs one structured event to the ingest API, signed: a new
// webhook-id per request (the ingest API accepts each once), the
// timestamp, the signature of the exact bytes sent, and the key id.
func (r *receiver) postSigned(ctx context.Context, body []byte, now time.Time) (int, ingestResult, error) {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return 0, ingestResult{}, err
	}
	msgID := "msg_" + hex.EncodeToString(nonce[:])
	sig, err := r.signer.Sign(msgID, now, body)
	if err != nil {
		return 0, ingestResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, ingestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(r.ingest.URL, "/")+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, ingestResult{}, err
	}
	req.Header.Set("Content-Type", contentTypeStructured)
	req.Header.Set(standardwebhooks.HeaderWebhookID, msgID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	req.Header.Set(headerKeyID, r.ingest.KeyID)
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, ingestResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, ingestResult{}, err
	}
	var res ingestResult
	if err := json.Unmarshal(b, &res); err != nil {
		return resp.StatusCode, ingestResult{}, fmt.Errorf("answered %d with %d bytes that are no result", resp.StatusCode, len(b))
	}
	return resp.StatusCode, res, nil
}

// receiverOptions is the receiver command's part of the command line.
type receiverOptions struct {
	// Config is the configuration file.
	Config string
	// Addr is the loopback address to bind.
	Addr string
}

// runReceiver serves the receiver until ctx is done, on a loopback address
// only: it stands in for the provider on this machine.
func runReceiver(ctx context.Context, o options, out io.Writer) error {
	const op = "autonomicsctl.receiver"
	c, err := readReceiverConfig(o.receiver.Config)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	r, err := newReceiver(c, log)
	if err != nil {
		return err
	}
	addr := o.receiver.Addr
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fault.Errorf(fault.Invalid, op, "-addr %q: the receiver binds a loopback address only", addr)
	}
	hs := &http.Server{Addr: addr, Handler: r.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	ids := make([]string, 0, len(r.endpoints))
	for id := range r.endpoints {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	log.Info("receiver listening", "addr", addr, "endpoints", strings.Join(ids, ","), "ingest", c.Ingest.URL, "key_id", c.Ingest.KeyID)
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := hs.Shutdown(shutdown); serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	return nil
}
