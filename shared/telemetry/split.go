package telemetry

import (
	"context"
	"errors"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// pointLimit is a metric exporter that sends at most max data points per
// export, splitting larger collections into several exports, and skips
// collections without points.
type pointLimit struct {
	sdkmetric.Exporter
	max int
}

// limitPoints wraps exp so that no export carries more than max data
// points (the Telemetry API's limit per request; no limit when max is not
// positive) and a collection with no point, as a flush before anything
// was recorded collects, costs no request.
func limitPoints(exp sdkmetric.Exporter, max int) sdkmetric.Exporter {
	return pointLimit{Exporter: exp, max: max}
}

// Export sends rm in parts of at most max points, or nothing when rm has
// no point; it returns the errors of the parts that failed, having tried
// them all.
func (p pointLimit) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if countPoints(rm) == 0 {
		return nil
	}
	parts := splitPoints(rm, p.max)
	if len(parts) == 1 {
		return p.Exporter.Export(ctx, parts[0])
	}
	var errs []error
	for _, part := range parts {
		errs = append(errs, p.Exporter.Export(ctx, part))
	}
	return errors.Join(errs...)
}

// splitPoints returns rm itself when it holds at most max data points (or
// max is not positive), else parts of at most max points each that
// together hold every point of rm once, in order, under the same
// resource, scopes and metric descriptions. The parts share rm's point
// slices, so they are only valid as long as rm is.
func splitPoints(rm *metricdata.ResourceMetrics, max int) []*metricdata.ResourceMetrics {
	if max <= 0 || countPoints(rm) <= max {
		return []*metricdata.ResourceMetrics{rm}
	}
	var parts []*metricdata.ResourceMetrics
	var cur *metricdata.ResourceMetrics
	room := 0
	for _, sm := range rm.ScopeMetrics {
		open := false // whether cur's last scope is sm
		for _, m := range sm.Metrics {
			n := pointsOf(m.Data)
			for off := 0; off < n; {
				if room == 0 {
					cur = &metricdata.ResourceMetrics{Resource: rm.Resource}
					parts = append(parts, cur)
					room, open = max, false
				}
				if !open {
					cur.ScopeMetrics = append(cur.ScopeMetrics, metricdata.ScopeMetrics{Scope: sm.Scope})
					open = true
				}
				k := min(room, n-off)
				last := &cur.ScopeMetrics[len(cur.ScopeMetrics)-1]
				last.Metrics = append(last.Metrics, metricdata.Metrics{
					Name: m.Name, Description: m.Description, Unit: m.Unit,
					Data: slicePoints(m.Data, off, off+k),
				})
				off += k
				room -= k
			}
		}
	}
	return parts
}

// countPoints is the number of data points in rm.
func countPoints(rm *metricdata.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			n += pointsOf(m.Data)
		}
	}
	return n
}

// pointsOf is the number of data points of an aggregation; an aggregation
// of a kind it does not know counts as one point.
func pointsOf(a metricdata.Aggregation) int {
	switch d := a.(type) {
	case metricdata.Gauge[int64]:
		return len(d.DataPoints)
	case metricdata.Gauge[float64]:
		return len(d.DataPoints)
	case metricdata.Sum[int64]:
		return len(d.DataPoints)
	case metricdata.Sum[float64]:
		return len(d.DataPoints)
	case metricdata.Histogram[int64]:
		return len(d.DataPoints)
	case metricdata.Histogram[float64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[int64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[float64]:
		return len(d.DataPoints)
	case metricdata.Summary:
		return len(d.DataPoints)
	case nil:
		return 0
	default:
		return 1
	}
}

// slicePoints returns the aggregation a with only its points lo to hi.
func slicePoints(a metricdata.Aggregation, lo, hi int) metricdata.Aggregation {
	switch d := a.(type) {
	case metricdata.Gauge[int64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.Gauge[float64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.Sum[int64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.Sum[float64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.Histogram[int64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.Histogram[float64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.ExponentialHistogram[int64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.ExponentialHistogram[float64]:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	case metricdata.Summary:
		d.DataPoints = d.DataPoints[lo:hi:hi]
		return d
	default:
		return a
	}
}
