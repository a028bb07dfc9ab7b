// Command verifier checks the evidence of the Autonomics ledger offline:
// it needs the verifier key of the ledger's checkpoints and the documents
// to check, and no access to the project's storage.
//
// Usage:
//
//	verifier inclusion -receipt r.json -proof p.json -checkpoint cp.txt -key vkey
//	verifier consistency -old cp1.txt -new cp2.txt -proof proof.json -key vkey
//	verifier ledger -export tenant.json [-checkpoint cp.txt] -key vkey
//	verifier audit -url https://query.example.com [-checkpoint cp.txt] -key vkey
//
// inclusion checks that a receipt is intact and that the proof (from GET
// /v1/receipts/{hash}/proof) places it in the checkpoint's tree; -receipt
// defaults to the receipt inside the proof. consistency checks that the
// newer checkpoint's tree extends the older one's (proof from GET
// /v1/proofs/consistency). ledger checks a tenant export (GET
// /v1/tenants/{tenant}/ledger): every chain and every inclusion, against
// -checkpoint or, without it, the signed checkpoint inside the export.
// audit reads every tile and entry of a log through its C2SP tlog-tiles
// paths and checks them against the checkpoint (-checkpoint, or the log's
// own /checkpoint).
//
// audit and ledger also look for forks: two receipts for one (tenant,
// domain, subject, seq), or two receipts of one instance after one
// prev_hash. A governor commits neither, so one of them was made up or
// rewritten; the failure names both entries' indices and the instance and
// seq. audit keeps a fixed-size digest per entry for this, 70 to 140 bytes
// each.
//
// -key is the verifier key (GET /v1/checkpoint/key, or the output of
// integrator -keygen) or a file holding it. Checkpoints are the signed
// notes of GET /v1/checkpoint. The exit status is 0 when everything
// verifies, 1 when something does not (the message says what and where),
// and 2 for a usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks command-line mistakes.
var errUsage = errors.New("usage")

const usage = `usage:
  verifier inclusion -receipt r.json -proof p.json -checkpoint cp.txt -key vkey
  verifier consistency -old cp1.txt -new cp2.txt -proof proof.json -key vkey
  verifier ledger -export tenant.json [-checkpoint cp.txt] -key vkey
  verifier audit -url URL [-checkpoint cp.txt] -key vkey
`

// run runs one command and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	commands := map[string]func([]string, io.Writer) error{
		"inclusion":   inclusion,
		"consistency": consistency,
		"ledger":      verifyLedger,
		"audit":       audit,
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "verifier: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err := cmd(args[1:], stdout); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "verifier %s: %v\n%s", args[0], err, usage)
			return 2
		}
		fmt.Fprintf(stderr, "FAIL: %v\n", err)
		return 1
	}
	return 0
}
