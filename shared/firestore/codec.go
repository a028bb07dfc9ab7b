package firestore

import (
	"fmt"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

func instanceDoc(inst governor.Instance) map[string]any {
	timers := make(map[string]any, len(inst.Timers))
	for name, t := range inst.Timers {
		timers[name] = map[string]any{"id": t.ID, "due": t.Due}
	}
	return map[string]any{
		"tenant_id":  inst.Tenant,
		"domain":     string(inst.Domain),
		"subject":    inst.Subject,
		"state":      string(inst.State),
		"version":    inst.Version,
		"last_hash":  inst.LastHash,
		"data":       string(inst.Data),
		"timers":     timers,
		"updated_at": inst.UpdatedAt,
	}
}

// tenantDoc is the tenant index entry of tenant, created by the first
// receipt of its first instance, decided at createdAt.
func tenantDoc(tenant string, createdAt time.Time) map[string]any {
	return map[string]any{"tenant_id": tenant, "created_at": createdAt}
}

// dedupDoc encodes the dedup marker of a decision decided at decidedAt
// with its outbox. Its created_at is the earliest entry's (decidedAt when
// it has none), and a marker without entries is delivered from the start,
// so that the sweep's query never returns it.
func dedupDoc(k governor.Key, d store.Dedup, outbox []store.OutboxEntry, shard int, decidedAt time.Time) map[string]any {
	createdAt := decidedAt
	entries := make([]any, len(outbox))
	for i, e := range outbox {
		if i == 0 || e.CreatedAt.Before(createdAt) {
			createdAt = e.CreatedAt
		}
		entries[i] = outboxDoc(e, d.ReceiptHash)
	}
	return map[string]any{
		"receipt_hash": d.ReceiptHash,
		"domain":       string(k.Domain),
		"subject":      k.Subject,
		"source":       d.Source,
		"event_id":     d.EventID,
		"expire_at":    d.ExpireAt,
		"outbox":       entries,
		"delivered":    len(outbox) == 0,
		"created_at":   createdAt,
		"shard":        int64(shard),
	}
}

func receiptDoc(r *receipt.Receipt, decidedAt time.Time) map[string]any {
	actions := make([]any, len(r.Actions))
	for i, a := range r.Actions {
		actions[i] = map[string]any{"kind": a.Kind, "type": a.Type, "domain": a.Domain, "subject": a.Subject, "id": a.ID}
	}
	doc := map[string]any{
		"tenant_id":      r.TenantID,
		"domain":         r.Domain,
		"subject":        r.Subject,
		"seq":            r.Seq,
		"execution_id":   r.ExecutionID,
		"event_source":   r.EventSource,
		"event_type":     r.EventType,
		"correlation_id": r.CorrelationID,
		"from_state":     r.FromState,
		"to_state":       r.ToState,
		"outcome":        r.Outcome,
		"reason":         r.Reason,
		"actions":        actions,
		"data_digest":    r.DataDigest,
		"decided_at":     r.DecidedAt,
		"prev_hash":      r.PrevHash,
		"hash":           r.Hash,
		"decided_at_ts":  decidedAt,
	}
	if r.TraceID != "" {
		doc["trace_id"] = r.TraceID
	}
	return doc
}

// outboxDoc encodes an outbox entry as an element of its marker's outbox
// array; its receipt_hash is left out when it is the marker's.
func outboxDoc(e store.OutboxEntry, markerHash string) map[string]any {
	attrs := make(map[string]any, len(e.Attributes))
	for k, v := range e.Attributes {
		attrs[k] = v
	}
	data := e.Data
	if data == nil {
		data = []byte{}
	}
	m := map[string]any{
		"id":           e.ID,
		"topic":        e.Topic,
		"data":         data,
		"attributes":   attrs,
		"ordering_key": e.OrderingKey,
		"created_at":   e.CreatedAt,
	}
	if e.ReceiptHash != markerHash {
		m["receipt_hash"] = e.ReceiptHash
	}
	return m
}

func timerDoc(e store.TimerEntry) map[string]any {
	return map[string]any{
		"tenant_id": e.Key.Tenant,
		"domain":    string(e.Key.Domain),
		"subject":   e.Key.Subject,
		"name":      e.Name,
		"due":       e.Due,
		"shard":     int64(store.Shard(e.ID)),
	}
}

// decoder reads the fields of a stored document strictly: a missing field
// reads as its zero value, a field of another type is an error.
type decoder struct {
	path string
	m    map[string]any
	err  error
}

func newDecoder(snap *fs.DocumentSnapshot) *decoder {
	return &decoder{path: snap.Ref.Path, m: snap.Data()}
}

// fail returns the decoding error as an Internal error of operation op.
func (d *decoder) fail(op string) error {
	return fault.Errorf(fault.Internal, op, "malformed document %s: %v", d.path, d.err)
}

func (d *decoder) wrongType(field string, v any, want string) {
	if d.err == nil {
		d.err = fmt.Errorf("field %s is %T, want %s", field, v, want)
	}
}

func (d *decoder) str(field string) string {
	return str(d, d.m, field)
}

func str(d *decoder, m map[string]any, field string) string {
	v, ok := m[field]
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.wrongType(field, v, "string")
	}
	return s
}

func (d *decoder) int(field string) int64 {
	v, ok := d.m[field]
	if !ok {
		return 0
	}
	n, ok := v.(int64)
	if !ok {
		d.wrongType(field, v, "integer")
	}
	return n
}

func (d *decoder) bool(field string) bool {
	v, ok := d.m[field]
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		d.wrongType(field, v, "boolean")
	}
	return b
}

func (d *decoder) bytes(field string) []byte {
	return bytesField(d, d.m, field)
}

func bytesField(d *decoder, m map[string]any, field string) []byte {
	v, ok := m[field]
	if !ok {
		return nil
	}
	b, ok := v.([]byte)
	if !ok {
		d.wrongType(field, v, "bytes")
	}
	if len(b) == 0 {
		return nil
	}
	return b
}

func (d *decoder) time(field string) time.Time {
	return timeField(d, d.m, field)
}

func timeField(d *decoder, m map[string]any, field string) time.Time {
	v, ok := m[field]
	if !ok {
		return time.Time{}
	}
	t, ok := v.(time.Time)
	if !ok {
		d.wrongType(field, v, "timestamp")
	}
	return t.UTC()
}

func (d *decoder) maps(field string) map[string]any {
	v, ok := d.m[field]
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.wrongType(field, v, "map")
	}
	return m
}

func decodeInstance(snap *fs.DocumentSnapshot) (governor.Instance, error) {
	d := newDecoder(snap)
	inst := governor.Instance{
		Key: governor.Key{
			Tenant:  d.str("tenant_id"),
			Domain:  governor.Domain(d.str("domain")),
			Subject: d.str("subject"),
		},
		State:     governor.State(d.str("state")),
		Version:   d.int("version"),
		LastHash:  d.str("last_hash"),
		UpdatedAt: d.time("updated_at"),
	}
	if data := d.str("data"); data != "" {
		inst.Data = []byte(data)
	}
	if timers := d.maps("timers"); len(timers) > 0 {
		inst.Timers = make(map[string]governor.Timer, len(timers))
		for name, v := range timers {
			m, ok := v.(map[string]any)
			if !ok {
				d.wrongType("timers."+name, v, "map")
				continue
			}
			inst.Timers[name] = governor.Timer{
				Name: name,
				ID:   str(d, m, "id"),
				Due:  timeField(d, m, "due"),
			}
		}
	}
	if d.err != nil {
		return governor.Instance{}, d.fail("firestore.decodeInstance")
	}
	return inst, nil
}

// decodeReceipt reads a stored receipt as it is: altered values load (the
// ledger's verification reports them), but a field that is not a string,
// or for seq an integer, is an error.
func decodeReceipt(snap *fs.DocumentSnapshot) (receipt.Receipt, error) {
	d := newDecoder(snap)
	r := receipt.Receipt{
		TenantID:      d.str("tenant_id"),
		Domain:        d.str("domain"),
		Subject:       d.str("subject"),
		Seq:           d.int("seq"),
		ExecutionID:   d.str("execution_id"),
		EventSource:   d.str("event_source"),
		EventType:     d.str("event_type"),
		CorrelationID: d.str("correlation_id"),
		FromState:     d.str("from_state"),
		ToState:       d.str("to_state"),
		Outcome:       d.str("outcome"),
		Reason:        d.str("reason"),
		Actions:       []receipt.Action{},
		DataDigest:    d.str("data_digest"),
		DecidedAt:     d.str("decided_at"),
		PrevHash:      d.str("prev_hash"),
		Hash:          d.str("hash"),
	}
	if _, ok := d.m["trace_id"]; ok {
		r.TraceID = d.str("trace_id")
	}
	if v, ok := d.m["actions"]; ok {
		list, ok := v.([]any)
		if !ok {
			d.wrongType("actions", v, "array")
		}
		for i, v := range list {
			m, ok := v.(map[string]any)
			if !ok {
				d.wrongType(fmt.Sprintf("actions[%d]", i), v, "map")
				continue
			}
			r.Actions = append(r.Actions, receipt.Action{
				Kind:    actionField(d, m, i, "kind"),
				Type:    actionField(d, m, i, "type"),
				Domain:  actionField(d, m, i, "domain"),
				Subject: actionField(d, m, i, "subject"),
				ID:      actionField(d, m, i, "id"),
			})
		}
	}
	if d.err != nil {
		return receipt.Receipt{}, d.fail("firestore.decodeReceipt")
	}
	return r, nil
}

func actionField(d *decoder, m map[string]any, i int, name string) string {
	v, ok := m[name]
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.wrongType(fmt.Sprintf("actions[%d].%s", i, name), v, "string")
	}
	return s
}

// markerOf decodes a dedup marker found by a collection-group query,
// whose tenant is the document's grandparent.
func markerOf(snap *fs.DocumentSnapshot) (store.Marker, error) {
	tenant := ""
	if p := snap.Ref.Parent; p != nil && p.Parent != nil {
		tenant = p.Parent.ID
	}
	return decodeMarker(snap, tenant)
}

// decodeMarker decodes the dedup marker snap of tenant with its outbox,
// every entry carrying the marker's id and delivery. A marker written
// before the outbox moved into markers has neither: no entries, and it
// reads as delivered.
func decodeMarker(snap *fs.DocumentSnapshot, tenant string) (store.Marker, error) {
	d := newDecoder(snap)
	m := store.Marker{ReceiptHash: d.str("receipt_hash"), Delivered: true}
	if _, ok := d.m["delivered"]; ok {
		m.Delivered = d.bool("delivered")
	}
	id := tenant + "/" + snap.Ref.ID
	if v, ok := d.m["outbox"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			d.wrongType("outbox", v, "array")
		}
		m.Outbox = make([]store.OutboxEntry, 0, len(list))
		for i, v := range list {
			em, ok := v.(map[string]any)
			if !ok {
				d.wrongType(fmt.Sprintf("outbox[%d]", i), v, "map")
				continue
			}
			e := store.OutboxEntry{
				ID: str(d, em, "id"),
				Message: store.Message{
					Topic:       str(d, em, "topic"),
					Data:        bytesField(d, em, "data"),
					OrderingKey: str(d, em, "ordering_key"),
				},
				ReceiptHash: m.ReceiptHash,
				CreatedAt:   timeField(d, em, "created_at"),
				Delivered:   m.Delivered,
				Marker:      id,
			}
			if _, ok := em["receipt_hash"]; ok {
				e.ReceiptHash = str(d, em, "receipt_hash")
			}
			if v, ok := em["attributes"]; ok {
				attrs, ok := v.(map[string]any)
				if !ok {
					d.wrongType(fmt.Sprintf("outbox[%d].attributes", i), v, "map")
				}
				if len(attrs) > 0 {
					e.Attributes = make(map[string]string, len(attrs))
					for k := range attrs {
						e.Attributes[k] = str(d, attrs, k)
					}
				}
			}
			m.Outbox = append(m.Outbox, e)
		}
	}
	if d.err != nil {
		return store.Marker{}, d.fail("firestore.decodeMarker")
	}
	return m, nil
}

func decodeTimer(snap *fs.DocumentSnapshot) (store.TimerEntry, error) {
	d := newDecoder(snap)
	e := store.TimerEntry{
		Timer: governor.Timer{Name: d.str("name"), ID: snap.Ref.ID, Due: d.time("due")},
		Key: governor.Key{
			Tenant:  d.str("tenant_id"),
			Domain:  governor.Domain(d.str("domain")),
			Subject: d.str("subject"),
		},
	}
	if d.err != nil {
		return store.TimerEntry{}, d.fail("firestore.decodeTimer")
	}
	return e, nil
}
