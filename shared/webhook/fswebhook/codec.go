package fswebhook

import (
	"encoding/json"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/webhook"
)

// ts returns t for a document, nil when it is zero (an absent time).
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

type endpointDoc struct {
	URL            string    `firestore:"url"`
	Kinds          []string  `firestore:"kinds"`
	Secrets        []string  `firestore:"secrets"`
	Disabled       bool      `firestore:"disabled"`
	DisabledReason string    `firestore:"disabled_reason"`
	TimeoutMS      int64     `firestore:"timeout_ms"`
	MaxInFlight    int64     `firestore:"max_in_flight"`
	CreatedAt      time.Time `firestore:"created_at"`
	UpdatedAt      time.Time `firestore:"updated_at"`
}

func endpointData(e webhook.Endpoint) map[string]any {
	return map[string]any{
		"url": e.URL, "kinds": e.Kinds, "secrets": e.Secrets, "disabled": e.Disabled, "disabled_reason": e.DisabledReason,
		"timeout_ms": e.Timeout.Milliseconds(), "max_in_flight": int64(e.MaxInFlight),
		"created_at": ts(e.CreatedAt), "updated_at": ts(e.UpdatedAt),
	}
}

func decodeEndpoint(snap *fs.DocumentSnapshot) (webhook.Endpoint, error) {
	var d endpointDoc
	if err := snap.DataTo(&d); err != nil {
		return webhook.Endpoint{}, fault.Wrap(fault.Internal, "fswebhook.endpoint "+snap.Ref.ID, err)
	}
	return webhook.Endpoint{
		ID: snap.Ref.ID, URL: d.URL, Kinds: d.Kinds, Secrets: d.Secrets, Disabled: d.Disabled, DisabledReason: d.DisabledReason,
		Timeout: time.Duration(d.TimeoutMS) * time.Millisecond, MaxInFlight: int(d.MaxInFlight),
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}, nil
}

type actionDoc struct {
	Kind          string            `firestore:"kind"`
	Domain        string            `firestore:"domain"`
	Source        string            `firestore:"source"`
	Tenant        string            `firestore:"tenant"`
	Subject       string            `firestore:"subject"`
	Time          time.Time         `firestore:"time"`
	Data          []byte            `firestore:"data"`
	CorrelationID string            `firestore:"correlation_id"`
	CausationID   string            `firestore:"causation_id"`
	TraceParent   string            `firestore:"traceparent"`
	MessageID     string            `firestore:"message_id"`
	PublishTime   time.Time         `firestore:"publish_time"`
	Raw           []byte            `firestore:"raw"`
	Attributes    map[string]string `firestore:"attributes"`
	ReceivedAt    time.Time         `firestore:"received_at"`
}

func actionData(a webhook.Action) map[string]any {
	return map[string]any{
		"kind": a.Kind, "domain": string(a.Domain), "source": a.Source, "tenant": a.Tenant, "subject": a.Subject,
		"time": ts(a.Time), "data": []byte(a.Data), "correlation_id": a.CorrelationID, "causation_id": a.CausationID,
		"traceparent": a.TraceParent, "message_id": a.MessageID, "publish_time": ts(a.PublishTime),
		"raw": a.Raw, "attributes": a.Attributes, "received_at": ts(a.ReceivedAt),
	}
}

func decodeAction(snap *fs.DocumentSnapshot) (webhook.Action, error) {
	var d actionDoc
	if err := snap.DataTo(&d); err != nil {
		return webhook.Action{}, fault.Wrap(fault.Internal, "fswebhook.action "+snap.Ref.ID, err)
	}
	var data json.RawMessage
	if len(d.Data) > 0 {
		data = json.RawMessage(d.Data)
	}
	return webhook.Action{
		ID: snap.Ref.ID, Kind: d.Kind, Domain: governor.Domain(d.Domain), Source: d.Source, Tenant: d.Tenant, Subject: d.Subject,
		Time: d.Time.UTC(), Data: data, CorrelationID: d.CorrelationID, CausationID: d.CausationID, TraceParent: d.TraceParent,
		MessageID: d.MessageID, PublishTime: utc(d.PublishTime), Raw: d.Raw, Attributes: d.Attributes, ReceivedAt: utc(d.ReceivedAt),
	}, nil
}

// utc returns t in UTC, the zero time unchanged.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

type deliveryDoc struct {
	ActionID     string    `firestore:"action_id"`
	EndpointID   string    `firestore:"endpoint_id"`
	Tenant       string    `firestore:"tenant"`
	Kind         string    `firestore:"kind"`
	Domain       string    `firestore:"domain"`
	Lane         string    `firestore:"lane"`
	Next         string    `firestore:"next"`
	State        string    `firestore:"state"`
	Due          time.Time `firestore:"due"`
	Held         bool      `firestore:"held"`
	Cycle        int64     `firestore:"cycle"`
	Attempts     int64     `firestore:"attempts"`
	Total        int64     `firestore:"total"`
	FirstAttempt time.Time `firestore:"first_attempt"`
	Lease        string    `firestore:"lease"`
	LeaseStarted time.Time `firestore:"lease_started"`
	LastStatus   int64     `firestore:"last_status"`
	LastError    string    `firestore:"last_error"`
	Failure      string    `firestore:"failure"`
	Reason       string    `firestore:"reason"`
	Reported     bool      `firestore:"reported"`
	ActionTime   time.Time `firestore:"action_time"`
	CreatedAt    time.Time `firestore:"created_at"`
	UpdatedAt    time.Time `firestore:"updated_at"`
	DeliveredAt  time.Time `firestore:"delivered_at"`
}

func deliveryData(d webhook.Delivery) map[string]any {
	m := map[string]any{
		"action_id": d.ActionID, "endpoint_id": d.EndpointID, "tenant": d.Tenant, "kind": d.Kind, "domain": string(d.Domain),
		"lane": d.Lane, "next": d.Next, "state": string(d.State), "due": ts(d.Due), "held": d.Held,
		"cycle": int64(d.Cycle), "attempts": int64(d.Attempts), "total": int64(d.Total), "first_attempt": ts(d.FirstAttempt),
		"lease": d.Lease, "lease_started": ts(d.LeaseStarted), "last_status": int64(d.LastStatus), "last_error": d.LastError,
		"failure": d.Failure, "reason": d.Reason, "reported": d.Reported, "action_time": ts(d.ActionTime),
		"created_at": ts(d.CreatedAt), "updated_at": ts(d.UpdatedAt), "delivered_at": ts(d.DeliveredAt),
	}
	// The query fields exist only while they select the delivery, so
	// that the queries need no composite index.
	if d.State == webhook.Pending && !d.Held && !d.Due.IsZero() {
		m["due_at"] = d.Due.UTC()
	}
	if d.State == webhook.Pending && d.Held {
		m["held_endpoint"] = d.EndpointID
	}
	if d.State == webhook.Failed && !d.Reported {
		m["unreported"] = true
	}
	return m
}

func decodeDelivery(snap *fs.DocumentSnapshot) (webhook.Delivery, error) {
	var d deliveryDoc
	if err := snap.DataTo(&d); err != nil {
		return webhook.Delivery{}, fault.Wrap(fault.Internal, "fswebhook.delivery "+snap.Ref.ID, err)
	}
	return webhook.Delivery{
		ID: snap.Ref.ID, ActionID: d.ActionID, EndpointID: d.EndpointID, Tenant: d.Tenant, Kind: d.Kind, Domain: governor.Domain(d.Domain),
		Lane: d.Lane, Next: d.Next, State: webhook.State(d.State), Due: utc(d.Due), Held: d.Held,
		Cycle: int(d.Cycle), Attempts: int(d.Attempts), Total: int(d.Total), FirstAttempt: utc(d.FirstAttempt),
		Lease: d.Lease, LeaseStarted: utc(d.LeaseStarted), LastStatus: int(d.LastStatus), LastError: d.LastError,
		Failure: d.Failure, Reason: d.Reason, Reported: d.Reported, ActionTime: utc(d.ActionTime),
		CreatedAt: utc(d.CreatedAt), UpdatedAt: utc(d.UpdatedAt), DeliveredAt: utc(d.DeliveredAt),
	}, nil
}

type laneDoc struct {
	EndpointID string `firestore:"endpoint_id"`
	Tenant     string `firestore:"tenant"`
	Head       string `firestore:"head"`
	Tail       string `firestore:"tail"`
}

type attemptDoc struct {
	DeliveryID string    `firestore:"delivery_id"`
	ActionID   string    `firestore:"action_id"`
	EndpointID string    `firestore:"endpoint_id"`
	N          int64     `firestore:"n"`
	Cycle      int64     `firestore:"cycle"`
	URL        string    `firestore:"url"`
	StartedAt  time.Time `firestore:"started_at"`
	LatencyMS  float64   `firestore:"latency_ms"`
	Outcome    string    `firestore:"outcome"`
	Status     int64     `firestore:"status"`
	Error      string    `firestore:"error"`
	Response   string    `firestore:"response"`
}

func attemptData(a webhook.Attempt) map[string]any {
	return map[string]any{
		"delivery_id": a.DeliveryID, "action_id": a.ActionID, "endpoint_id": a.EndpointID, "n": int64(a.N), "cycle": int64(a.Cycle),
		"url": a.URL, "started_at": ts(a.StartedAt), "latency_ms": float64(a.Latency.Microseconds()) / 1000,
		"outcome": string(a.Outcome), "status": int64(a.Status), "error": a.Error, "response": a.Response,
	}
}

func decodeAttempt(snap *fs.DocumentSnapshot) (webhook.Attempt, error) {
	var d attemptDoc
	if err := snap.DataTo(&d); err != nil {
		return webhook.Attempt{}, fault.Wrap(fault.Internal, "fswebhook.attempt "+snap.Ref.ID, err)
	}
	return webhook.Attempt{
		DeliveryID: d.DeliveryID, ActionID: d.ActionID, EndpointID: d.EndpointID, N: int(d.N), Cycle: int(d.Cycle),
		URL: d.URL, StartedAt: utc(d.StartedAt), Latency: time.Duration(d.LatencyMS * float64(time.Millisecond)),
		Outcome: webhook.Outcome(d.Outcome), Status: int(d.Status), Error: d.Error, Response: d.Response,
	}, nil
}
