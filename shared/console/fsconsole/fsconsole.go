// Package fsconsole is the Firestore console.Records of the console: the
// dead letters it receives and the checkpoints it has seen, in the
// monitor's database (platform.Clients.MonitorFirestore), apart from
// governor state, which the console only reads.
//
// Documents, under console/{namespace}:
//
//	deadletters/{message id}
//	  reason, code, domain, type, tenant, subject, source, event_id,
//	  refusal, replayed_by, replay_message_id      string
//	  received_at, publish_time, replayed_at       timestamp
//	  attributes                                   map of strings
//	  data                                         bytes
//	  replayable                                   boolean
//	  expire_at                                    timestamp (TTL policy)
//	checkpoints/{size, 20 digits}-{16 hex digits of the root's SHA-256}
//	  size                                         integer
//	  root                                         string (base64)
//	  time, seen_at                                timestamp
//
// Every query is served by single-field indexes: received_at order and
// range, and size order (each with the document id in the same
// direction). Prune bounds both collections; the TTL policy on
// deadletters.expire_at deletes what retention no longer keeps even when
// no console runs. deadletters.data and deadletters.attributes are never
// queried and may be exempt from indexing.
package fsconsole

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	fs "cloud.google.com/go/firestore"
	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore/fserr"
)

// Collection names.
const (
	ColRoot        = "console"
	ColDeadLetters = "deadletters"
	ColCheckpoints = "checkpoints"
)

// DefaultNamespace is the namespace of an empty Options.Namespace.
const DefaultNamespace = "default"

// Options configure a Store.
type Options struct {
	// Namespace separates consoles sharing a database; DefaultNamespace
	// when empty.
	Namespace string
	Limits    console.RecordLimits
}

// Store is the Firestore console.Records.
type Store struct {
	c    *fs.Client
	root *fs.DocumentRef
	lim  console.RecordLimits
}

var _ console.Records = (*Store)(nil)

// New returns a Store using client, the client of the monitor's database.
func New(client *fs.Client, o Options) (*Store, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if err := console.ValidID("namespace", o.Namespace); err != nil {
		return nil, fault.Errorf(fault.Invalid, "fsconsole.New", "%s", fault.ErrorMessage(err))
	}
	return &Store{c: client, root: client.Collection(ColRoot).Doc(o.Namespace), lim: o.Limits.WithDefaults()}, nil
}

func (s *Store) col(name string) *fs.CollectionRef { return s.root.Collection(name) }

// Ping reads the dead-letter collection: a health check.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.col(ColDeadLetters).Limit(1).Documents(ctx).GetAll()
	return fserr.Wrap("fsconsole.Ping", err)
}

// ts returns t for a document, nil when it is zero.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

type deadLetterDoc struct {
	ReceivedAt      time.Time         `firestore:"received_at"`
	PublishTime     time.Time         `firestore:"publish_time"`
	Reason          string            `firestore:"reason"`
	Code            string            `firestore:"code"`
	Domain          string            `firestore:"domain"`
	Type            string            `firestore:"type"`
	Tenant          string            `firestore:"tenant"`
	Subject         string            `firestore:"subject"`
	Source          string            `firestore:"source"`
	EventID         string            `firestore:"event_id"`
	Attributes      map[string]string `firestore:"attributes"`
	Data            []byte            `firestore:"data"`
	Replayable      bool              `firestore:"replayable"`
	Refusal         string            `firestore:"refusal"`
	ReplayedBy      string            `firestore:"replayed_by"`
	ReplayedAt      time.Time         `firestore:"replayed_at"`
	ReplayMessageID string            `firestore:"replay_message_id"`
}

func (s *Store) deadLetterData(d console.DeadLetter) map[string]any {
	attrs := d.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	return map[string]any{
		"received_at": ts(d.ReceivedAt), "publish_time": ts(d.PublishTime), "reason": d.Reason, "code": d.Code,
		"domain": d.Domain, "type": d.Type, "tenant": d.Tenant, "subject": d.Subject, "source": d.Source,
		"event_id": d.EventID, "attributes": attrs, "data": d.Data, "replayable": d.Replayable, "refusal": d.Refusal,
		"expire_at": d.ReceivedAt.Add(s.lim.Retention).UTC(),
	}
}

func decodeDeadLetter(snap *fs.DocumentSnapshot) (console.DeadLetter, error) {
	var d deadLetterDoc
	if err := snap.DataTo(&d); err != nil {
		return console.DeadLetter{}, fault.Wrap(fault.Internal, "fsconsole.deadletter "+snap.Ref.ID, err)
	}
	out := console.DeadLetter{
		ID: snap.Ref.ID, ReceivedAt: d.ReceivedAt.UTC(), PublishTime: d.PublishTime.UTC(), Reason: d.Reason, Code: d.Code,
		Domain: d.Domain, Type: d.Type, Tenant: d.Tenant, Subject: d.Subject, Source: d.Source, EventID: d.EventID,
		Attributes: d.Attributes, Data: d.Data, Replayable: d.Replayable, Refusal: d.Refusal,
	}
	if d.PublishTime.IsZero() {
		out.PublishTime = time.Time{}
	}
	if out.Attributes == nil {
		out.Attributes = map[string]string{}
	}
	if d.ReplayedBy != "" || !d.ReplayedAt.IsZero() {
		out.Replay = &console.Replay{By: d.ReplayedBy, At: d.ReplayedAt.UTC(), MessageID: d.ReplayMessageID}
	}
	return out, nil
}

// PutDeadLetter creates the dead letter's document unless it exists.
func (s *Store) PutDeadLetter(ctx context.Context, d console.DeadLetter) (bool, error) {
	const op = "fsconsole.PutDeadLetter"
	if err := console.ValidID("dead letter id", d.ID); err != nil {
		return false, err
	}
	_, err := s.col(ColDeadLetters).Doc(d.ID).Create(ctx, s.deadLetterData(d))
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.AlreadyExists:
		return false, nil
	}
	return false, fserr.Wrap(op, err)
}

// DeadLetter reads one dead letter.
func (s *Store) DeadLetter(ctx context.Context, id string) (console.DeadLetter, error) {
	const op = "fsconsole.DeadLetter"
	if err := console.ValidID("dead letter id", id); err != nil {
		return console.DeadLetter{}, err
	}
	snap, err := s.col(ColDeadLetters).Doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return console.DeadLetter{}, fault.Errorf(fault.NotFound, op, "no dead letter %q", id)
	}
	if err != nil {
		return console.DeadLetter{}, fserr.Wrap(op, err)
	}
	return decodeDeadLetter(snap)
}

// DeadLetters returns a page of dead letters, newest first.
func (s *Store) DeadLetters(ctx context.Context, q console.DeadLetterQuery) ([]console.DeadLetter, error) {
	const op = "fsconsole.DeadLetters"
	if q.Limit <= 0 {
		return nil, fault.Errorf(fault.Invalid, op, "limit %d: want at least 1", q.Limit)
	}
	query := s.col(ColDeadLetters).OrderBy("received_at", fs.Desc).OrderBy(fs.DocumentID, fs.Desc)
	if !q.After.IsZero() {
		if err := console.ValidID("cursor id", q.After.ID); err != nil {
			return nil, err
		}
		query = query.StartAfter(q.After.ReceivedAt.UTC(), q.After.ID)
	}
	snaps, err := query.Limit(q.Limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, fserr.Wrap(op, err)
	}
	out := make([]console.DeadLetter, 0, len(snaps))
	for _, snap := range snaps {
		d, err := decodeDeadLetter(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// MarkReplayed records a replay on the dead letter's document.
func (s *Store) MarkReplayed(ctx context.Context, id string, r console.Replay) error {
	const op = "fsconsole.MarkReplayed"
	if err := console.ValidID("dead letter id", id); err != nil {
		return err
	}
	_, err := s.col(ColDeadLetters).Doc(id).Update(ctx, []fs.Update{
		{Path: "replayed_by", Value: r.By}, {Path: "replayed_at", Value: ts(r.At)}, {Path: "replay_message_id", Value: r.MessageID},
	})
	if status.Code(err) == codes.NotFound {
		return fault.Errorf(fault.NotFound, op, "no dead letter %q", id)
	}
	return fserr.Wrap(op, err)
}

// checkpointID orders checkpoints by size in document id order.
func checkpointID(c console.CheckpointRecord) string {
	h := sha256.Sum256([]byte(c.Root))
	return fmt.Sprintf("%020d-%s", c.Size, hex.EncodeToString(h[:8]))
}

type checkpointDoc struct {
	Size   int64     `firestore:"size"`
	Root   string    `firestore:"root"`
	Time   time.Time `firestore:"time"`
	SeenAt time.Time `firestore:"seen_at"`
}

// PutCheckpoint creates the checkpoint's document unless it exists.
func (s *Store) PutCheckpoint(ctx context.Context, c console.CheckpointRecord) (bool, error) {
	const op = "fsconsole.PutCheckpoint"
	if c.Size < 0 {
		return false, fault.Errorf(fault.Invalid, op, "checkpoint size %d is negative", c.Size)
	}
	if c.Root == "" || len(c.Root) > 64 {
		return false, fault.Errorf(fault.Invalid, op, "checkpoint root %q: want a base64 hash", c.Root)
	}
	_, err := s.col(ColCheckpoints).Doc(checkpointID(c)).Create(ctx, map[string]any{
		"size": c.Size, "root": c.Root, "time": ts(c.Time), "seen_at": ts(c.SeenAt),
	})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.AlreadyExists:
		return false, nil
	}
	return false, fserr.Wrap(op, err)
}

// Checkpoints returns up to limit checkpoints, largest tree first.
func (s *Store) Checkpoints(ctx context.Context, limit int) ([]console.CheckpointRecord, error) {
	const op = "fsconsole.Checkpoints"
	if limit <= 0 {
		return nil, fault.Errorf(fault.Invalid, op, "limit %d: want at least 1", limit)
	}
	snaps, err := s.col(ColCheckpoints).OrderBy("size", fs.Desc).OrderBy(fs.DocumentID, fs.Desc).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, fserr.Wrap(op, err)
	}
	out := make([]console.CheckpointRecord, 0, len(snaps))
	for _, snap := range snaps {
		var d checkpointDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, fault.Wrap(fault.Internal, op+" "+snap.Ref.ID, err)
		}
		out = append(out, console.CheckpointRecord{Size: d.Size, Root: d.Root, Time: d.Time.UTC(), SeenAt: d.SeenAt.UTC()})
	}
	return out, nil
}

// Prune deletes, console.PruneBatch of each at most, the dead letters
// past retention, then the oldest beyond the maximum count, then the
// smallest checkpoints beyond theirs.
func (s *Store) Prune(ctx context.Context, now time.Time) error {
	const op = "fsconsole.Prune"
	dls := s.col(ColDeadLetters)
	old, err := dls.Where("received_at", "<", now.Add(-s.lim.Retention).UTC()).OrderBy("received_at", fs.Asc).
		Limit(console.PruneBatch).Documents(ctx).GetAll()
	if err != nil {
		return fserr.Wrap(op, err)
	}
	if err := s.delete(ctx, old); err != nil {
		return fserr.Wrap(op, err)
	}
	if err := s.trim(ctx, dls.Query, dls.OrderBy("received_at", fs.Asc).OrderBy(fs.DocumentID, fs.Asc), s.lim.MaxDeadLetters); err != nil {
		return fserr.Wrap(op, err)
	}
	cps := s.col(ColCheckpoints)
	if err := s.trim(ctx, cps.Query, cps.OrderBy("size", fs.Asc).OrderBy(fs.DocumentID, fs.Asc), s.lim.MaxCheckpoints); err != nil {
		return fserr.Wrap(op, err)
	}
	return nil
}

// trim deletes the first documents of oldestFirst beyond max documents
// of all.
func (s *Store) trim(ctx context.Context, all, oldestFirst fs.Query, max int) error {
	res, err := all.NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		return err
	}
	var n int64
	switch v := res["n"].(type) {
	case *firestorepb.Value:
		n = v.GetIntegerValue()
	case int64:
		n = v
	}
	excess := n - int64(max)
	if excess <= 0 {
		return nil
	}
	snaps, err := oldestFirst.Limit(int(min(excess, console.PruneBatch))).Documents(ctx).GetAll()
	if err != nil {
		return err
	}
	return s.delete(ctx, snaps)
}

// delete deletes the documents of snaps.
func (s *Store) delete(ctx context.Context, snaps []*fs.DocumentSnapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	bw := s.c.BulkWriter(ctx)
	jobs := make([]*fs.BulkWriterJob, 0, len(snaps))
	for _, snap := range snaps {
		j, err := bw.Delete(snap.Ref)
		if err != nil {
			bw.End()
			return err
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for _, j := range jobs {
		if _, err := j.Results(); err != nil && status.Code(err) != codes.NotFound {
			return err
		}
	}
	return nil
}
