package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Bounds of verify.
const (
	defaultVerifyMax = 10000
	maxVerifyMax     = 1000000
	maxConcurrency   = 32
)

// Problems verify reports beyond those of shared/receipt and shared/ledger.
const (
	// problemCheckpoint: the checkpoint does not open with the published
	// key (bad signature, wrong origin, not a note).
	problemCheckpoint = "bad_checkpoint"
	// problemMissing: an instance is at a version its receipts do not reach.
	problemMissing = "missing_receipt"
	// problemHead: the chain's last receipt is not the one the instance
	// records.
	problemHead = "head_mismatch"
	// problemDuplicate: two receipts of one instance carry one seq.
	problemDuplicate = "fork"
	// problemProof: the console could not produce a receipt's proof.
	problemProof = "proof_unavailable"
	// problemUnknownInstance: a receipt of an instance the tenant's
	// governors do not list.
	problemUnknownInstance = "unknown_instance"
)

// verifyProblem is one failed check.
type verifyProblem struct {
	Problem string `json:"problem"`
	Where   string `json:"where"`
	Detail  string `json:"detail"`
}

// checkpointView is the checkpoint verify checked against.
type checkpointView struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	Root   string `json:"root"`
}

// instanceCheck is the result of one instance.
type instanceCheck struct {
	Domain   string `json:"domain"`
	Subject  string `json:"subject"`
	Version  int64  `json:"version"`
	Receipts int    `json:"receipts"`
	Included int    `json:"included"`
	Pending  int    `json:"pending"`
	OK       bool   `json:"ok"`
}

// verifyOutput is what verify -json prints.
type verifyOutput struct {
	Tenant     string          `json:"tenant_id"`
	OK         bool            `json:"ok"`
	Checkpoint *checkpointView `json:"checkpoint"`
	Receipts   int             `json:"receipts"`
	Included   int             `json:"included"`
	Pending    int             `json:"pending"`
	Instances  []instanceCheck `json:"instances"`
	Problems   []verifyProblem `json:"problems"`
	// Warnings are doubts that do not fail verification: receipts long
	// decided but still not in the checkpoint's tree.
	Warnings []verifyProblem `json:"warnings"`
}

// proofResult is the outcome of one receipt's inclusion check.
type proofResult struct {
	included bool
	pending  bool
	problem  *verifyProblem
}

func runVerify(ctx context.Context, c *cliCall) error {
	fs := c.flags("verify")
	maxReceipts := fs.Int("max", defaultVerifyMax, "refuse to verify a tenant with more receipts than this")
	concurrency := fs.Int("concurrency", 8, "inclusion proofs fetched in parallel")
	pos, err := c.parse(fs, c.args, "TENANT")
	if err != nil {
		return err
	}
	tenant := pos[0]
	if err := tenantArg(tenant); err != nil {
		return err
	}
	if *maxReceipts < 1 || *maxReceipts > maxVerifyMax {
		return usagef("-max %d: want 1 to %d", *maxReceipts, maxVerifyMax)
	}
	if *concurrency < 1 || *concurrency > maxConcurrency {
		return usagef("-concurrency %d: want 1 to %d", *concurrency, maxConcurrency)
	}
	out, err := verifyTenant(ctx, c.client, tenant, *maxReceipts, *concurrency)
	if err != nil {
		return err
	}
	if c.json {
		if err := c.printJSON(out); err != nil {
			return err
		}
	} else if err := printVerify(c, out); err != nil {
		return err
	}
	if !out.OK {
		return &verifyFailed{n: len(out.Problems)}
	}
	return nil
}

// verifyTenant checks the tenant's receipts the way an auditor does,
// trusting nothing the console says but the published key: the checkpoint
// (fetched first, so that every receipt it covers is in the listing),
// every receipt's hash, every instance's chain up to the instance's
// version, and every receipt's inclusion proof against the checkpoint.
func verifyTenant(ctx context.Context, cl *consoleClient, tenant string, maxReceipts, concurrency int) (verifyOutput, error) {
	out := verifyOutput{Tenant: tenant, Instances: []instanceCheck{}, Problems: []verifyProblem{}, Warnings: []verifyProblem{}}
	keyText, err := cl.text(ctx, "/api/v1/checkpoint/key")
	if err != nil {
		return out, fmt.Errorf("the ledger's verifier key: %w", err)
	}
	verifier, err := ledger.NewVerifier(string(keyText))
	if err != nil {
		return out, fmt.Errorf("the ledger's verifier key: %s", fault.ErrorMessage(err))
	}
	signed, err := cl.text(ctx, "/api/v1/checkpoint")
	if err != nil {
		return out, fmt.Errorf("the signed checkpoint: %w", err)
	}
	var cp *ledger.Checkpoint
	if opened, err := ledger.OpenCheckpoint(signed, verifier); err != nil {
		out.Problems = append(out.Problems, verifyProblem{Problem: problemCheckpoint, Where: "checkpoint", Detail: fault.ErrorMessage(err)})
	} else {
		cp = &opened
		out.Checkpoint = &checkpointView{Origin: cp.Origin, Size: cp.Size, Root: cp.Root.String()}
	}
	var govs governorsAnswer
	if _, err := cl.getJSON(ctx, tenantPath(tenant)+"/governors", nil, &govs); err != nil {
		return out, err
	}
	all, err := tenantReceipts(ctx, cl, tenant, maxReceipts)
	if err != nil {
		return out, err
	}
	out.Receipts = len(all)

	// The chains.
	type key struct{ domain, subject string }
	chains := map[key][]*receipt.Receipt{}
	for i := range all {
		r := &all[i]
		k := key{r.Domain, r.Subject}
		if r.TenantID != tenant {
			out.Problems = append(out.Problems, verifyProblem{Problem: string(receipt.WrongInstance), Where: where(r),
				Detail: fmt.Sprintf("the listing of tenant %s holds a receipt of tenant %s", tenant, cell(r.TenantID))})
			continue
		}
		chains[k] = append(chains[k], r)
	}
	versions := map[key]int64{}
	heads := map[key]string{}
	for _, g := range govs.Governors {
		versions[key{g.Domain, g.Subject}] = g.Version
		heads[key{g.Domain, g.Subject}] = g.LastHash
		if _, ok := chains[key{g.Domain, g.Subject}]; !ok {
			chains[key{g.Domain, g.Subject}] = nil
		}
	}
	keys := make([]key, 0, len(chains))
	for k := range chains {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].domain != keys[j].domain {
			return keys[i].domain < keys[j].domain
		}
		return keys[i].subject < keys[j].subject
	})
	results := proveAll(ctx, cl, all, cp, concurrency)
	var pending []*receipt.Receipt
	for _, k := range keys {
		chain := chains[k]
		sort.SliceStable(chain, func(i, j int) bool { return chain[i].Seq < chain[j].Seq })
		ic := instanceCheck{Domain: k.domain, Subject: k.subject, Version: versions[k], Receipts: len(chain), OK: true}
		fail := func(p verifyProblem) {
			ic.OK = false
			out.Problems = append(out.Problems, p)
		}
		version, listed := versions[k]
		if !listed {
			fail(verifyProblem{Problem: problemUnknownInstance, Where: instanceWhere(tenant, k.domain, k.subject),
				Detail: "the tenant's governors do not list this instance, but it has receipts"})
		}
		v := receipt.NewVerifier()
		reported := map[*receipt.Receipt]bool{}
		for i, r := range chain {
			if i > 0 && chain[i-1].Seq == r.Seq {
				fail(verifyProblem{Problem: problemDuplicate, Where: where(r),
					Detail: fmt.Sprintf("two receipts for seq %d: %s and %s", r.Seq, cell(chain[i-1].Hash), cell(r.Hash))})
				break
			}
			if h := r.ComputeHash(); h != r.Hash {
				fail(verifyProblem{Problem: string(receipt.HashMismatch), Where: where(r),
					Detail: fmt.Sprintf("hash is %s, its canonical JSON hashes to %s: the receipt was altered", cell(r.Hash), h)})
				reported[r] = true
			}
			if err := v.Add(r); err != nil {
				var ce *receipt.ChainError
				if errors.As(err, &ce) && !(ce.Problem == receipt.HashMismatch && reported[r]) {
					fail(verifyProblem{Problem: string(ce.Problem), Where: where(r), Detail: cell(ce.Detail)})
				}
				break
			}
		}
		seq, head := v.Head()
		switch {
		case ic.OK && listed && seq < version:
			fail(verifyProblem{Problem: problemMissing, Where: instanceWhere(tenant, k.domain, k.subject),
				Detail: fmt.Sprintf("the instance is at version %d but its receipts end at seq %d", version, seq)})
		case ic.OK && listed && seq == version && version > 0 && heads[k] != "" && heads[k] != head:
			fail(verifyProblem{Problem: problemHead, Where: instanceWhere(tenant, k.domain, k.subject),
				Detail: fmt.Sprintf("the last receipt's hash is %s, the instance records %s: the last receipt was rewritten", head, cell(heads[k]))})
		}
		// The proofs: in chain order, a receipt not yet in the tree may
		// only be followed by others not in it.
		pendingSeen := false
		for _, r := range chain {
			res, ok := results[r]
			if !ok || reported[r] {
				continue
			}
			switch {
			case res.problem != nil:
				fail(*res.problem)
			case res.pending:
				pendingSeen = true
				ic.Pending++
				pending = append(pending, r)
			case res.included && pendingSeen:
				fail(verifyProblem{Problem: string(ledger.NotIncluded), Where: where(r),
					Detail: "the receipt is in the tree but an earlier receipt of its chain is not"})
			case res.included:
				ic.Included++
			}
		}
		out.Included += ic.Included
		out.Pending += ic.Pending
		out.Instances = append(out.Instances, ic)
	}
	if cp != nil && len(pending) > 0 {
		out.Warnings = append(out.Warnings, stalePending(ctx, cl, *cp, pending)...)
	}
	out.OK = len(out.Problems) == 0
	return out, nil
}

// integrationGrace is how long after its decision a receipt is expected in
// the checkpoint's tree.
const integrationGrace = 5 * time.Minute

// stalePending warns of the receipts decided integrationGrace or more
// before the checkpoint was signed (its time in the checkpoint history)
// that its tree does not hold: integration lags, or the stored receipt is
// not the one the ledger logged (a rewritten last receipt of a chain,
// rehashed, looks pending). Without the history there is nothing to say.
func stalePending(ctx context.Context, cl *consoleClient, cp ledger.Checkpoint, pending []*receipt.Receipt) []verifyProblem {
	var hist struct {
		Checkpoints []struct {
			Size int64  `json:"size"`
			Time string `json:"time"`
		} `json:"checkpoints"`
	}
	if _, err := cl.getJSON(ctx, "/api/v1/checkpoints", nil, &hist); err != nil {
		return nil
	}
	var signed time.Time
	for _, h := range hist.Checkpoints {
		if h.Size != cp.Size {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, h.Time); err == nil && (signed.IsZero() || t.Before(signed)) {
			signed = t
		}
	}
	if signed.IsZero() {
		return nil
	}
	var out []verifyProblem
	for _, r := range pending {
		decided, err := time.Parse(time.RFC3339Nano, r.DecidedAt)
		if err == nil && decided.Add(integrationGrace).Before(signed) {
			out = append(out, verifyProblem{Problem: "not_integrated", Where: where(r),
				Detail: fmt.Sprintf("decided at %s, but the checkpoint signed at %s does not hold it: integration lags, or the stored receipt is not the one logged", r.DecidedAt, signed.UTC().Format(time.RFC3339))})
		}
	}
	return out
}

// tenantReceipts lists every receipt of tenant, at most max.
func tenantReceipts(ctx context.Context, cl *consoleClient, tenant string, max int) ([]receipt.Receipt, error) {
	var all []receipt.Receipt
	token := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(pageLimit)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var page receiptsPage
		if _, err := cl.getJSON(ctx, tenantPath(tenant)+"/receipts", q, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Receipts...)
		if len(all) > max {
			return nil, fmt.Errorf("tenant %s has more than %d receipts; raise -max to verify them all", tenant, max)
		}
		if page.Next == "" || page.Next == token || len(page.Receipts) == 0 {
			return all, nil
		}
		token = page.Next
	}
}

// proveAll fetches and checks the inclusion proof of every receipt
// against cp (none when cp is nil: the checkpoint did not verify).
func proveAll(ctx context.Context, cl *consoleClient, all []receipt.Receipt, cp *ledger.Checkpoint, concurrency int) map[*receipt.Receipt]proofResult {
	results := make(map[*receipt.Receipt]proofResult, len(all))
	if cp == nil {
		return results
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan *receipt.Receipt)
	for range concurrency {
		wg.Go(func() {
			for r := range work {
				res := prove(ctx, cl, r, *cp)
				mu.Lock()
				results[r] = res
				mu.Unlock()
			}
		})
	}
	for i := range all {
		work <- &all[i]
	}
	close(work)
	wg.Wait()
	return results
}

// prove checks one receipt's inclusion in the tree of cp.
func prove(ctx context.Context, cl *consoleClient, r *receipt.Receipt, cp ledger.Checkpoint) proofResult {
	if cp.Size == 0 {
		return proofResult{pending: true}
	}
	if !ledger.IsReceiptHash(r.Hash) {
		return proofResult{problem: &verifyProblem{Problem: string(receipt.HashMismatch), Where: where(r), Detail: "hash is not 64 lowercase hex digits"}}
	}
	var p ledger.InclusionProof
	_, err := cl.getJSON(ctx, "/api/v1/receipts/"+r.Hash+"/proof", url.Values{"size": {strconv.FormatInt(cp.Size, 10)}}, &p)
	var ce *consoleError
	switch {
	case errors.As(err, &ce) && ce.Status == http.StatusNotFound:
		// Not in the checkpoint's tree (yet): integration follows
		// storage.
		return proofResult{pending: true}
	case err != nil:
		return proofResult{problem: &verifyProblem{Problem: problemProof, Where: where(r), Detail: plainError(err)}}
	}
	if err := ledger.VerifyInclusion(r, &p, cp); err != nil {
		var ve *ledger.VerifyError
		if errors.As(err, &ve) {
			return proofResult{problem: &verifyProblem{Problem: string(ve.Problem), Where: where(r), Detail: cell(ve.Detail)}}
		}
		return proofResult{problem: &verifyProblem{Problem: problemProof, Where: where(r), Detail: plainError(err)}}
	}
	return proofResult{included: true}
}

// where names a receipt in a problem.
func where(r *receipt.Receipt) string {
	return fmt.Sprintf("receipt %s seq %d", instanceWhere(r.TenantID, r.Domain, r.Subject), r.Seq)
}

// instanceWhere names an instance in a problem.
func instanceWhere(tenant, domain, subject string) string {
	return cell(tenant) + "/" + cell(domain) + "/" + cell(subject)
}

// printVerify prints a verification for people.
func printVerify(c *cliCall, out verifyOutput) error {
	w := c.env.stdout
	if cp := out.Checkpoint; cp != nil {
		fmt.Fprintf(w, "checkpoint  origin %s, tree size %d, root %s (signature verified with the published key)\n", cell(cp.Origin), cp.Size, cp.Root)
	} else {
		fmt.Fprintf(w, "checkpoint  NOT VERIFIED: inclusion proofs not checked\n")
	}
	t := c.table()
	row(t, "DOMAIN", "SUBJECT", "VERSION", "RECEIPTS", "INCLUDED", "PENDING", "RESULT")
	for _, ic := range out.Instances {
		res := "ok"
		if !ic.OK {
			res = "FAILED"
		}
		row(t, ic.Domain, ic.Subject, strconv.FormatInt(ic.Version, 10), strconv.Itoa(ic.Receipts), strconv.Itoa(ic.Included), strconv.Itoa(ic.Pending), res)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(out.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, p := range out.Warnings {
			fmt.Fprintf(w, "  %s  %s: %s\n", cell(p.Problem), cellN(p.Where, 300), cellN(p.Detail, 500))
		}
	}
	if len(out.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range out.Problems {
			fmt.Fprintf(w, "  %s  %s: %s\n", cell(p.Problem), cellN(p.Where, 300), cellN(p.Detail, 500))
		}
		return nil
	}
	fmt.Fprintf(w, "\nok: %d receipts of %d instances, hashes and chains intact, %d proven included in the checkpoint, %d not yet integrated\n",
		out.Receipts, len(out.Instances), out.Included, out.Pending)
	return nil
}
