package firestore

import (
	"context"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

// The monitor's documents live under monitors/{namespace}, so that several
// deployments (environments sharing a project, or tests) keep apart:
//
//	monitors/{namespace}/policies/{name}
//	  expr                              string (PromQL, "" for a simple policy)
//	  metric, comparison, severity      string
//	  labels                            map of strings
//	  threshold                         double
//	  for, keep_firing_for, absent_for  string (Go duration, "" for none)
//	monitors/{namespace}/silences/{id}
//	  matchers                          map of strings
//	  starts_at, ends_at, created_at    timestamp
//	  comment                           string
//	monitors/{namespace}/alerts/{fingerprint}
//	  policy, severity, state, reason   string
//	  labels                            map of strings
//	  value                             double
//	  active_at, fired_at, resolved_at, last_notified_at,
//	  keep_firing_since, updated_at     timestamp (absent when unset)
//	  notified                          boolean
//	  outbox                            array of {id, channel, type, tenant,
//	                                    subject string, time timestamp, data bytes}
//	  sent                              array of strings
//	monitors/{namespace}/leases/{name}
//	  holder                            string
//	  expires, acquired_at              timestamp
//
// No query needs a composite index; labels, outbox and sent may be exempted
// from indexing.
const (
	colMonitors     = "monitors"
	colPolicies     = "policies"
	colSilences     = "silences"
	colAlertStates  = "alerts"
	colAlertLeases  = "leases"
	alertCommitSize = 400
)

// AlertStoreOptions configure an AlertStore.
type AlertStoreOptions struct {
	// Namespace separates monitors sharing a database; "default" when empty.
	Namespace string
	// MaxAttempts bounds transaction attempts; 0 means DefaultMaxAttempts.
	MaxAttempts int
}

// AlertStore is the Firestore alerting.Store of the monitor service.
type AlertStore struct {
	c           *fs.Client
	root        *fs.DocumentRef
	maxAttempts int
}

var _ alerting.Store = (*AlertStore)(nil)

// NewAlertStore returns an AlertStore using client, the client of the
// monitor's database (platform.Clients.MonitorFirestore), which may be
// apart from the governors' one.
func NewAlertStore(client *fs.Client, o AlertStoreOptions) (*AlertStore, error) {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if err := alerting.ValidName("monitor namespace", o.Namespace); err != nil {
		return nil, err
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	return &AlertStore{c: client, root: client.Collection(colMonitors).Doc(o.Namespace), maxAttempts: o.MaxAttempts}, nil
}

func (s *AlertStore) col(name string) *fs.CollectionRef { return s.root.Collection(name) }

// alertPolicyDoc is the stored form of a policy; the name is the document id.
type alertPolicyDoc struct {
	Expr          string            `firestore:"expr"`
	Metric        string            `firestore:"metric"`
	Labels        map[string]string `firestore:"labels"`
	Comparison    string            `firestore:"comparison"`
	Threshold     float64           `firestore:"threshold"`
	For           string            `firestore:"for"`
	KeepFiringFor string            `firestore:"keep_firing_for"`
	AbsentFor     string            `firestore:"absent_for"`
	Severity      string            `firestore:"severity"`
}

func alertDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func toAlertPolicyDoc(p alerting.Policy) alertPolicyDoc {
	return alertPolicyDoc{
		Expr: p.Expr, Metric: p.Metric, Labels: p.Labels, Comparison: string(p.Comparison), Threshold: p.Threshold,
		For: alertDuration(p.For), KeepFiringFor: alertDuration(p.KeepFiringFor), AbsentFor: alertDuration(p.AbsentFor),
		Severity: string(p.Severity),
	}
}

func decodeAlertPolicy(snap *fs.DocumentSnapshot) (alerting.Policy, error) {
	const op = "firestore.AlertStore.policy"
	var d alertPolicyDoc
	if err := snap.DataTo(&d); err != nil {
		return alerting.Policy{}, fault.Wrap(fault.Internal, op+" "+snap.Ref.ID, err)
	}
	p := alerting.Policy{
		Name: snap.Ref.ID, Expr: d.Expr, Metric: d.Metric, Labels: d.Labels, Comparison: alerting.Comparison(d.Comparison),
		Threshold: d.Threshold, Severity: alerting.Severity(d.Severity),
	}
	for _, f := range []struct {
		s   string
		dst *time.Duration
	}{{d.For, &p.For}, {d.KeepFiringFor, &p.KeepFiringFor}, {d.AbsentFor, &p.AbsentFor}} {
		if f.s == "" {
			continue
		}
		v, err := time.ParseDuration(f.s)
		if err != nil {
			return alerting.Policy{}, fault.Errorf(fault.Internal, op, "policy %s: stored duration %q: %v", snap.Ref.ID, f.s, err)
		}
		*f.dst = v
	}
	if len(p.Labels) == 0 {
		p.Labels = nil
	}
	return p, nil
}

// alertSilenceDoc is the stored form of a silence; the id is the document id.
type alertSilenceDoc struct {
	Matchers  map[string]string `firestore:"matchers"`
	StartsAt  time.Time         `firestore:"starts_at,omitempty"`
	EndsAt    time.Time         `firestore:"ends_at,omitempty"`
	Comment   string            `firestore:"comment"`
	CreatedAt time.Time         `firestore:"created_at,omitempty"`
}

func decodeAlertSilence(snap *fs.DocumentSnapshot) (alerting.Silence, error) {
	var d alertSilenceDoc
	if err := snap.DataTo(&d); err != nil {
		return alerting.Silence{}, fault.Wrap(fault.Internal, "firestore.AlertStore.silence "+snap.Ref.ID, err)
	}
	return alerting.Silence{
		ID: snap.Ref.ID, Matchers: d.Matchers, StartsAt: alertUTC(d.StartsAt), EndsAt: alertUTC(d.EndsAt),
		Comment: d.Comment, CreatedAt: alertUTC(d.CreatedAt),
	}, nil
}

// alertNotificationDoc is the stored form of an outbox entry.
type alertNotificationDoc struct {
	ID      string    `firestore:"id"`
	Channel string    `firestore:"channel"`
	Type    string    `firestore:"type"`
	Tenant  string    `firestore:"tenant"`
	Subject string    `firestore:"subject"`
	Time    time.Time `firestore:"time,omitempty"`
	Data    []byte    `firestore:"data"`
}

// alertDoc is the stored form of an alert; the fingerprint is the
// document id.
type alertDoc struct {
	Policy          string                 `firestore:"policy"`
	Severity        string                 `firestore:"severity"`
	Labels          map[string]string      `firestore:"labels"`
	State           string                 `firestore:"state"`
	Reason          string                 `firestore:"reason"`
	Value           float64                `firestore:"value"`
	ActiveAt        time.Time              `firestore:"active_at,omitempty"`
	FiredAt         time.Time              `firestore:"fired_at,omitempty"`
	ResolvedAt      time.Time              `firestore:"resolved_at,omitempty"`
	LastNotifiedAt  time.Time              `firestore:"last_notified_at,omitempty"`
	KeepFiringSince time.Time              `firestore:"keep_firing_since,omitempty"`
	Notified        bool                   `firestore:"notified"`
	UpdatedAt       time.Time              `firestore:"updated_at,omitempty"`
	Outbox          []alertNotificationDoc `firestore:"outbox"`
	Sent            []string               `firestore:"sent"`
}

func toAlertDoc(a *alerting.Alert) alertDoc {
	d := alertDoc{
		Policy: a.Policy, Severity: string(a.Severity), Labels: a.Labels, State: string(a.State), Reason: a.Reason,
		Value: a.Value, ActiveAt: a.ActiveAt, FiredAt: a.FiredAt, ResolvedAt: a.ResolvedAt,
		LastNotifiedAt: a.LastNotifiedAt, KeepFiringSince: a.KeepFiringSince, Notified: a.Notified,
		UpdatedAt: a.UpdatedAt, Outbox: []alertNotificationDoc{}, Sent: a.Sent,
	}
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	if d.Sent == nil {
		d.Sent = []string{}
	}
	for _, n := range a.Outbox {
		d.Outbox = append(d.Outbox, alertNotificationDoc{
			ID: n.ID, Channel: string(n.Channel), Type: n.Type, Tenant: n.Tenant, Subject: n.Subject, Time: n.Time, Data: n.Data,
		})
	}
	return d
}

func decodeAlert(snap *fs.DocumentSnapshot) (alerting.Alert, error) {
	var d alertDoc
	if err := snap.DataTo(&d); err != nil {
		return alerting.Alert{}, fault.Wrap(fault.Internal, "firestore.AlertStore.alert "+snap.Ref.ID, err)
	}
	a := alerting.Alert{
		Fingerprint: snap.Ref.ID, Policy: d.Policy, Severity: alerting.Severity(d.Severity), Labels: d.Labels,
		State: alerting.State(d.State), Reason: d.Reason, Value: d.Value,
		ActiveAt: alertUTC(d.ActiveAt), FiredAt: alertUTC(d.FiredAt), ResolvedAt: alertUTC(d.ResolvedAt),
		LastNotifiedAt: alertUTC(d.LastNotifiedAt), KeepFiringSince: alertUTC(d.KeepFiringSince), Notified: d.Notified,
		UpdatedAt: alertUTC(d.UpdatedAt), Sent: d.Sent,
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(a.Sent) == 0 {
		a.Sent = nil
	}
	for _, n := range d.Outbox {
		a.Outbox = append(a.Outbox, alerting.Notification{
			ID: n.ID, Channel: alerting.Channel(n.Channel), Type: n.Type, Tenant: n.Tenant, Subject: n.Subject,
			Time: alertUTC(n.Time), Data: n.Data,
		})
	}
	return a, nil
}

// alertLeaseDoc is the stored form of a lease; the name is the document id.
type alertLeaseDoc struct {
	Holder     string    `firestore:"holder"`
	Expires    time.Time `firestore:"expires"`
	AcquiredAt time.Time `firestore:"acquired_at"`
}

func alertUTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// alertMicros truncates t to the microsecond precision Firestore keeps.
func alertMicros(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// get reads one document, mapping NotFound to a fault.NotFound error
// that names what.
func (s *AlertStore) get(ctx context.Context, op string, ref *fs.DocumentRef, what string) (*fs.DocumentSnapshot, error) {
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, fault.Errorf(fault.NotFound, op, "no %s %q", what, ref.ID)
	}
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return snap, nil
}

// put writes a document in a transaction and reports whether it was new.
func (s *AlertStore) put(ctx context.Context, op string, ref *fs.DocumentRef, doc any) (bool, error) {
	var created bool
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		_, err := t.Get(ref)
		switch {
		case status.Code(err) == codes.NotFound:
			created = true
		case err != nil:
			return err
		default:
			created = false
		}
		return t.Set(ref, doc)
	}, fs.MaxAttempts(s.maxAttempts))
	if err != nil {
		return false, wrapErr(op, err)
	}
	return created, nil
}

// remove deletes a document, NotFound when it does not exist.
func (s *AlertStore) remove(ctx context.Context, op string, ref *fs.DocumentRef, what string) error {
	_, err := ref.Delete(ctx, fs.Exists)
	if status.Code(err) == codes.NotFound {
		return fault.Errorf(fault.NotFound, op, "no %s %q", what, ref.ID)
	}
	return wrapErr(op, err)
}

// listMonitorDocs reads a collection in document id order.
func listMonitorDocs[T any](ctx context.Context, op string, col *fs.CollectionRef, decode func(*fs.DocumentSnapshot) (T, error)) ([]T, error) {
	it := col.OrderBy(fs.DocumentID, fs.Asc).Documents(ctx)
	defer it.Stop()
	out := []T{}
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			return out, nil
		}
		if err != nil {
			return nil, wrapErr(op, err)
		}
		v, err := decode(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// PutPolicy implements alerting.Store.
func (s *AlertStore) PutPolicy(ctx context.Context, p alerting.Policy) (bool, error) {
	if err := p.Validate(); err != nil {
		return false, err
	}
	return s.put(ctx, "firestore.AlertStore.PutPolicy", s.col(colPolicies).Doc(p.Name), toAlertPolicyDoc(p))
}

// Policy implements alerting.Store.
func (s *AlertStore) Policy(ctx context.Context, name string) (alerting.Policy, error) {
	const op = "firestore.AlertStore.Policy"
	if alerting.ValidName("policy name", name) != nil {
		return alerting.Policy{}, fault.Errorf(fault.NotFound, op, "no policy %q", name)
	}
	snap, err := s.get(ctx, op, s.col(colPolicies).Doc(name), "policy")
	if err != nil {
		return alerting.Policy{}, err
	}
	return decodeAlertPolicy(snap)
}

// DeletePolicy implements alerting.Store.
func (s *AlertStore) DeletePolicy(ctx context.Context, name string) error {
	const op = "firestore.AlertStore.DeletePolicy"
	if alerting.ValidName("policy name", name) != nil {
		return fault.Errorf(fault.NotFound, op, "no policy %q", name)
	}
	return s.remove(ctx, op, s.col(colPolicies).Doc(name), "policy")
}

// Policies implements alerting.Store.
func (s *AlertStore) Policies(ctx context.Context) ([]alerting.Policy, error) {
	return listMonitorDocs(ctx, "firestore.AlertStore.Policies", s.col(colPolicies), decodeAlertPolicy)
}

// PutSilence implements alerting.Store.
func (s *AlertStore) PutSilence(ctx context.Context, sl alerting.Silence) (bool, error) {
	if err := alerting.ValidName("silence id", sl.ID); err != nil {
		return false, err
	}
	doc := alertSilenceDoc{Matchers: sl.Matchers, StartsAt: sl.StartsAt, EndsAt: sl.EndsAt, Comment: sl.Comment, CreatedAt: sl.CreatedAt}
	if doc.Matchers == nil {
		doc.Matchers = map[string]string{}
	}
	return s.put(ctx, "firestore.AlertStore.PutSilence", s.col(colSilences).Doc(sl.ID), doc)
}

// Silence implements alerting.Store.
func (s *AlertStore) Silence(ctx context.Context, id string) (alerting.Silence, error) {
	const op = "firestore.AlertStore.Silence"
	if alerting.ValidName("silence id", id) != nil {
		return alerting.Silence{}, fault.Errorf(fault.NotFound, op, "no silence %q", id)
	}
	snap, err := s.get(ctx, op, s.col(colSilences).Doc(id), "silence")
	if err != nil {
		return alerting.Silence{}, err
	}
	return decodeAlertSilence(snap)
}

// DeleteSilence implements alerting.Store.
func (s *AlertStore) DeleteSilence(ctx context.Context, id string) error {
	const op = "firestore.AlertStore.DeleteSilence"
	if alerting.ValidName("silence id", id) != nil {
		return fault.Errorf(fault.NotFound, op, "no silence %q", id)
	}
	return s.remove(ctx, op, s.col(colSilences).Doc(id), "silence")
}

// Silences implements alerting.Store.
func (s *AlertStore) Silences(ctx context.Context) ([]alerting.Silence, error) {
	return listMonitorDocs(ctx, "firestore.AlertStore.Silences", s.col(colSilences), decodeAlertSilence)
}

// Alerts implements alerting.Store.
func (s *AlertStore) Alerts(ctx context.Context) ([]alerting.Alert, error) {
	return listMonitorDocs(ctx, "firestore.AlertStore.Alerts", s.col(colAlertStates), decodeAlert)
}

// Alert implements alerting.Store.
func (s *AlertStore) Alert(ctx context.Context, fp string) (alerting.Alert, error) {
	const op = "firestore.AlertStore.Alert"
	probe := alerting.Alert{Fingerprint: fp, Policy: "p", State: alerting.Pending}
	if probe.Validate() != nil {
		return alerting.Alert{}, fault.Errorf(fault.NotFound, op, "no alert %q", fp)
	}
	snap, err := s.get(ctx, op, s.col(colAlertStates).Doc(fp), "alert")
	if err != nil {
		return alerting.Alert{}, err
	}
	return decodeAlert(snap)
}

// checkFence reads the lease in t and refuses the commit unless f holds it.
func (s *AlertStore) checkFence(t *fs.Transaction, op string, f alerting.Fence) error {
	snap, err := t.Get(s.col(colAlertLeases).Doc(f.Lease))
	var l alerting.Lease
	switch {
	case status.Code(err) == codes.NotFound:
	case err != nil:
		return err
	default:
		if l, err = decodeAlertLease(snap); err != nil {
			return err
		}
	}
	if !l.HeldBy(f.Holder, f.Now) {
		return fault.Errorf(fault.Conflict, op, "lease %q is not held by %q at %s (holder %q until %s)",
			f.Lease, f.Holder, f.Now.UTC().Format(time.RFC3339Nano), l.Holder, l.Expires.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// CommitAlerts implements alerting.Store: the writes go in transactions
// of up to 400 documents, each of which first reads the lease.
func (s *AlertStore) CommitAlerts(ctx context.Context, f alerting.Fence, put []alerting.Alert, del []string) error {
	const op = "firestore.AlertStore.CommitAlerts"
	if alerting.ValidName("lease name", f.Lease) != nil {
		return fault.Errorf(fault.Conflict, op, "lease %q does not exist", f.Lease)
	}
	for i := range put {
		if err := put[i].Validate(); err != nil {
			return err
		}
	}
	var valid []string
	for _, fp := range del {
		probe := alerting.Alert{Fingerprint: fp, Policy: "p", State: alerting.Pending}
		if probe.Validate() == nil {
			valid = append(valid, fp)
		}
	}
	del = valid
	for len(put) > 0 || len(del) > 0 {
		np := min(len(put), alertCommitSize)
		nd := min(len(del), alertCommitSize-np)
		chunkPut, chunkDel := put[:np], del[:nd]
		put, del = put[np:], del[nd:]
		err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
			if err := s.checkFence(t, op, f); err != nil {
				return err
			}
			for i := range chunkPut {
				if err := t.Set(s.col(colAlertStates).Doc(chunkPut[i].Fingerprint), toAlertDoc(&chunkPut[i])); err != nil {
					return fault.Wrap(fault.Invalid, op, err)
				}
			}
			for _, fp := range chunkDel {
				if err := t.Delete(s.col(colAlertStates).Doc(fp)); err != nil {
					return fault.Wrap(fault.Invalid, op, err)
				}
			}
			return nil
		}, fs.MaxAttempts(s.maxAttempts))
		if err != nil {
			return wrapErr(op, err)
		}
	}
	return nil
}

// MarkSent implements alerting.Store.
func (s *AlertStore) MarkSent(ctx context.Context, fp string, ids ...string) error {
	const op = "firestore.AlertStore.MarkSent"
	probe := alerting.Alert{Fingerprint: fp, Policy: "p", State: alerting.Pending}
	if probe.Validate() != nil || len(ids) == 0 {
		return nil
	}
	ref := s.col(colAlertStates).Doc(fp)
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		snap, err := t.Get(ref)
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		a, err := decodeAlert(snap)
		if err != nil {
			return err
		}
		if !a.MarkSent(ids...) {
			return nil
		}
		return t.Set(ref, toAlertDoc(&a))
	}, fs.MaxAttempts(s.maxAttempts))
	return wrapErr(op, err)
}

func decodeAlertLease(snap *fs.DocumentSnapshot) (alerting.Lease, error) {
	var d alertLeaseDoc
	if err := snap.DataTo(&d); err != nil {
		return alerting.Lease{}, fault.Wrap(fault.Internal, "firestore.AlertStore.lease "+snap.Ref.ID, err)
	}
	return alerting.Lease{Name: snap.Ref.ID, Holder: d.Holder, Expires: alertUTC(d.Expires), AcquiredAt: alertUTC(d.AcquiredAt)}, nil
}

// AcquireLease implements alerting.Store in one transaction.
func (s *AlertStore) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (alerting.Lease, error) {
	const op = "firestore.AlertStore.AcquireLease"
	if err := alerting.ValidName("lease name", name); err != nil {
		return alerting.Lease{}, err
	}
	if holder == "" || ttl <= 0 {
		return alerting.Lease{}, fault.Errorf(fault.Invalid, op, "lease %q needs a holder and a positive ttl", name)
	}
	ref := s.col(colAlertLeases).Doc(name)
	var out alerting.Lease
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		snap, err := t.Get(ref)
		var l alerting.Lease
		exists := false
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		default:
			exists = true
			if l, err = decodeAlertLease(snap); err != nil {
				return err
			}
		}
		switch {
		case exists && l.Holder == holder:
			l.Expires = alertMicros(now.Add(ttl))
		case !exists || !now.Before(l.Expires):
			l = alerting.Lease{Name: name, Holder: holder, Expires: alertMicros(now.Add(ttl)), AcquiredAt: alertMicros(now)}
		default:
			out = l
			return nil
		}
		out = l
		return t.Set(ref, alertLeaseDoc{Holder: l.Holder, Expires: l.Expires, AcquiredAt: l.AcquiredAt})
	}, fs.MaxAttempts(s.maxAttempts))
	if err != nil {
		return alerting.Lease{}, wrapErr(op, err)
	}
	return out, nil
}

// ReleaseLease implements alerting.Store in one transaction.
func (s *AlertStore) ReleaseLease(ctx context.Context, name, holder string) error {
	const op = "firestore.AlertStore.ReleaseLease"
	if alerting.ValidName("lease name", name) != nil {
		return nil
	}
	ref := s.col(colAlertLeases).Doc(name)
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		snap, err := t.Get(ref)
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		l, err := decodeAlertLease(snap)
		if err != nil || l.Holder != holder {
			return err
		}
		return t.Delete(ref)
	}, fs.MaxAttempts(s.maxAttempts))
	return wrapErr(op, err)
}

// Ping reads the lease collection to check that Firestore answers.
func (s *AlertStore) Ping(ctx context.Context) error {
	it := s.col(colAlertLeases).Limit(1).Documents(ctx)
	defer it.Stop()
	if _, err := it.Next(); err != nil && err != iterator.Done {
		return wrapErr("firestore.AlertStore.Ping", err)
	}
	return nil
}
