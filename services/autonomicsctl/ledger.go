package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
)

// text fetches path as plain text.
func (q *apiClient) text(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.base+path, nil)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "autonomicsctl.query", err)
	}
	resp, err := q.http.Do(req)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "autonomicsctl.query", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fault.Errorf(fault.Unavailable, "autonomicsctl.query", "GET %s: %d %v", path, resp.StatusCode, err)
	}
	return body, nil
}

// verifyLedger waits until the signed checkpoint covers at least want
// receipts, then checks every tenant's export against it the way an
// auditor would offline: the signature with the published verifier key,
// every chain, and every receipt's inclusion proof.
func verifyLedger(ctx context.Context, q *apiClient, out io.Writer, tenants []string, want int, timeout time.Duration) []error {
	fmt.Fprintf(out, "\n== ledger (GET /v1/checkpoint, /v1/tenants/{t}/ledger) ==\n")
	key, err := q.text(ctx, "/v1/checkpoint/key")
	if err != nil {
		return []error{fmt.Errorf("ledger key: %w", err)}
	}
	v, err := ledger.NewVerifier(string(key))
	if err != nil {
		return []error{err}
	}
	var cp ledger.Checkpoint
	deadline := time.Now().Add(timeout)
	for {
		signed, err := q.text(ctx, "/v1/checkpoint")
		if err == nil {
			if cp, err = ledger.OpenCheckpoint(signed, v); err != nil {
				return []error{fmt.Errorf("checkpoint: %w", err)}
			}
			if cp.Size >= int64(want) {
				break
			}
		}
		if time.Now().After(deadline) {
			return []error{fmt.Errorf("the signed checkpoint covers %d receipts after %v, want at least %d", cp.Size, timeout, want)}
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Fprintf(out, "checkpoint  origin %s, tree size %d, root %s (signature verified)\n", cp.Origin, cp.Size, cp.Root)
	var problems []error
	for _, t := range tenants {
		var e ledger.Export
		if err := q.get(ctx, fmt.Sprintf("/v1/tenants/%s/ledger?size=%d", t, cp.Size), &e); err != nil {
			problems = append(problems, fmt.Errorf("export %s: %w", t, err))
			continue
		}
		rep, err := ledger.VerifyExport(&e, cp)
		if err != nil {
			fmt.Fprintf(out, "%-9s FAILED %v\n", t, err)
			problems = append(problems, fmt.Errorf("ledger export of %s: %w", t, err))
			continue
		}
		fmt.Fprintf(out, "%-9s ok  %d instances, %d receipts proven included, %d not yet integrated\n", t, rep.Instances, rep.Included, rep.Pending)
	}
	return problems
}
