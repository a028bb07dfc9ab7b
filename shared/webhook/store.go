package webhook

import (
	"context"
	"errors"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// State is where a delivery is.
type State string

// States of a delivery.
const (
	// Queued: behind an earlier delivery of its lane.
	Queued State = "queued"
	// Pending: the head of its lane, to be attempted at Due (or held while
	// its endpoint is disabled).
	Pending State = "pending"
	// Succeeded: a 2xx answer was recorded.
	Succeeded State = "delivered"
	// Failed: failed for good; Reported once it is dead-lettered and the
	// governor told.
	Failed State = "failed"
)

// Delivery is one action's delivery to one endpoint.
type Delivery struct {
	// ID is DeliveryID(EndpointID, ActionID).
	ID         string
	ActionID   string
	EndpointID string
	Tenant     string
	Kind       string
	Domain     governor.Domain
	// Lane is LaneID(EndpointID, Tenant); Next is the delivery queued
	// behind this one in it, "" for the lane's tail.
	Lane  string
	Next  string
	State State
	// Due is when a pending delivery is attempted next (also the end of an
	// attempt's lease); zero unless pending and not held.
	Due time.Time
	// Held marks a pending delivery whose endpoint is disabled.
	Held bool
	// Cycle counts the times the delivery was queued: 1, plus one per
	// redelivery or replay.
	Cycle int
	// Attempts counts this cycle's attempts, Total every attempt ever
	// (attempt records are numbered by it).
	Attempts int
	Total    int
	// FirstAttempt is when this cycle's first attempt started: retries
	// stop Policy.MaxAge after it.
	FirstAttempt time.Time
	// Lease is the token of the attempt under way, "" when none;
	// LeaseStarted when it started.
	Lease        string
	LeaseStarted time.Time
	// LastStatus and LastError describe the latest attempt's answer.
	LastStatus int
	LastError  string
	// Failure classifies why a failed delivery failed (FailureGone, …)
	// and Reason says it in words.
	Failure  string
	Reason   string
	Reported bool
	// ActionTime is the action's decision time.
	ActionTime time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// DeliveredAt is when a 2xx answer was recorded.
	DeliveredAt time.Time
}

// Classes of Delivery.Failure, also the reason label of MetricFailures.
const (
	FailureGone      = "gone"
	FailurePermanent = "permanent"
	FailureExhausted = "exhausted"
	FailureDeleted   = "endpoint_deleted"
	FailureMissing   = "action_missing"
)

// DeliveryID names the delivery of an action to an endpoint.
func DeliveryID(endpointID, actionID string) string { return endpointID + "~" + actionID }

// LaneID names the lane of an endpoint and tenant.
func LaneID(endpointID, tenant string) string { return endpointID + "~" + tenant }

// Lane orders the deliveries of one endpoint and tenant: Head is the one
// being attempted, Tail the last queued; both "" when the lane is empty.
type Lane struct {
	ID         string
	EndpointID string
	Tenant     string
	Head       string
	Tail       string
}

// Attempt records one attempt of a delivery.
type Attempt struct {
	DeliveryID string
	ActionID   string
	EndpointID string
	// N numbers the delivery's attempts from 1 (Delivery.Total); Cycle is
	// the delivery's cycle at the time.
	N     int
	Cycle int
	// URL is the endpoint's URL at the time.
	URL       string
	StartedAt time.Time
	Latency   time.Duration
	Outcome   Outcome
	// Status is the HTTP status, 0 when none came.
	Status int
	// Error describes a transport error or a refusal.
	Error string
	// Response is the start of the answer's body, at most MaxResponse
	// bytes.
	Response string
}

// MaxResponse bounds the part of an answer's body an attempt records.
const MaxResponse = 1024

// AttemptID names attempt n of a delivery.
func AttemptID(deliveryID string, n int) string {
	const digits = "0123456789"
	b := []byte("000000")
	for i := len(b) - 1; i >= 0 && n > 0; i-- {
		b[i] = digits[n%10]
		n /= 10
	}
	return deliveryID + "~" + string(b)
}

// Store is the storage port of the actuator. Transactions are serialisable
// and retried by the adapter on contention, so f may run more than once;
// f must do every read of its Tx before its first write (Firestore's
// rule), and an adapter refuses a read after a write.
type Store interface {
	RunTx(ctx context.Context, f func(ctx context.Context, tx Tx) error) error
	// Endpoints returns every endpoint, by id.
	Endpoints(ctx context.Context) ([]Endpoint, error)
	// Due returns up to limit pending deliveries that are not held and
	// whose Due is at or before now, earliest first.
	Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// Unreported returns up to limit failed deliveries not yet reported.
	Unreported(ctx context.Context, limit int) ([]Delivery, error)
	// Held returns up to limit held deliveries of an endpoint.
	Held(ctx context.Context, endpointID string, limit int) ([]Delivery, error)
	// DeliveriesOf returns the deliveries of an action, by endpoint id.
	DeliveriesOf(ctx context.Context, actionID string) ([]Delivery, error)
	// AttemptsOf returns the attempts of an action's deliveries, by
	// endpoint id and number.
	AttemptsOf(ctx context.Context, actionID string) ([]Attempt, error)
	// Actions returns up to limit actions whose Time is in [from, to),
	// by time and then id, starting after the action (afterTime, afterID)
	// when afterID is set.
	Actions(ctx context.Context, from, to time.Time, afterTime time.Time, afterID string, limit int) ([]Action, error)
}

// Tx reads and writes inside a transaction. Reads return false when the
// record does not exist.
type Tx interface {
	Endpoint(id string) (Endpoint, bool, error)
	Action(id string) (Action, bool, error)
	Delivery(id string) (Delivery, bool, error)
	Lane(id string) (Lane, bool, error)

	PutEndpoint(e Endpoint) error
	DeleteEndpoint(id string) error
	PutAction(a Action) error
	PutDelivery(d Delivery) error
	PutLane(l Lane) error
	DeleteLane(id string) error
	PutAttempt(a Attempt) error
}

// ErrReadAfterWrite is returned by a Tx read that follows a write.
var ErrReadAfterWrite = errors.New("webhook: transaction read after a write")
