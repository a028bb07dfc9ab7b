package terraform

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/telemetry"
)

// dashboard is the part of the Cloud Monitoring dashboard format that
// dashboard.tf writes; decoding refuses any other field, so that a
// misspelt one fails here rather than at apply time.
type dashboard struct {
	DisplayName  string `json:"displayName"`
	MosaicLayout struct {
		Columns int    `json:"columns"`
		Tiles   []tile `json:"tiles"`
	} `json:"mosaicLayout"`
}

type tile struct {
	XPos   int `json:"xPos"`
	YPos   int `json:"yPos"`
	Width  int `json:"width"`
	Height int `json:"height"`
	Widget struct {
		Title   string `json:"title"`
		XYChart *struct {
			DataSets []dataSet `json:"dataSets"`
			YAxis    struct {
				Label string `json:"label"`
				Scale string `json:"scale"`
			} `json:"yAxis"`
		} `json:"xyChart"`
	} `json:"widget"`
}

type dataSet struct {
	PlotType           string `json:"plotType"`
	TargetAxis         string `json:"targetAxis"`
	LegendTemplate     string `json:"legendTemplate"`
	MinAlignmentPeriod string `json:"minAlignmentPeriod"`
	TimeSeriesQuery    struct {
		TimeSeriesFilter *struct {
			Filter      string `json:"filter"`
			Aggregation struct {
				AlignmentPeriod    string   `json:"alignmentPeriod"`
				PerSeriesAligner   string   `json:"perSeriesAligner"`
				CrossSeriesReducer string   `json:"crossSeriesReducer"`
				GroupByFields      []string `json:"groupByFields"`
			} `json:"aggregation"`
		} `json:"timeSeriesFilter"`
	} `json:"timeSeriesQuery"`
}

// dashboardOf decodes the dashboard of a configuration.
func dashboardOf(t *testing.T, c *tfConfig) dashboard {
	t.Helper()
	ds := c.Result.Find("google_monitoring_dashboard")
	if len(ds) != 1 {
		t.Fatalf("%d dashboards, want 1", len(ds))
	}
	raw := ctyString(ds[0].Body.Attr("dashboard_json"))
	if raw == "" {
		t.Fatalf("%s: dashboard_json is not a known string", ds[0].Addr())
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: dashboard_json does not parse as a dashboard: %v", ds[0].Addr(), err)
	}
	return d
}

// TestDashboard holds the dashboard to the code: every chart plots
// metrics that exist — the code's own, as the Telemetry API names them,
// or Google Cloud's — aggregated as their kind allows, grouped by labels
// the code writes, and every metric of the code is charted.
func TestDashboard(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		ins := codeInstruments(t, f)
		logs := logMetricNames(c)
		d := dashboardOf(t, c)
		if !strings.Contains(d.DisplayName, "Autonomics "+c.Prefix) {
			t.Errorf("display name %q does not name the environment (prefix %q)", d.DisplayName, c.Prefix)
		}
		cols := d.MosaicLayout.Columns
		if cols != 48 {
			t.Errorf("mosaic layout of %d columns, want 48", cols)
		}
		if len(d.MosaicLayout.Tiles) == 0 {
			t.Fatal("the dashboard has no tile")
		}
		scope := `resource.label.namespace = starts_with("` + c.Prefix + `autonomics-")`
		charted := map[string]bool{}
		for i, tl := range d.MosaicLayout.Tiles {
			title := tl.Widget.Title
			if title == "" {
				t.Errorf("tile %d has no title", i)
			}
			if tl.XPos < 0 || tl.Width <= 0 || tl.XPos+tl.Width > cols || tl.YPos < 0 || tl.Height <= 0 {
				t.Errorf("tile %q at (%d, %d) of %dx%d does not fit the %d columns", title, tl.XPos, tl.YPos, tl.Width, tl.Height, cols)
			}
			for j, other := range d.MosaicLayout.Tiles[:i] {
				if tl.XPos < other.XPos+other.Width && other.XPos < tl.XPos+tl.Width &&
					tl.YPos < other.YPos+other.Height && other.YPos < tl.YPos+tl.Height {
					t.Errorf("tile %q overlaps tile %d %q", title, j, other.Widget.Title)
				}
			}
			if tl.Widget.XYChart == nil || len(tl.Widget.XYChart.DataSets) == 0 {
				t.Errorf("tile %q charts nothing", title)
				continue
			}
			for _, ds := range tl.Widget.XYChart.DataSets {
				tsf := ds.TimeSeriesQuery.TimeSeriesFilter
				if tsf == nil {
					t.Errorf("tile %q: a data set without a time series filter", title)
					continue
				}
				if problem := metricProblem(tsf.Filter, ins, logs); problem != "" {
					t.Errorf("tile %q: filter %s", title, problem)
					continue
				}
				if !slices.Contains([]string{"Y1", "Y2"}, ds.TargetAxis) || ds.PlotType != "LINE" || ds.LegendTemplate == "" {
					t.Errorf("tile %q: plot %q on axis %q with legend %q", title, ds.PlotType, ds.TargetAxis, ds.LegendTemplate)
				}
				typ := filterMetricType.FindStringSubmatch(tsf.Filter)[1]
				agg := tsf.Aggregation
				in, custom := ins[typ]
				if !custom {
					continue
				}
				charted[typ] = true
				if !strings.Contains(tsf.Filter, scope) {
					t.Errorf("tile %q: filter %q does not keep to this environment's services (%s)", title, tsf.Filter, scope)
				}
				if problem := aggregationProblem(telemetry.KindOf(in.Kind), agg.PerSeriesAligner, agg.CrossSeriesReducer); problem != "" {
					t.Errorf("tile %q: %s is a %s: %s", title, in.Name, telemetry.KindOf(in.Kind), problem)
				}
				for _, g := range agg.GroupByFields {
					label, ok := strings.CutPrefix(g, "metric.label.")
					if !ok {
						continue
					}
					if label = strings.Trim(label, `"`); !slices.Contains(in.Keys, label) {
						t.Errorf("tile %q groups %s by %q, a label its package %s never writes (it writes %v)", title, in.Name, label, in.Pkg, in.Keys)
					}
				}
			}
		}
		for _, typ := range sortedKeys(ins) {
			if !charted[typ] {
				t.Errorf("%s records %s (%s), which no chart of the dashboard shows", ins[typ].Pos, ins[typ].Name, typ)
			}
		}
	})
}

// aggregationProblem says why a per-series aligner and cross-series
// reducer do not suit a kind of series, or "".
func aggregationProblem(k telemetry.MetricKind, align, reduce string) string {
	switch k {
	case telemetry.KindCounter:
		if align != "ALIGN_RATE" && align != "ALIGN_DELTA" {
			return "a cumulative counter is aligned as a rate or a delta, not " + align
		}
	case telemetry.KindHistogram:
		if align != "ALIGN_DELTA" || !strings.HasPrefix(reduce, "REDUCE_PERCENTILE_") {
			return "a distribution is charted as percentiles of its deltas (ALIGN_DELTA, REDUCE_PERCENTILE_*), not " + align + ", " + reduce
		}
	case telemetry.KindGauge:
		if align == "ALIGN_RATE" || align == "ALIGN_DELTA" {
			return "a gauge has no rate or delta"
		}
	}
	return ""
}
