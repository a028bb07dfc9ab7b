package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// auditTimeout bounds an audit over HTTP.
const auditTimeout = 10 * time.Minute

// flags parses args with the named string flags, all required unless
// listed in optional.
func flags(name string, args []string, optional []string, names ...string) (map[string]string, error) {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	vals := map[string]*string{}
	for _, n := range names {
		vals[n] = fl.String(n, "", "")
	}
	if err := fl.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	out := map[string]string{}
	for _, n := range names {
		out[n] = *vals[n]
		if out[n] == "" && !contains(optional, n) {
			return nil, fmt.Errorf("%w: -%s is required", errUsage, n)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loadKey reads a verifier key given inline or in a file.
func loadKey(arg string) (note.Verifier, error) {
	if v, err := ledger.NewVerifier(arg); err == nil {
		return v, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, fmt.Errorf("-key %s is neither a verifier key nor a readable file: %v", arg, err)
	}
	v, err := ledger.NewVerifier(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %v", arg, err)
	}
	return v, nil
}

// loadCheckpoint reads and verifies a signed checkpoint file.
func loadCheckpoint(file string, v note.Verifier) (ledger.Checkpoint, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return ledger.Checkpoint{}, err
	}
	cp, err := ledger.OpenCheckpoint(b, v)
	if err != nil {
		return ledger.Checkpoint{}, fmt.Errorf("checkpoint %s: %v", file, err)
	}
	return cp, nil
}

// loadJSON decodes a JSON file into v.
func loadJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	return nil
}

func inclusion(args []string, stdout io.Writer) error {
	f, err := flags("inclusion", args, []string{"receipt"}, "receipt", "proof", "checkpoint", "key")
	if err != nil {
		return err
	}
	v, err := loadKey(f["key"])
	if err != nil {
		return err
	}
	cp, err := loadCheckpoint(f["checkpoint"], v)
	if err != nil {
		return err
	}
	var p ledger.InclusionProof
	if err := loadJSON(f["proof"], &p); err != nil {
		return err
	}
	r := p.Receipt
	if f["receipt"] != "" {
		b, err := os.ReadFile(f["receipt"])
		if err != nil {
			return err
		}
		if r, err = receipt.Parse(b); err != nil {
			return fmt.Errorf("receipt %s: %v", f["receipt"], err)
		}
	}
	if r.Hash == "" {
		return fmt.Errorf("%w: the proof carries no receipt; give -receipt", errUsage)
	}
	if err := ledger.VerifyInclusion(&r, &p, cp); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: receipt %s (%s/%s/%s seq %d) is entry %d of %s\n", r.Hash, r.TenantID, r.Domain, r.Subject, r.Seq, p.Index, cp)
	return nil
}

func consistency(args []string, stdout io.Writer) error {
	f, err := flags("consistency", args, nil, "old", "new", "proof", "key")
	if err != nil {
		return err
	}
	v, err := loadKey(f["key"])
	if err != nil {
		return err
	}
	older, err := loadCheckpoint(f["old"], v)
	if err != nil {
		return err
	}
	newer, err := loadCheckpoint(f["new"], v)
	if err != nil {
		return err
	}
	var p ledger.ConsistencyProof
	if err := loadJSON(f["proof"], &p); err != nil {
		return err
	}
	if err := ledger.VerifyConsistency(older, newer, &p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %s extends %s\n", newer, older)
	return nil
}

func verifyLedger(args []string, stdout io.Writer) error {
	f, err := flags("ledger", args, []string{"checkpoint"}, "export", "checkpoint", "key")
	if err != nil {
		return err
	}
	v, err := loadKey(f["key"])
	if err != nil {
		return err
	}
	var e ledger.Export
	if err := loadJSON(f["export"], &e); err != nil {
		return err
	}
	var cp ledger.Checkpoint
	switch {
	case f["checkpoint"] != "":
		cp, err = loadCheckpoint(f["checkpoint"], v)
	case e.Checkpoint != "":
		cp, err = ledger.OpenCheckpoint([]byte(e.Checkpoint), v)
		if err != nil {
			err = fmt.Errorf("the export's checkpoint: %v", err)
		}
	default:
		err = fmt.Errorf("%w: the export carries no checkpoint; give -checkpoint", errUsage)
	}
	if err != nil {
		return err
	}
	rep, err := ledger.VerifyExport(&e, cp)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: tenant %s: %d instances, every chain intact, %d receipts included in %s, %d pending integration, no fork\n",
		e.TenantID, rep.Instances, rep.Included, cp, rep.Pending)
	return nil
}

func audit(args []string, stdout io.Writer) error {
	f, err := flags("audit", args, []string{"checkpoint"}, "url", "checkpoint", "key")
	if err != nil {
		return err
	}
	v, err := loadKey(f["key"])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	client := &ledger.TileClient{Prefix: strings.TrimSuffix(f["url"], "/")}
	var cp ledger.Checkpoint
	if f["checkpoint"] != "" {
		cp, err = loadCheckpoint(f["checkpoint"], v)
	} else {
		var signed []byte
		if signed, err = client.Checkpoint(ctx); err == nil {
			cp, err = ledger.OpenCheckpoint(signed, v)
		}
	}
	if err != nil {
		return err
	}
	rep, err := ledger.Audit(ctx, client, cp)
	var ve *ledger.VerifyError
	if err != nil && !errors.As(err, &ve) {
		return fmt.Errorf("audit incomplete after %d tiles: %v", rep.Tiles, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %s: %d tiles and %d entry bundles consistent, every entry an intact receipt, no fork\n", cp, rep.Tiles, rep.Bundles)
	return nil
}
