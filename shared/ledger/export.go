package ledger

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// ExportFormat names the version of the Export document.
const ExportFormat = "autonomics-ledger-export/v1"

// Export is a tenant's ledger as an auditor receives it: every receipt of
// every governor instance of the tenant, in chain order, each with its
// inclusion proof in the tree of size TreeSize. Receipts not yet in that
// tree (pending integration) carry Index -1 and no proof; they may only
// end a chain.
type Export struct {
	Format   string    `json:"format"`
	TenantID string    `json:"tenant_id"`
	TreeSize int64     `json:"tree_size"`
	RootHash tlog.Hash `json:"root_hash"`
	// Checkpoint is the signed checkpoint of size TreeSize when the export
	// was made at the latest size; empty otherwise, and the auditor
	// supplies the checkpoint.
	Checkpoint string           `json:"checkpoint,omitempty"`
	Instances  []ExportInstance `json:"instances"`
}

// ExportInstance is one governor instance's chain.
type ExportInstance struct {
	Domain   string          `json:"domain"`
	Subject  string          `json:"subject"`
	Receipts []ExportReceipt `json:"receipts"`
}

// ExportReceipt is a receipt and its inclusion proof.
type ExportReceipt struct {
	// Index is the receipt's position in the log, or -1 when it is not in
	// the tree of the export's size.
	Index   int64            `json:"index"`
	Receipt receipt.Receipt  `json:"receipt"`
	Proof   tlog.RecordProof `json:"proof,omitempty"`
}

// ExportReport summarises a verified export.
type ExportReport struct {
	Instances int
	// Included counts receipts proven to be in the tree; Pending those not
	// yet integrated at the export's tree size.
	Included int
	Pending  int
}

// ChainReader reads governor instances and their receipt chains; the
// receipt store (store.Store) is one.
type ChainReader interface {
	Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error)
	Chain(ctx context.Context, k governor.Key, after int64, limit int) ([]receipt.Receipt, error)
}

// exportPage is the number of receipts read and looked up at a time.
const exportPage = 500

// Export builds the export of tenant's receipts, read from chains, with
// inclusion proofs in the tree of size size (0: the latest).
func (l *Log) Export(ctx context.Context, chains ChainReader, tenant string, size int64) (*Export, error) {
	const op = "ledger.Export"
	st, err := l.State(ctx)
	if err != nil {
		return nil, err
	}
	n, err := treeSize(op, size, st)
	if err != nil {
		return nil, err
	}
	r := l.reader(ctx, st)
	exp := &Export{Format: ExportFormat, TenantID: tenant, TreeSize: n, Instances: []ExportInstance{}}
	if exp.RootHash, err = rootAt(n, st, r); err != nil {
		return nil, wrapTlog(op, err)
	}
	if n == st.Size {
		exp.Checkpoint = string(st.Checkpoint)
	}
	insts, err := chains.Instances(ctx, tenant, "")
	if err != nil {
		return nil, err
	}
	for _, inst := range insts {
		ei := ExportInstance{Domain: string(inst.Domain), Subject: inst.Subject, Receipts: []ExportReceipt{}}
		var after int64
		for {
			page, err := chains.Chain(ctx, inst.Key, after, exportPage)
			if err != nil {
				return nil, err
			}
			hashes := make([]string, len(page))
			for i := range page {
				hashes[i] = page[i].Hash
			}
			found, err := l.store.Lookup(ctx, hashes)
			if err != nil {
				return nil, err
			}
			for _, rec := range page {
				er := ExportReceipt{Index: Unassigned, Receipt: rec}
				if e, ok := found[rec.Hash]; ok && e.Index != Unassigned && e.Index < n {
					p, err := l.prove(r, st, n, e)
					if err != nil {
						return nil, err
					}
					er.Index, er.Proof = e.Index, p.Proof
				}
				ei.Receipts = append(ei.Receipts, er)
			}
			if len(page) < exportPage {
				break
			}
			after = page[len(page)-1].Seq
		}
		exp.Instances = append(exp.Instances, ei)
	}
	return exp, nil
}

// indexName names a receipt's position in an export.
func indexName(index int64) string {
	if index == Unassigned {
		return "pending"
	}
	return fmt.Sprintf("index %d", index)
}

// VerifyExport checks an export against checkpoint cp, which must come
// from a verified checkpoint (OpenCheckpoint): the export is of cp's tree;
// every receipt belongs to the export's tenant and to its instance; no two
// receipts of an instance share a seq or a prev_hash (problem Fork, naming
// both receipts' indices); every instance's receipts form an intact hash
// chain from seq 1; every receipt with an index is proven to be that entry
// of cp's tree, no two receipts claim one index; and receipts without an
// index only end a chain. The first failure is a *VerifyError naming the
// receipt.
func VerifyExport(e *Export, cp Checkpoint) (ExportReport, error) {
	var rep ExportReport
	switch {
	case e.Format != ExportFormat:
		return rep, failure(Malformed, "export", "format is %s, want %q", httpjson.Quote(e.Format), ExportFormat)
	case e.TreeSize != cp.Size:
		return rep, failure(WrongTreeSize, "export", "the export is of tree size %d, the checkpoint has size %d; export again with ?size=%d", e.TreeSize, cp.Size, cp.Size)
	case e.RootHash != cp.Root:
		return rep, failure(NotIncluded, "export", "the export's root %s is not the checkpoint's root %s", e.RootHash, cp.Root)
	}
	seen := map[governor.Key]bool{}
	indices := map[int64]string{}
	for _, inst := range e.Instances {
		name := instanceName(e.TenantID, inst.Domain, inst.Subject)
		k := governor.Key{Tenant: e.TenantID, Domain: governor.Domain(inst.Domain), Subject: inst.Subject}
		if seen[k] {
			return rep, failure(Malformed, "instance "+name, "the instance appears twice")
		}
		seen[k] = true
		v := receipt.NewVerifier()
		pending := false
		seqs := map[int64]int64{}
		links := map[string]forkSeen{}
		for i := range inst.Receipts {
			er := &inst.Receipts[i]
			r := &er.Receipt
			where := fmt.Sprintf("receipt %s seq %d", name, r.Seq)
			if r.TenantID != e.TenantID || r.Domain != inst.Domain || r.Subject != inst.Subject {
				return rep, failure(BrokenChain, where, "the receipt belongs to %s", instanceName(r.TenantID, r.Domain, r.Subject))
			}
			if first, ok := seqs[r.Seq]; ok {
				return rep, failure(Fork, fmt.Sprintf("%s (%s and %s)", where, indexName(first), indexName(er.Index)),
					"two receipts for one place: the second is %s", echo(r.Hash))
			}
			seqs[r.Seq] = er.Index
			if first, ok := links[r.PrevHash]; ok {
				return rep, failure(Fork, fmt.Sprintf("receipts %s seq %d and seq %d (%s and %s)", name, first.seq, r.Seq, indexName(first.index), indexName(er.Index)),
					"two receipts of the instance follow prev_hash %s", echo(r.PrevHash))
			}
			links[r.PrevHash] = forkSeen{index: er.Index, seq: r.Seq}
			if err := v.Add(r); err != nil {
				var ce *receipt.ChainError
				if errors.As(err, &ce) {
					return rep, failure(BrokenChain, where, "%s: %s", ce.Problem, ce.Detail)
				}
				return rep, err
			}
			if er.Index == Unassigned {
				pending = true
				rep.Pending++
				continue
			}
			where = fmt.Sprintf("%s (index %d)", where, er.Index)
			if pending {
				return rep, failure(NotIncluded, where, "an earlier receipt of the chain is not in the tree")
			}
			if other, dup := indices[er.Index]; dup {
				return rep, failure(Malformed, where, "index %d is also claimed by receipt %s", er.Index, other)
			}
			indices[er.Index] = r.Hash
			if err := checkRecord(er.Proof, cp, er.Index, RecordHash(r.JSON()), where); err != nil {
				return rep, err
			}
			rep.Included++
		}
		rep.Instances++
	}
	return rep, nil
}
