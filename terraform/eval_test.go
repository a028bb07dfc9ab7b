package terraform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// This file is a small evaluator of Terraform configurations: enough of
// the language (variables with optional attributes, locals, resources and
// data sources with for_each and count, dynamic blocks, child modules,
// outputs and the functions the configuration uses) to compute what each
// resource instance would be given to the provider. Computed attributes
// that the configuration references are stood in for by placeholders
// derived from the configuration (see computedAttrs).

// tfModule is one parsed module directory.
type tfModule struct {
	dir       string
	files     []*hcl.File
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources []*hclsyntax.Block // resource and data blocks
	calls     []*hclsyntax.Block // module blocks
	outputs   map[string]*hclsyntax.Block
	providers []*hclsyntax.Block
}

// loadModule parses every .tf file of dir.
func loadModule(dir string) (*tfModule, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no .tf files", dir)
	}
	m := &tfModule{
		dir:       dir,
		variables: map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
		outputs:   map[string]*hclsyntax.Block{},
	}
	p := hclparse.NewParser()
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			return nil, diags
		}
		m.files = append(m.files, f)
		body := f.Body.(*hclsyntax.Body)
		if len(body.Attributes) > 0 {
			return nil, fmt.Errorf("%s: top-level attributes are not allowed", path)
		}
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable":
				if _, dup := m.variables[b.Labels[0]]; dup {
					return nil, fmt.Errorf("%s: variable %q declared twice", path, b.Labels[0])
				}
				m.variables[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.locals[name]; dup {
						return nil, fmt.Errorf("%s: local %q declared twice", path, name)
					}
					m.locals[name] = a
				}
			case "resource", "data":
				m.resources = append(m.resources, b)
			case "module":
				m.calls = append(m.calls, b)
			case "output":
				m.outputs[b.Labels[0]] = b
			case "provider":
				m.providers = append(m.providers, b)
			case "terraform", "moved", "import", "removed", "check":
			default:
				return nil, fmt.Errorf("%s: unexpected block %q", path, b.Type)
			}
		}
	}
	seen := map[string]bool{}
	for _, b := range m.resources {
		k := b.Type + "." + b.Labels[0] + "." + b.Labels[1]
		if seen[k] {
			return nil, fmt.Errorf("%s: %s declared twice", dir, k)
		}
		seen[k] = true
	}
	return m, nil
}

// tfBody is an evaluated block body: attribute values and nested blocks,
// with dynamic blocks expanded.
type tfBody struct {
	Attrs  map[string]cty.Value
	Blocks []*tfBlock
}

// tfBlock is an evaluated nested block.
type tfBlock struct {
	Type string
	Body *tfBody
}

// Attr returns the value of attribute name, or cty.NilVal when it is not
// set.
func (b *tfBody) Attr(name string) cty.Value {
	if b == nil {
		return cty.NilVal
	}
	return b.Attrs[name]
}

// Str returns the attribute as a string, or "" when it is unset, null,
// unknown or not a string.
func (b *tfBody) Str(name string) string {
	return ctyString(b.Attr(name))
}

// Sub returns the nested blocks of a type.
func (b *tfBody) Sub(typ string) []*tfBody {
	if b == nil {
		return nil
	}
	var out []*tfBody
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			out = append(out, blk.Body)
		}
	}
	return out
}

// One returns the first nested block of a type, or nil.
func (b *tfBody) One(typ string) *tfBody {
	if s := b.Sub(typ); len(s) > 0 {
		return s[0]
	}
	return nil
}

// Path follows nested blocks and returns the final attribute, e.g.
// Path("push_config", "oidc_token", "service_account_email").
func (b *tfBody) Path(names ...string) cty.Value {
	for _, n := range names[:len(names)-1] {
		b = b.One(n)
	}
	return b.Attr(names[len(names)-1])
}

// value renders the body as an object, blocks as tuples of objects.
func (b *tfBody) value() map[string]cty.Value {
	out := map[string]cty.Value{}
	for k, v := range b.Attrs {
		out[k] = v
	}
	groups := map[string][]cty.Value{}
	var order []string
	for _, blk := range b.Blocks {
		if _, ok := groups[blk.Type]; !ok {
			order = append(order, blk.Type)
		}
		groups[blk.Type] = append(groups[blk.Type], cty.ObjectVal(blk.Body.value()))
	}
	for _, t := range order {
		out[t] = cty.TupleVal(groups[t])
	}
	return out
}

// tfInstance is one evaluated resource or data source instance.
type tfInstance struct {
	Module string // address of the module instance, "" for the root
	Mode   string // resource or data
	Type   string
	Name   string
	Key    cty.Value // cty.NilVal without for_each or count
	Body   *tfBody
	Value  cty.Value
}

// Addr returns the instance's address, e.g.
// module.governor["billing"].google_pubsub_subscription.push.
func (i *tfInstance) Addr() string {
	a := i.Type + "." + i.Name
	if i.Mode == "data" {
		a = "data." + a
	}
	a += keySuffix(i.Key)
	if i.Module != "" {
		a = i.Module + "." + a
	}
	return a
}

func keySuffix(k cty.Value) string {
	if k == cty.NilVal {
		return ""
	}
	if k.Type() == cty.Number {
		bf := k.AsBigFloat()
		return "[" + bf.Text('f', -1) + "]"
	}
	return fmt.Sprintf("[%q]", k.AsString())
}

// tfResult is an evaluated module instance.
type tfResult struct {
	Addr      string
	Vars      map[string]cty.Value
	Locals    map[string]cty.Value
	Outputs   map[string]cty.Value
	Instances []*tfInstance // of this module and its children
	Diags     hcl.Diagnostics
}

// Find returns the instances of a resource type, in evaluation order.
func (r *tfResult) Find(typ string) []*tfInstance {
	var out []*tfInstance
	for _, i := range r.Instances {
		if i.Mode == "resource" && i.Type == typ {
			out = append(out, i)
		}
	}
	return out
}

// evaluator evaluates modules for one provider configuration.
type evaluator struct {
	project string
	region  string
	funcs   map[string]function.Function
	modules map[string]*tfModule
}

func newEvaluator(project, region string) *evaluator {
	return &evaluator{project: project, region: region, funcs: tfFunctions(), modules: map[string]*tfModule{}}
}

func (e *evaluator) module(dir string) (*tfModule, error) {
	dir = filepath.Clean(dir)
	if m, ok := e.modules[dir]; ok {
		return m, nil
	}
	m, err := loadModule(dir)
	if err != nil {
		return nil, err
	}
	e.modules[dir] = m
	return m, nil
}

// maxPasses bounds the fixed-point iteration; each pass resolves at least
// one more level of references, and the configuration is far shallower.
const maxPasses = 30

// Evaluate evaluates module m with input variable values.
func (e *evaluator) Evaluate(m *tfModule, inputs map[string]cty.Value, addr string) *tfResult {
	res := &tfResult{Addr: addr, Outputs: map[string]cty.Value{}}
	vars, diags := e.variables(m, inputs)
	res.Vars = vars
	res.Diags = append(res.Diags, diags...)

	locals := map[string]cty.Value{}
	for name := range m.locals {
		locals[name] = cty.DynamicVal
	}
	resources := map[string]map[string]cty.Value{} // "resource"/"data" + type => name => value
	calls := map[string]cty.Value{}
	outputs := map[string]cty.Value{}
	var prev cty.Value
	for pass := 0; pass < maxPasses; pass++ {
		var passDiags hcl.Diagnostics
		var instances []*tfInstance
		ctx := e.context(m, vars, locals, resources, calls)
		for _, name := range sortedKeys(m.locals) {
			v, d := m.locals[name].Expr.Value(ctx)
			passDiags = append(passDiags, d...)
			locals[name] = v
			ctx.Variables["local"] = cty.ObjectVal(locals)
		}
		for _, b := range m.resources {
			insts, d := e.resource(b, ctx, addr)
			passDiags = append(passDiags, d...)
			instances = append(instances, insts...)
			setResourceValue(resources, b, insts)
			ctx = e.context(m, vars, locals, resources, calls)
		}
		for _, call := range m.calls {
			child, val, d := e.call(m, call, ctx, addr)
			passDiags = append(passDiags, d...)
			for _, c := range child {
				instances = append(instances, c.Instances...)
				passDiags = append(passDiags, c.Diags...)
			}
			calls[call.Labels[0]] = val
			ctx = e.context(m, vars, locals, resources, calls)
		}
		for _, name := range sortedKeys(m.outputs) {
			a := m.outputs[name].Body.Attributes["value"]
			if a == nil {
				passDiags = append(passDiags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "output " + name + " has no value"})
				continue
			}
			v, d := a.Expr.Value(ctx)
			passDiags = append(passDiags, d...)
			outputs[name] = v
		}
		res.Instances = instances
		res.Locals = locals
		res.Outputs = outputs
		state := cty.ObjectVal(map[string]cty.Value{
			"locals":    cty.ObjectVal(locals),
			"resources": nestedObject(resources),
			"calls":     cty.ObjectVal(calls),
			"outputs":   cty.ObjectVal(outputs),
		})
		if pass > 0 && state.RawEquals(prev) {
			res.Diags = append(res.Diags, passDiags...)
			return res
		}
		prev = state
		if pass == maxPasses-1 {
			res.Diags = append(res.Diags, passDiags...)
			res.Diags = append(res.Diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "evaluation of " + m.dir + " did not settle"})
		}
	}
	return res
}

func nestedObject(m map[string]map[string]cty.Value) cty.Value {
	out := map[string]cty.Value{}
	for k, v := range m {
		out[k] = cty.ObjectVal(v)
	}
	return cty.ObjectVal(out)
}

// variables computes the module's variable values: the input, or the
// default, converted to the declared type with optional attribute
// defaults applied. A variable with neither is unknown.
func (e *evaluator) variables(m *tfModule, inputs map[string]cty.Value) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	for name := range inputs {
		if _, ok := m.variables[name]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("%s: value for undeclared variable %q", m.dir, name)})
		}
	}
	out := map[string]cty.Value{}
	for name, b := range m.variables {
		ty, defaults := cty.DynamicPseudoType, (*typeexpr.Defaults)(nil)
		if a := b.Body.Attributes["type"]; a != nil {
			var d hcl.Diagnostics
			ty, defaults, d = typeexpr.TypeConstraintWithDefaults(a.Expr)
			diags = append(diags, d...)
		}
		v, ok := inputs[name]
		if !ok {
			if a := b.Body.Attributes["default"]; a != nil {
				var d hcl.Diagnostics
				v, d = a.Expr.Value(nil)
				diags = append(diags, d...)
			} else {
				v = cty.UnknownVal(ty)
			}
		}
		if defaults != nil && v.IsKnown() && !v.IsNull() {
			v = defaults.Apply(v)
		}
		cv, err := convert.Convert(v, ty)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("%s: variable %q: %v", m.dir, name, err)})
			cv = cty.UnknownVal(ty)
		}
		out[name] = cv
	}
	return out, diags
}

// context builds the evaluation context of a module.
func (e *evaluator) context(m *tfModule, vars, locals map[string]cty.Value, resources map[string]map[string]cty.Value, calls map[string]cty.Value) *hcl.EvalContext {
	v := map[string]cty.Value{
		"var":   cty.ObjectVal(vars),
		"local": cty.ObjectVal(locals),
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(m.dir),
			"root":   cty.StringVal(m.dir),
			"cwd":    cty.StringVal(m.dir),
		}),
		"module": cty.ObjectVal(calls),
	}
	data := map[string]cty.Value{}
	for k, byName := range resources {
		mode, typ, _ := strings.Cut(k, " ")
		if mode == "data" {
			data[typ] = cty.ObjectVal(byName)
		} else {
			v[typ] = cty.ObjectVal(byName)
		}
	}
	// Resources not evaluated yet are unknown.
	for _, b := range m.resources {
		switch {
		case b.Type == "data" && data[b.Labels[0]] == cty.NilVal:
			data[b.Labels[0]] = cty.DynamicVal
		case b.Type == "resource" && v[b.Labels[0]] == cty.NilVal:
			v[b.Labels[0]] = cty.DynamicVal
		}
	}
	v["data"] = cty.ObjectVal(data)
	return &hcl.EvalContext{Variables: v, Functions: e.funcs}
}

// setResourceValue records the value references to a block see: an
// object keyed by for_each key, a tuple for count, the instance itself
// otherwise, and unknown while the expansion is unknown (insts is nil).
func setResourceValue(resources map[string]map[string]cty.Value, b *hclsyntax.Block, insts []*tfInstance) {
	k := b.Type + " " + b.Labels[0]
	if resources[k] == nil {
		resources[k] = map[string]cty.Value{}
	}
	name := b.Labels[1]
	_, hasForEach := b.Body.Attributes["for_each"]
	_, hasCount := b.Body.Attributes["count"]
	switch {
	case insts == nil:
		resources[k][name] = cty.DynamicVal
	case hasForEach:
		byKey := map[string]cty.Value{}
		for _, i := range insts {
			byKey[i.Key.AsString()] = i.Value
		}
		resources[k][name] = cty.ObjectVal(byKey)
	case hasCount:
		vals := make([]cty.Value, len(insts))
		for i, inst := range insts {
			vals[i] = inst.Value
		}
		resources[k][name] = cty.TupleVal(vals)
	default:
		resources[k][name] = insts[0].Value
	}
}

// expansion is one instance of a block with for_each or count.
type expansion struct {
	key  cty.Value
	vars map[string]cty.Value
}

// expand evaluates for_each or count. It returns nil (not an empty slice)
// when the collection is unknown.
func expand(body *hclsyntax.Body, ctx *hcl.EvalContext) ([]expansion, hcl.Diagnostics) {
	if a := body.Attributes["for_each"]; a != nil {
		v, diags := a.Expr.Value(ctx)
		if !v.IsWhollyKnown() || v.IsNull() {
			return nil, diags
		}
		out := []expansion{}
		t := v.Type()
		switch {
		case t.IsMapType() || t.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, ev := it.Element()
				out = append(out, expansion{key: k, vars: map[string]cty.Value{
					"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": ev}),
				}})
			}
		case t.IsSetType():
			for it := v.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				if ev.Type() != cty.String {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "for_each set of non-strings", Subject: a.Expr.Range().Ptr()})
					return nil, diags
				}
				out = append(out, expansion{key: ev, vars: map[string]cty.Value{
					"each": cty.ObjectVal(map[string]cty.Value{"key": ev, "value": ev}),
				}})
			}
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "for_each needs a map or a set of strings, not " + t.FriendlyName(), Subject: a.Expr.Range().Ptr()})
			return nil, diags
		}
		return out, diags
	}
	if a := body.Attributes["count"]; a != nil {
		v, diags := a.Expr.Value(ctx)
		if !v.IsKnown() || v.IsNull() {
			return nil, diags
		}
		n, _ := v.AsBigFloat().Int64()
		out := []expansion{}
		for i := range n {
			k := cty.NumberIntVal(i)
			out = append(out, expansion{key: k, vars: map[string]cty.Value{
				"count": cty.ObjectVal(map[string]cty.Value{"index": k}),
			}})
		}
		return out, diags
	}
	return []expansion{{key: cty.NilVal}}, nil
}

func childContext(ctx *hcl.EvalContext, vars map[string]cty.Value) *hcl.EvalContext {
	if len(vars) == 0 {
		return ctx
	}
	c := ctx.NewChild()
	c.Variables = vars
	return c
}

// Meta-arguments of resources and module calls, not given to providers.
var metaArgs = []string{"for_each", "count", "depends_on", "provider", "providers", "source", "version"}

// resource evaluates one resource or data block.
func (e *evaluator) resource(b *hclsyntax.Block, ctx *hcl.EvalContext, module string) ([]*tfInstance, hcl.Diagnostics) {
	exps, diags := expand(b.Body, ctx)
	if exps == nil {
		// Expected while references resolve; an error if it stays so.
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: fmt.Sprintf("%s.%s.%s: for_each or count is not known", b.Type, b.Labels[0], b.Labels[1]), Subject: b.DefRange().Ptr()})
	}
	out := []*tfInstance{}
	for _, x := range exps {
		ectx := childContext(ctx, x.vars)
		body, d := e.body(b.Body, ectx, metaArgs)
		diags = append(diags, d...)
		inst := &tfInstance{Module: module, Mode: b.Type, Type: b.Labels[0], Name: b.Labels[1], Key: x.key, Body: body}
		inst.Value = cty.ObjectVal(e.computedAttrs(inst))
		out = append(out, inst)
	}
	return out, diags
}

// body evaluates a block body, skipping the named attributes and
// lifecycle-like blocks, and expanding dynamic blocks.
func (e *evaluator) body(b *hclsyntax.Body, ctx *hcl.EvalContext, skip []string) (*tfBody, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := &tfBody{Attrs: map[string]cty.Value{}}
	for _, name := range sortedKeys(b.Attributes) {
		if slices.Contains(skip, name) {
			continue
		}
		v, d := b.Attributes[name].Expr.Value(ctx)
		diags = append(diags, d...)
		out.Attrs[name] = v
	}
	for _, blk := range b.Blocks {
		switch blk.Type {
		case "lifecycle", "provisioner", "connection", "precondition", "postcondition":
			continue
		case "dynamic":
			blocks, d := e.dynamic(blk, ctx)
			diags = append(diags, d...)
			out.Blocks = append(out.Blocks, blocks...)
		default:
			nb, d := e.body(blk.Body, ctx, nil)
			diags = append(diags, d...)
			out.Blocks = append(out.Blocks, &tfBlock{Type: blk.Type, Body: nb})
		}
	}
	return out, diags
}

// dynamic expands a dynamic block.
func (e *evaluator) dynamic(blk *hclsyntax.Block, ctx *hcl.EvalContext) ([]*tfBlock, hcl.Diagnostics) {
	typ := blk.Labels[0]
	iter := typ
	if a := blk.Body.Attributes["iterator"]; a != nil {
		iter = hcl.ExprAsKeyword(a.Expr)
	}
	a := blk.Body.Attributes["for_each"]
	if a == nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "dynamic block without for_each", Subject: blk.Range().Ptr()}}
	}
	coll, diags := a.Expr.Value(ctx)
	if !coll.IsWhollyKnown() || coll.IsNull() {
		return nil, diags
	}
	var content *hclsyntax.Block
	for _, c := range blk.Body.Blocks {
		if c.Type == "content" {
			content = c
		}
	}
	if content == nil {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "dynamic block without content", Subject: blk.Range().Ptr()})
	}
	if !coll.CanIterateElements() {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "dynamic for_each is not a collection", Subject: a.Expr.Range().Ptr()})
	}
	var out []*tfBlock
	for it := coll.ElementIterator(); it.Next(); {
		k, v := it.Element()
		if coll.Type().IsSetType() {
			k = v
		}
		c := childContext(ctx, map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})})
		nb, d := e.body(content.Body, c, nil)
		diags = append(diags, d...)
		out = append(out, &tfBlock{Type: typ, Body: nb})
	}
	return out, diags
}

// call evaluates a module call: each instance of the child module with
// its arguments, and the value module.<name> has in the caller.
func (e *evaluator) call(m *tfModule, call *hclsyntax.Block, ctx *hcl.EvalContext, module string) ([]*tfResult, cty.Value, hcl.Diagnostics) {
	name := call.Labels[0]
	src := call.Body.Attributes["source"]
	if src == nil {
		return nil, cty.DynamicVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "module " + name + " has no source"}}
	}
	sv, diags := src.Expr.Value(nil)
	if diags.HasErrors() || sv.Type() != cty.String || !(strings.HasPrefix(sv.AsString(), "./") || strings.HasPrefix(sv.AsString(), "../")) {
		return nil, cty.DynamicVal, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "module " + name + ": only local sources are evaluated"})
	}
	child, err := e.module(filepath.Join(m.dir, sv.AsString()))
	if err != nil {
		return nil, cty.DynamicVal, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "module " + name + ": " + err.Error()})
	}
	exps, d := expand(call.Body, ctx)
	diags = append(diags, d...)
	if exps == nil {
		return nil, cty.DynamicVal, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
			Summary: "module " + name + ": for_each or count is not known", Subject: call.DefRange().Ptr()})
	}
	var results []*tfResult
	byKey := map[string]cty.Value{}
	var single cty.Value
	for _, x := range exps {
		ectx := childContext(ctx, x.vars)
		args, d := e.body(call.Body, ectx, metaArgs)
		diags = append(diags, d...)
		addr := "module." + name + keySuffix(x.key)
		if module != "" {
			addr = module + "." + addr
		}
		r := e.Evaluate(child, args.Attrs, addr)
		results = append(results, r)
		out := cty.ObjectVal(r.Outputs)
		if x.key == cty.NilVal {
			single = out
		} else {
			byKey[x.key.AsString()] = out
		}
	}
	if single != cty.NilVal {
		return results, single, diags
	}
	return results, cty.ObjectVal(byKey), diags
}

// computedAttrs returns the instance's value as references see it: its
// arguments plus placeholders for the computed attributes the
// configuration reads. Placeholders derive from the arguments, so that
// equal references compare equal (a subscription's push endpoint is the
// uri of exactly one function).
func (e *evaluator) computedAttrs(i *tfInstance) map[string]cty.Value {
	v := i.Body.value()
	str := func(name string) string { return ctyString(v[name]) }
	project := str("project")
	if project == "" {
		project = e.project
	}
	set := func(name string, s string, deps ...string) {
		if _, ok := v[name]; ok {
			return
		}
		for _, d := range deps {
			if d == "" {
				v[name] = cty.UnknownVal(cty.String)
				return
			}
		}
		v[name] = cty.StringVal(s)
	}
	set("id", i.Addr())
	switch i.Type {
	case "google_service_account":
		email := str("account_id") + "@" + project + ".iam.gserviceaccount.com"
		set("email", email, str("account_id"))
		set("member", "serviceAccount:"+email, str("account_id"))
		set("name", "projects/"+project+"/serviceAccounts/"+email, str("account_id"))
		v["id"] = v["name"]
	case "google_project_service_identity":
		email := "service-000000000000@gcp-sa-" + strings.TrimSuffix(str("service"), ".googleapis.com") + ".iam.gserviceaccount.com"
		set("email", email, str("service"))
		set("member", "serviceAccount:"+email, str("service"))
	case "google_pubsub_topic":
		v["id"] = cty.UnknownVal(cty.String)
		if str("name") != "" {
			v["id"] = cty.StringVal("projects/" + project + "/topics/" + str("name"))
		}
	case "google_pubsub_subscription":
		v["id"] = cty.UnknownVal(cty.String)
		if str("name") != "" {
			v["id"] = cty.StringVal("projects/" + project + "/subscriptions/" + str("name"))
		}
	case "google_cloudfunctions2_function":
		uri, service := cty.UnknownVal(cty.String), cty.UnknownVal(cty.String)
		if str("name") != "" && str("location") != "" {
			uri = cty.StringVal("https://" + str("name") + "-function.a.run.app")
			service = cty.StringVal("projects/" + project + "/locations/" + str("location") + "/services/" + str("name"))
		}
		if sc, ok := v["service_config"]; ok && sc.LengthInt() == 1 {
			m := sc.Index(cty.NumberIntVal(0)).AsValueMap()
			m["uri"] = uri
			m["service"] = service
			v["service_config"] = cty.TupleVal([]cty.Value{cty.ObjectVal(m)})
		}
		set("url", "https://"+str("location")+"-"+project+".cloudfunctions.net/"+str("name"), str("location"), str("name"))
	case "google_cloud_run_v2_service":
		set("uri", "https://"+str("name")+".a.run.app", str("name"))
		set("location", e.region)
	case "google_secret_manager_secret":
		v["id"] = cty.UnknownVal(cty.String)
		if str("secret_id") != "" {
			v["id"] = cty.StringVal("projects/" + project + "/secrets/" + str("secret_id"))
		}
		set("name", "projects/0/secrets/"+str("secret_id"), str("secret_id"))
	case "google_storage_bucket":
		set("url", "gs://"+str("name"))
	case "google_monitoring_notification_channel", "google_monitoring_alert_policy":
		set("name", "projects/"+project+"/"+i.Addr())
	}
	return v
}

// ctyString returns v as a Go string when it is a known, non-null string.
func ctyString(v cty.Value) string {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tfFunctions are the Terraform functions the configuration may use.
func tfFunctions() map[string]function.Function {
	return map[string]function.Function{
		"abs":        stdlib.AbsoluteFunc,
		"alltrue":    allTrueFunc,
		"basename":   basenameFunc,
		"can":        tryfunc.CanFunc,
		"ceil":       stdlib.CeilFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"compact":    stdlib.CompactFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"distinct":   stdlib.DistinctFunc,
		"element":    stdlib.ElementFunc,
		"filesha256": fileSHA256Func,
		"flatten":    stdlib.FlattenFunc,
		"floor":      stdlib.FloorFunc,
		"format":     stdlib.FormatFunc,
		"formatlist": stdlib.FormatListFunc,
		"join":       stdlib.JoinFunc,
		"jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"keys":       stdlib.KeysFunc,
		"length":     stdlib.LengthFunc,
		"lookup":     stdlib.LookupFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"merge":      stdlib.MergeFunc,
		"min":        stdlib.MinFunc,
		"range":      stdlib.RangeFunc,
		"regex":      stdlib.RegexFunc,
		"regexall":   stdlib.RegexAllFunc,
		"replace":    stdlib.ReplaceFunc,
		"reverse":    stdlib.ReverseListFunc,
		"setproduct": stdlib.SetProductFunc,
		"setunion":   stdlib.SetUnionFunc,
		"slice":      stdlib.SliceFunc,
		"sort":       stdlib.SortFunc,
		"split":      stdlib.SplitFunc,
		"substr":     stdlib.SubstrFunc,
		"tobool":     stdlib.MakeToFunc(cty.Bool),
		"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":      stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":   stdlib.MakeToFunc(cty.String),
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"try":        tryfunc.TryFunc,
		"upper":      stdlib.UpperFunc,
		"values":     stdlib.ValuesFunc,
		"zipmap":     stdlib.ZipmapFunc,
	}
}

var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		result := cty.True
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if !v.IsKnown() {
				return cty.UnknownVal(cty.Bool), nil
			}
			if v.IsNull() || v.False() {
				result = cty.False
			}
		}
		return result, nil
	},
})

var basenameFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "path", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(filepath.Base(args[0].AsString())), nil
	},
})

// fileSHA256Func hashes a file; a file that does not exist here (the
// archive is built by another step) is unknown, as in a plan without it.
var fileSHA256Func = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "path", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		b, err := os.ReadFile(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), nil
		}
		sum := sha256.Sum256(b)
		return cty.StringVal(hex.EncodeToString(sum[:])), nil
	},
})
