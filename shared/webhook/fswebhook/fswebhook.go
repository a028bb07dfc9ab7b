// Package fswebhook is the Firestore webhook.Store of the actuator. It
// lives in the monitor's database (platform.Clients.MonitorFirestore),
// apart from governor state, which the actuator never writes: IAM grants
// it no role on the governors' database at all.
//
// Documents, under actuators/{namespace}:
//
//	endpoints/{id}
//	  url, disabled_reason                 string
//	  kinds, secrets                       array of strings
//	  disabled                             boolean
//	  timeout_ms, max_in_flight            integer
//	  created_at, updated_at               timestamp
//	actions/{id}
//	  kind, domain, source, tenant, subject, correlation_id, causation_id,
//	  traceparent, message_id              string
//	  time, publish_time, received_at      timestamp
//	  data, raw                            bytes
//	  attributes                           map of strings
//	  expire_at                            timestamp (TTL policy)
//	deliveries/{endpoint}~{action}
//	  action_id, endpoint_id, tenant, kind, domain, lane, next, state,
//	  lease, last_error, failure, reason   string
//	  held, reported                       boolean
//	  cycle, attempts, total, last_status  integer
//	  first_attempt, lease_started, action_time, created_at, updated_at,
//	  delivered_at                         timestamp
//	  due_at                               timestamp, only while pending and not held
//	  held_endpoint                        string, only while held
//	  unreported                           true, only while failed and not reported
//	  expire_at                            timestamp, once finished (TTL policy)
//	lanes/{endpoint}~{tenant}
//	  endpoint_id, tenant, head, tail      string
//	attempts/{endpoint}~{action}~{n}
//	  delivery_id, action_id, endpoint_id, url, outcome, error, response  string
//	  n, cycle, status                     integer
//	  latency_ms                           double
//	  started_at                           timestamp
//	  expire_at                            timestamp (TTL policy)
//
// Every query is served by single-field indexes: due_at range and order,
// equality on unreported, held_endpoint and action_id, and the time range
// of actions ordered by time. The TTL policies are on actions.expire_at,
// deliveries.expire_at and attempts.expire_at; actions.data, actions.raw,
// actions.attributes and attempts.response are never queried and are
// exempt from indexing.
package fswebhook

import (
	"context"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore/fserr"
	"github.com/autonomics/autonomics/shared/webhook"
)

// Collection names.
const (
	ColRoot       = "actuators"
	ColEndpoints  = "endpoints"
	ColActions    = "actions"
	ColDeliveries = "deliveries"
	ColLanes      = "lanes"
	ColAttempts   = "attempts"
)

// Defaults of Options.
const (
	DefaultNamespace   = "webhooks"
	DefaultRetention   = 30 * 24 * time.Hour
	DefaultMaxAttempts = 30
)

// Options configure a Store.
type Options struct {
	// Namespace separates actuators sharing a database; DefaultNamespace
	// when empty.
	Namespace string
	// Retention is how long actions, finished deliveries and attempts are
	// kept before the TTL policies delete them; DefaultRetention when 0.
	Retention time.Duration
	// MaxAttempts bounds transaction attempts on contention.
	MaxAttempts int
}

// Store is the Firestore webhook.Store.
type Store struct {
	c    *fs.Client
	root *fs.DocumentRef
	o    Options
}

var _ webhook.Store = (*Store)(nil)

// New returns a Store using client, the client of the monitor's database.
func New(client *fs.Client, o Options) (*Store, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if webhook.ValidEndpointID(o.Namespace) != nil {
		return nil, fault.Errorf(fault.Invalid, "fswebhook.New", "namespace %q: want 1 to 63 of [a-z0-9_-]", o.Namespace)
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	return &Store{c: client, root: client.Collection(ColRoot).Doc(o.Namespace), o: o}, nil
}

func (s *Store) col(name string) *fs.CollectionRef { return s.root.Collection(name) }

// Ping reads the endpoint collection: a health check.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.col(ColEndpoints).Limit(1).Documents(ctx).GetAll()
	return wrap("fswebhook.Ping", err)
}

// wrap is fserr.Wrap.
func wrap(op string, err error) error { return fserr.Wrap(op, err) }

// tx is a webhook.Tx over a Firestore transaction.
type tx struct {
	s      *Store
	t      *fs.Transaction
	wrote  bool
	expire time.Time
}

// RunTx runs f in a Firestore transaction.
func (s *Store) RunTx(ctx context.Context, f func(ctx context.Context, tx webhook.Tx) error) error {
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		return f(ctx, &tx{s: s, t: t, expire: time.Now().Add(s.o.Retention)})
	}, fs.MaxAttempts(s.o.MaxAttempts))
	return wrap("fswebhook.RunTx", err)
}

// get reads one document; false when it does not exist.
func (t *tx) get(col, id string) (*fs.DocumentSnapshot, bool, error) {
	if t.wrote {
		return nil, false, webhook.ErrReadAfterWrite
	}
	snap, err := t.t.Get(t.s.col(col).Doc(id))
	if status.Code(err) == codes.NotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap("fswebhook.get "+col, err)
	}
	return snap, true, nil
}

func (t *tx) set(col, id string, data map[string]any) error {
	t.wrote = true
	return wrap("fswebhook.set "+col, t.t.Set(t.s.col(col).Doc(id), data))
}

func (t *tx) del(col, id string) error {
	t.wrote = true
	return wrap("fswebhook.delete "+col, t.t.Delete(t.s.col(col).Doc(id)))
}

func (t *tx) Endpoint(id string) (webhook.Endpoint, bool, error) {
	snap, ok, err := t.get(ColEndpoints, id)
	if err != nil || !ok {
		return webhook.Endpoint{}, ok, err
	}
	e, err := decodeEndpoint(snap)
	return e, err == nil, err
}

func (t *tx) Action(id string) (webhook.Action, bool, error) {
	snap, ok, err := t.get(ColActions, id)
	if err != nil || !ok {
		return webhook.Action{}, ok, err
	}
	a, err := decodeAction(snap)
	return a, err == nil, err
}

func (t *tx) Delivery(id string) (webhook.Delivery, bool, error) {
	snap, ok, err := t.get(ColDeliveries, id)
	if err != nil || !ok {
		return webhook.Delivery{}, ok, err
	}
	d, err := decodeDelivery(snap)
	return d, err == nil, err
}

func (t *tx) Lane(id string) (webhook.Lane, bool, error) {
	snap, ok, err := t.get(ColLanes, id)
	if err != nil || !ok {
		return webhook.Lane{}, ok, err
	}
	var d laneDoc
	if err := snap.DataTo(&d); err != nil {
		return webhook.Lane{}, false, fault.Wrap(fault.Internal, "fswebhook.Lane "+id, err)
	}
	return webhook.Lane{ID: id, EndpointID: d.EndpointID, Tenant: d.Tenant, Head: d.Head, Tail: d.Tail}, true, nil
}

func (t *tx) PutEndpoint(e webhook.Endpoint) error {
	return t.set(ColEndpoints, e.ID, endpointData(e))
}

func (t *tx) DeleteEndpoint(id string) error { return t.del(ColEndpoints, id) }

func (t *tx) PutAction(a webhook.Action) error {
	m := actionData(a)
	m["expire_at"] = t.expire
	return t.set(ColActions, a.ID, m)
}

func (t *tx) PutDelivery(d webhook.Delivery) error {
	m := deliveryData(d)
	if d.State == webhook.Succeeded || d.State == webhook.Failed {
		m["expire_at"] = t.expire
	}
	return t.set(ColDeliveries, d.ID, m)
}

func (t *tx) PutLane(l webhook.Lane) error {
	return t.set(ColLanes, l.ID, map[string]any{"endpoint_id": l.EndpointID, "tenant": l.Tenant, "head": l.Head, "tail": l.Tail})
}

func (t *tx) DeleteLane(id string) error { return t.del(ColLanes, id) }

func (t *tx) PutAttempt(a webhook.Attempt) error {
	m := attemptData(a)
	m["expire_at"] = t.expire
	return t.set(ColAttempts, webhook.AttemptID(a.DeliveryID, a.N), m)
}

// Endpoints returns every endpoint, by id.
func (s *Store) Endpoints(ctx context.Context) ([]webhook.Endpoint, error) {
	snaps, err := s.col(ColEndpoints).OrderBy(fs.DocumentID, fs.Asc).Documents(ctx).GetAll()
	if err != nil {
		return nil, wrap("fswebhook.Endpoints", err)
	}
	out := make([]webhook.Endpoint, 0, len(snaps))
	for _, snap := range snaps {
		e, err := decodeEndpoint(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// deliveries runs a query of deliveries.
func (s *Store) deliveries(ctx context.Context, op string, q fs.Query) ([]webhook.Delivery, error) {
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]webhook.Delivery, 0, len(snaps))
	for _, snap := range snaps {
		d, err := decodeDelivery(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Due returns the due deliveries, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]webhook.Delivery, error) {
	q := s.col(ColDeliveries).Where("due_at", "<=", now).OrderBy("due_at", fs.Asc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	return s.deliveries(ctx, "fswebhook.Due", q)
}

// Unreported returns failed deliveries not yet reported.
func (s *Store) Unreported(ctx context.Context, limit int) ([]webhook.Delivery, error) {
	q := s.col(ColDeliveries).Where("unreported", "==", true)
	if limit > 0 {
		q = q.Limit(limit)
	}
	return s.deliveries(ctx, "fswebhook.Unreported", q)
}

// Held returns an endpoint's held deliveries.
func (s *Store) Held(ctx context.Context, endpointID string, limit int) ([]webhook.Delivery, error) {
	q := s.col(ColDeliveries).Where("held_endpoint", "==", endpointID)
	if limit > 0 {
		q = q.Limit(limit)
	}
	return s.deliveries(ctx, "fswebhook.Held", q)
}

// DeliveriesOf returns an action's deliveries, by endpoint id.
func (s *Store) DeliveriesOf(ctx context.Context, actionID string) ([]webhook.Delivery, error) {
	return s.deliveries(ctx, "fswebhook.DeliveriesOf", s.col(ColDeliveries).Where("action_id", "==", actionID))
}

// AttemptsOf returns an action's attempts, by endpoint id and number.
func (s *Store) AttemptsOf(ctx context.Context, actionID string) ([]webhook.Attempt, error) {
	snaps, err := s.col(ColAttempts).Where("action_id", "==", actionID).Documents(ctx).GetAll()
	if err != nil {
		return nil, wrap("fswebhook.AttemptsOf", err)
	}
	out := make([]webhook.Attempt, 0, len(snaps))
	for _, snap := range snaps {
		a, err := decodeAttempt(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	// Document ids sort by endpoint, action and zero-padded number.
	return out, nil
}

// Actions returns the actions of a window, by time and id.
func (s *Store) Actions(ctx context.Context, from, to, afterTime time.Time, afterID string, limit int) ([]webhook.Action, error) {
	q := s.col(ColActions).Where("time", ">=", from).Where("time", "<", to).OrderBy("time", fs.Asc).OrderBy(fs.DocumentID, fs.Asc)
	if afterID != "" {
		q = q.StartAfter(afterTime, afterID)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, wrap("fswebhook.Actions", err)
	}
	out := make([]webhook.Action, 0, len(snaps))
	for _, snap := range snaps {
		a, err := decodeAction(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
