package usage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"google.golang.org/api/googleapi"
	servicecontrol "google.golang.org/api/servicecontrol/v1"
)

// requestFrame is the size of a report request without its operations:
// {"operations":[…]} and the encoder's newline.
const requestFrame = len(`{"operations":[]}`) + 1

// batcher gathers operations into report requests of at most
// MaxRequestBytes, sends them and marks their windows done.
type batcher struct {
	r    *Reporter
	rep  *Report
	now  time.Time
	jobs []job
	ops  []*servicecontrol.Operation
	size int
}

// add queues j, sending the batch first when j would not fit.
func (b *batcher) add(ctx context.Context, j job) error {
	op := operation(j.window)
	raw, err := json.Marshal(op)
	if err != nil {
		return fault.Wrap(fault.Internal, "usage.add", err)
	}
	n := len(raw)
	if len(b.ops) > 0 {
		n++ // the comma
	}
	var first error
	if len(b.ops) > 0 && b.size+n > b.r.o.MaxRequestBytes {
		first = b.flush(ctx)
		n = len(raw)
	}
	if requestFrame+n > b.r.o.MaxRequestBytes {
		b.r.count(ctx, OutcomeFailed, 1)
		b.rep.Failed++
		return fault.Errorf(fault.Invalid, "usage.add", "operation %s is %d bytes, over the request limit", j.window.OperationID, len(raw))
	}
	if len(b.ops) == 0 {
		b.size = requestFrame
	}
	b.jobs = append(b.jobs, j)
	b.ops = append(b.ops, op)
	b.size += n
	return first
}

// flush sends the queued operations.
func (b *batcher) flush(ctx context.Context) error {
	if len(b.ops) == 0 {
		return nil
	}
	jobs, ops := b.jobs, b.ops
	b.jobs, b.ops, b.size = nil, nil, 0
	err := b.send(ctx, jobs, ops)
	return errors.Join(err, b.mark(ctx, jobs))
}

// send reports ops. A request refused as invalid is split in halves, so
// that one bad operation holds back only itself.
func (b *batcher) send(ctx context.Context, jobs []job, ops []*servicecontrol.Operation) error {
	r := b.r
	var resp *servicecontrol.ReportResponse
	b.rep.Requests++
	err := r.retry(ctx, func() error {
		var err error
		resp, err = r.o.Client.Services.Report(r.o.Service, &servicecontrol.ReportRequest{Operations: ops}).Context(ctx).Do()
		return err
	})
	if err != nil {
		var g *googleapi.Error
		if len(ops) > 1 && errors.As(err, &g) && g.Code == http.StatusBadRequest {
			h := len(ops) / 2
			return errors.Join(b.send(ctx, jobs[:h], ops[:h]), b.send(ctx, jobs[h:], ops[h:]))
		}
		r.count(ctx, OutcomeFailed, len(ops))
		b.rep.Failed += len(ops)
		r.o.Logger.WarnContext(ctx, "usage report failed; the windows stay recorded for the next run", "operations", len(ops), "error", err.Error())
		return apiErr("usage.report", err)
	}
	refused := map[string]string{}
	for _, e := range resp.ReportErrors {
		if e == nil {
			continue
		}
		msg := "refused"
		if e.Status != nil {
			msg = e.Status.Message
		}
		refused[e.OperationId] = msg
	}
	var first error
	for _, j := range jobs {
		w := j.window
		if msg, ok := refused[w.OperationID]; ok {
			r.count(ctx, OutcomeFailed, 1)
			b.rep.Failed++
			r.o.Logger.WarnContext(ctx, "usage operation refused; it stays recorded for the next run",
				"tenant", j.cur.c.Tenant, "entitlement", j.cur.c.Entitlement, "metric", j.cur.c.Metric, "operation_id", w.OperationID, "error", msg)
			if first == nil {
				first = fault.Errorf(fault.Unavailable, "usage.report", "operation %s refused: %s", w.OperationID, msg)
			}
			continue
		}
		r.count(ctx, OutcomeReported, 1)
		b.rep.Reported++
		if j.resent {
			b.rep.Resent++
		}
		late := w.End.Sub(w.Start) > r.o.Window || b.now.Sub(w.End) >= r.o.Window
		if late {
			b.rep.Late++
		}
		r.o.Logger.InfoContext(ctx, "usage reported", "tenant", j.cur.c.Tenant, "entitlement", j.cur.c.Entitlement,
			"metric", j.cur.c.Metric, "metric_name", w.MetricName, "operation_id", w.OperationID, "start", w.Start, "end", w.End,
			"value", w.Value, "resent", j.resent, "late", late)
		if late {
			r.o.Logger.WarnContext(ctx, "usage reported late", "entitlement", j.cur.c.Entitlement, "metric", j.cur.c.Metric,
				"operation_id", w.OperationID, "start", w.Start, "end", w.End)
		}
		if j.idx == j.cur.ok {
			j.cur.ok++
		}
	}
	return first
}

// mark writes done the windows of jobs' cursors that Service Control
// accepted in order. A failed write leaves them recorded: the next run
// resends them under the same operation ids.
func (b *batcher) mark(ctx context.Context, jobs []job) error {
	var first error
	for _, j := range jobs {
		st := j.cur
		if st.ok <= st.confirmed {
			continue
		}
		next := st.c
		last := st.orig[st.ok-1]
		next.End, next.Usage = last.End, last.Usage
		next.Pending = append([]Window(nil), st.orig[st.ok:]...)
		next.Version++
		next.UpdatedAt = b.now
		if err := b.r.o.Windows.PutCursor(ctx, next); fault.ErrorCode(err) == fault.Conflict {
			// Another run sent the same windows and marked them first.
			b.r.o.Logger.InfoContext(ctx, "usage cursor moved on in another run", "entitlement", st.c.Entitlement, "metric", st.c.Metric)
			st.confirmed = st.ok
			continue
		} else if err != nil {
			b.r.o.Logger.WarnContext(ctx, "reported usage not marked done; the next run resends it (deduplicated)",
				"entitlement", st.c.Entitlement, "metric", st.c.Metric, "error", err.Error())
			if first == nil {
				first = fault.Wrap(fault.ErrorCode(err), "usage.mark", err)
			}
			// Stop retrying this cursor in this run.
			st.confirmed = st.ok
			continue
		}
		st.c, st.confirmed = next, st.ok
	}
	return first
}
