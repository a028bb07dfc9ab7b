package terraform

import (
	"fmt"
	"go/ast"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/autonomics/autonomics/functions/gosrc"
	"github.com/autonomics/autonomics/shared/telemetry"
)

// This file holds the metrics that monitoring.tf and dashboard.tf name to
// the metric instruments of the Go sources, read with go/ast: the same
// source the Telemetry API turns into Cloud Monitoring metric types.

const otelMetricAPI = "go.opentelemetry.io/otel/metric"

// instrumentKinds are the metric.Meter methods that create instruments,
// with the kind of instrument each creates.
var instrumentKinds = map[string]sdkmetric.InstrumentKind{
	"Int64Counter":                   sdkmetric.InstrumentKindCounter,
	"Float64Counter":                 sdkmetric.InstrumentKindCounter,
	"Int64UpDownCounter":             sdkmetric.InstrumentKindUpDownCounter,
	"Float64UpDownCounter":           sdkmetric.InstrumentKindUpDownCounter,
	"Int64Histogram":                 sdkmetric.InstrumentKindHistogram,
	"Float64Histogram":               sdkmetric.InstrumentKindHistogram,
	"Int64Gauge":                     sdkmetric.InstrumentKindGauge,
	"Float64Gauge":                   sdkmetric.InstrumentKindGauge,
	"Int64ObservableCounter":         sdkmetric.InstrumentKindObservableCounter,
	"Float64ObservableCounter":       sdkmetric.InstrumentKindObservableCounter,
	"Int64ObservableUpDownCounter":   sdkmetric.InstrumentKindObservableUpDownCounter,
	"Float64ObservableUpDownCounter": sdkmetric.InstrumentKindObservableUpDownCounter,
	"Int64ObservableGauge":           sdkmetric.InstrumentKindObservableGauge,
	"Float64ObservableGauge":         sdkmetric.InstrumentKindObservableGauge,
}

// attributeFuncs are the functions of the attribute package whose first
// argument is an attribute key.
var attributeFuncs = []string{"String", "Int", "Int64", "Float64", "Bool", "StringSlice", "IntSlice", "Int64Slice", "Float64Slice", "BoolSlice", "Key"}

// instrument is a metric instrument the code creates.
type instrument struct {
	Name string
	Kind sdkmetric.InstrumentKind
	Pkg  string
	Pos  string
	// Keys are the attribute keys the instrument's package writes: the
	// labels its points may carry.
	Keys []string
}

// Type is the Cloud Monitoring metric type the instrument's points get
// through the Telemetry API.
func (i instrument) Type() string { return telemetry.MetricType(i.Name, telemetry.KindOf(i.Kind)) }

// Telemetry API naming rules: metric names and label keys that do not
// match are rejected.
var (
	telemetryMetricName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_:./]*$`)
	telemetryLabelKey   = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.]*$`)
)

// instruments returns the instruments created by every package of the
// module, sorted by name.
func (gm *goModule) instruments() ([]instrument, error) {
	var dirs []string
	err := filepath.WalkDir(gm.Root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		n := d.Name()
		if path != gm.Root && (gosrc.Ignored(n) || n == "testdata" || n == "dist" || n == "node_modules") {
			return filepath.SkipDir
		}
		if path != gm.Root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		dirs = append(dirs, path)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []instrument
	for _, dir := range dirs {
		rel, err := filepath.Rel(gm.Root, dir)
		if err != nil {
			return nil, err
		}
		if rel == "." {
			continue // the module root holds no package
		}
		p, err := gm.Package(gm.Path + "/" + filepath.ToSlash(rel))
		if err != nil {
			return nil, err
		}
		if p == nil {
			continue
		}
		found, err := gm.pkgInstruments(p)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// pkgInstruments returns the instruments created in the files of p that
// import the OpenTelemetry metric API.
func (gm *goModule) pkgInstruments(p *gosrc.Package) ([]instrument, error) {
	var keys []string
	var out []instrument
	var scanErr error
	for _, f := range p.Files {
		local := map[string]string{}
		for name, path := range gosrc.Imports(f) {
			local[path] = name
		}
		metricName, usesMetrics := local[otelMetricAPI]
		attrName, usesAttrs := local["go.opentelemetry.io/otel/attribute"]
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && usesAttrs && x.Name == attrName && slices.Contains(attributeFuncs, sel.Sel.Name) {
				if k, ok := gm.ResolveString(p, f, call.Args[0]); ok {
					keys = append(keys, k)
				}
				return true
			}
			kind, ok := instrumentKinds[sel.Sel.Name]
			if !ok || !usesMetrics {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == metricName {
				return true // a function of the API package, not a Meter method
			}
			pos := gm.Pos(p, call.Pos())
			name, ok := gm.ResolveString(p, f, call.Args[0])
			if !ok {
				scanErr = fmt.Errorf("%s: the name of a %s is not a string constant", pos, sel.Sel.Name)
				return false
			}
			out = append(out, instrument{Name: name, Kind: kind, Pkg: p.ImportPath, Pos: pos})
			return true
		})
		if scanErr != nil {
			return nil, scanErr
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for i := range out {
		out[i].Keys = keys
	}
	return out, nil
}

// codeInstruments returns the instruments of the module, by metric type.
func codeInstruments(t *testing.T, f *testFixture) map[string]instrument {
	t.Helper()
	ins, err := f.gm.instruments()
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]instrument{}
	byName := map[string]instrument{}
	for _, in := range ins {
		if prev, dup := byName[in.Name]; dup && prev.Kind != in.Kind {
			t.Errorf("%s and %s create %s as different kinds of instrument", prev.Pos, in.Pos, in.Name)
		}
		byName[in.Name] = in
		byType[in.Type()] = in
	}
	return byType
}

func TestInstrumentsFound(t *testing.T) {
	ins := codeInstruments(t, fixture(t))
	// The engine's instruments, which the dashboard is built around, must
	// be found: a scan that finds nothing would pass every other check.
	for _, name := range []string{"autonomics.decisions", "autonomics.decision.latency", "autonomics.outbox.backlog"} {
		if !slices.ContainsFunc(sortedKeys(ins), func(typ string) bool { return ins[typ].Name == name }) {
			t.Errorf("instrument %s not found in the sources (found %v)", name, sortedKeys(ins))
		}
	}
	for _, typ := range sortedKeys(ins) {
		in := ins[typ]
		if !telemetryMetricName.MatchString(in.Name) {
			t.Errorf("%s: metric name %q is not one the Telemetry API accepts (%s)", in.Pos, in.Name, telemetryMetricName)
		}
		for _, k := range in.Keys {
			if !telemetryLabelKey.MatchString(k) {
				t.Errorf("%s: attribute key %q of package %s is not a label key the Telemetry API accepts (%s)", in.Pos, k, in.Pkg, telemetryLabelKey)
			}
		}
	}
}

// TestMetricTypesFollowInstruments holds local.metric_types, the one
// place the configuration spells the code's metrics, to the instruments.
func TestMetricTypesFollowInstruments(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		ins := codeInstruments(t, f)
		v := c.Result.Locals["metric_types"]
		if v == cty.NilVal || !v.IsWhollyKnown() || !v.CanIterateElements() {
			t.Fatalf("local.metric_types = %#v, want a known map", v)
		}
		named := map[string]string{}
		for it := v.ElementIterator(); it.Next(); {
			k, typ := it.Element()
			named[ctyString(typ)] = k.AsString()
			if _, ok := ins[ctyString(typ)]; !ok {
				t.Errorf("local.metric_types.%s = %q: no instrument of the code becomes that metric (the code's: %v)", k.AsString(), ctyString(typ), sortedKeys(ins))
			}
		}
		for _, typ := range sortedKeys(ins) {
			if _, ok := named[typ]; !ok {
				t.Errorf("%s creates %s, which becomes %s: add it to local.metric_types", ins[typ].Pos, ins[typ].Name, typ)
			}
		}
	})
}

// builtinMetrics are the Google Cloud metrics the configuration may
// chart or alert on, with their monitored-resource type. Log-based
// metrics (logging.googleapis.com/user/<name>) are known when the
// configuration declares them.
var builtinMetrics = map[string]string{
	"run.googleapis.com/request_count":                              "cloud_run_revision",
	"run.googleapis.com/container/instance_count":                   "cloud_run_revision",
	"pubsub.googleapis.com/subscription/num_undelivered_messages":   "pubsub_subscription",
	"pubsub.googleapis.com/subscription/dead_letter_message_count":  "pubsub_subscription",
	"pubsub.googleapis.com/subscription/oldest_unacked_message_age": "pubsub_subscription",
}

var (
	filterMetricType   = regexp.MustCompile(`metric\.type\s*=\s*"([^"]*)"`)
	filterResourceType = regexp.MustCompile(`resource\.type\s*=\s*"([^"]*)"`)
)

// metricProblem says what is wrong with a monitoring filter, or "": it
// names exactly one metric, which is one of the code's (under the
// Telemetry API's domain, on prometheus_target resources), a built-in
// metric on its resource type, or a declared log-based metric.
func metricProblem(filter string, ins map[string]instrument, logMetrics []string) string {
	types := filterMetricType.FindAllStringSubmatch(filter, -1)
	if len(types) != 1 {
		return fmt.Sprintf("names %d metric types, want 1", len(types))
	}
	typ := types[0][1]
	var resources []string
	for _, m := range filterResourceType.FindAllStringSubmatch(filter, -1) {
		resources = append(resources, m[1])
	}
	want := ""
	switch {
	case strings.HasPrefix(typ, "workload.googleapis.com/"), strings.HasPrefix(typ, "custom.googleapis.com/"):
		return fmt.Sprintf("names %s: the code's metrics arrive through the Telemetry API as %s<name>/<kind>", typ, telemetry.MetricDomain)
	case strings.HasPrefix(typ, telemetry.MetricDomain):
		if _, ok := ins[typ]; !ok {
			return fmt.Sprintf("names %s, which no instrument of the code becomes", typ)
		}
		want = telemetry.MonitoredResource
	case strings.HasPrefix(typ, "logging.googleapis.com/user/"):
		if !slices.Contains(logMetrics, strings.TrimPrefix(typ, "logging.googleapis.com/user/")) {
			return fmt.Sprintf("names the log-based metric %s, which is not declared", typ)
		}
	default:
		var ok bool
		if want, ok = builtinMetrics[typ]; !ok {
			return fmt.Sprintf("names %s, not a metric these tests know", typ)
		}
	}
	if want != "" && !slices.Equal(resources, []string{want}) {
		return fmt.Sprintf("selects resource types %v for %s, want %s", resources, typ, want)
	}
	return ""
}

// logMetricNames returns the names of the log-based metrics declared.
func logMetricNames(c *tfConfig) []string {
	var out []string
	for _, m := range c.Result.Find("google_logging_metric") {
		out = append(out, ctyString(m.Body.Attr("name")))
	}
	return out
}

// ctyStrings returns every known string within v.
func ctyStrings(v cty.Value) []string {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() {
		return nil
	}
	switch {
	case v.Type() == cty.String:
		return []string{v.AsString()}
	case v.CanIterateElements():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, ctyStrings(e)...)
		}
		return out
	}
	return nil
}

// TestMonitoringNamesKnownMetrics checks every filter of the alert
// policies: each names a metric the code emits or a known one of Google
// Cloud's, and none names the domain of the exporters the code no longer
// uses.
func TestMonitoringNamesKnownMetrics(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		ins := codeInstruments(t, f)
		logs := logMetricNames(c)
		n := 0
		for _, p := range c.Result.Find("google_monitoring_alert_policy") {
			for _, cond := range p.Body.Sub("conditions") {
				for _, kind := range []string{"condition_threshold", "condition_absent"} {
					if b := cond.One(kind); b != nil {
						n++
						if problem := metricProblem(ctyString(b.Attr("filter")), ins, logs); problem != "" {
							t.Errorf("%s, condition %q: filter %s", p.Addr(), ctyString(cond.Attr("display_name")), problem)
						}
					}
				}
			}
		}
		if n == 0 {
			t.Fatal("no alert policy filter found")
		}
		for _, typ := range []string{"google_monitoring_alert_policy", "google_logging_metric", "google_monitoring_dashboard"} {
			for _, i := range c.Result.Find(typ) {
				for _, s := range ctyStrings(i.Value) {
					if strings.Contains(s, "workload.googleapis.com/") {
						t.Errorf("%s still names a workload.googleapis.com/ metric: %s", i.Addr(), s)
					}
				}
			}
		}
	})
}
