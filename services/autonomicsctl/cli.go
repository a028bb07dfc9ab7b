package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/autonomics/autonomics/shared/fault"
	"golang.org/x/oauth2"
)

// Exit codes of the console commands.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
)

// Environment of the console commands.
const (
	// envConsoleURL is the console's base URL when -url is not given.
	envConsoleURL = "AUTONOMICS_CONSOLE_URL"
	// envIDToken, when set, is sent as the ID token instead of one
	// minted from the Application Default Credentials, e.g.
	// $(gcloud auth print-identity-token) for a user account.
	envIDToken = "AUTONOMICS_ID_TOKEN"
	// defaultConsoleURL is the console of the local stack.
	defaultConsoleURL = "http://127.0.0.1:8801"
)

// cliCommands are the commands that talk to a deployment through the
// console's JSON API, with the synopsis of each (common flags: -url,
// -json).
var cliCommands = map[string]struct {
	run      func(ctx context.Context, c *cliCall) error
	synopsis string
}{
	"tenants":   {runTenants, "tenants [-prefix P] [-after T] [-limit N] [-all]"},
	"governors": {runGovernors, "governors TENANT"},
	"receipts":  {runReceipts, "receipts TENANT [-domain D] [-since T] [-until T] [-limit N]"},
	"verify":    {runVerify, "verify TENANT [-max N] [-concurrency N]"},
	"send":      {runSend, "send TYPE -tenant T [-subject S] [-data JSON] | send -fixture NAME -tenant T [-subject S] | send -list"},
	"tail":      {runTail, "tail [-tenant T] [-n N]"},
	"dlq":       {runDLQ, "dlq list [-limit N] [-after ID] | dlq replay ID"},
	"alerts":    {runAlerts, "alerts [-state pending|firing|resolved]"},
	"silence":   {runSilence, "silence list | silence create -matcher k=v... -for D|-until T [-comment C] [-id ID] | silence expire ID"},
	"clock":     {runClock, "clock advance -tenant T -to RFC3339|+DURATION"},
	// Not through the console: against the governors' database and Pub/Sub.
	"backfill": {runBackfill, "backfill [-dry-run] [-project P] [-database D] [-page N] [-json]"},
}

// isCLICommand reports whether name is one of the console commands.
func isCLICommand(name string) bool {
	_, ok := cliCommands[name]
	return ok
}

// cliEnv is what a console command takes from its process; tests replace
// each part.
type cliEnv struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// transport carries the requests; nil is http.DefaultTransport.
	transport http.RoundTripper
	// tokenSource mints ID tokens for audience; nil is
	// idtoken.NewTokenSource with the Application Default Credentials.
	tokenSource func(ctx context.Context, audience string) (oauth2.TokenSource, error)
	// wait maps each wait before a retry or a reconnection; nil keeps
	// them.
	wait func(time.Duration) time.Duration
}

// cliCall is one console command being run: its name, its own arguments,
// the common flags and the client.
type cliCall struct {
	env  cliEnv
	name string
	args []string
	// url and json are the common flags.
	url  string
	json bool
	// client is set once the flags are parsed.
	client *consoleClient
}

// usageError is a command line that cannot be run: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// verifyFailed is a verification that found problems: exit code 1, its
// report already printed.
type verifyFailed struct{ n int }

func (e *verifyFailed) Error() string {
	if e.n == 1 {
		return "verification failed: 1 problem"
	}
	return fmt.Sprintf("verification failed: %d problems", e.n)
}

// runCLIMain runs a console command of this process and returns its exit
// code; Ctrl-C cancels it.
func runCLIMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runCLI(ctx, args, cliEnv{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now})
}

// runCLI runs the console command args[0] with its arguments and returns
// the exit code: 0 ok, 1 failure (verification failed included), 2 usage
// error, 3 not found.
func runCLI(ctx context.Context, args []string, env cliEnv) int {
	if env.now == nil {
		env.now = time.Now
	}
	if env.getenv == nil {
		env.getenv = func(string) string { return "" }
	}
	if len(args) == 0 || !isCLICommand(args[0]) {
		fmt.Fprintf(env.stderr, "autonomicsctl: unknown command\n%s", usage)
		return exitUsage
	}
	c := &cliCall{env: env, name: args[0], args: args[1:]}
	err := cliCommands[c.name].run(ctx, c)
	return c.exit(err)
}

// exit prints err and returns its exit code.
func (c *cliCall) exit(err error) int {
	var ue *usageError
	var vf *verifyFailed
	var ae *consoleError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.env.stderr, "autonomicsctl %s: %s\n", c.name, ue.msg)
		fmt.Fprintf(c.env.stderr, "usage: autonomicsctl %s\n", cliCommands[c.name].synopsis)
		return exitUsage
	case errors.As(err, &vf):
		fmt.Fprintf(c.env.stderr, "autonomicsctl %s: %v\n", c.name, vf)
		return exitFailure
	case errors.As(err, &ae):
		fmt.Fprintf(c.env.stderr, "autonomicsctl %s: %s\n", c.name, err.Error())
		if ae.Status == http.StatusNotFound {
			return exitNotFound
		}
		return exitFailure
	case errors.Is(err, context.Canceled):
		return exitOK
	}
	if fault.ErrorCode(err) == fault.NotFound {
		fmt.Fprintf(c.env.stderr, "autonomicsctl %s: %s\n", c.name, fault.ErrorMessage(err))
		return exitNotFound
	}
	fmt.Fprintf(c.env.stderr, "autonomicsctl %s: %s\n", c.name, plainError(err))
	return exitFailure
}

// plainError returns the message of err without the operation names of
// governor errors.
func plainError(err error) string {
	var ge *fault.Error
	if errors.As(err, &ge) && ge.Message != "" {
		return ge.Message
	}
	return err.Error()
}

// flags returns the flag set of a command (or sub-command) with the
// common flags -url and -json.
func (c *cliCall) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("autonomicsctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.env.stderr)
	fs.StringVar(&c.url, "url", "", "base URL of the console (default $"+envConsoleURL+" or "+defaultConsoleURL+")")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts instead of a table")
	return fs
}

// parse parses args with fs, flags and positional arguments in any order,
// requires exactly the named positional arguments, and opens the client.
func (c *cliCall) parse(fs *flag.FlagSet, args []string, positional ...string) ([]string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	if len(pos) < len(positional) {
		return nil, usagef("missing %s", strings.Join(positional[len(pos):], " "))
	}
	if len(pos) > len(positional) {
		return nil, usagef("unexpected arguments %q", pos[len(positional):])
	}
	if c.client, err = c.open(); err != nil {
		return nil, err
	}
	return pos, nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, which it returns. "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// table returns a writer of aligned columns; flush it.
func (c *cliCall) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.env.stdout, 0, 8, 2, ' ', 0)
}

// row writes one table row of sanitized cells.
func row(w io.Writer, cells ...string) {
	for i, s := range cells {
		cells[i] = cell(s)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// maxCell bounds the width of a table cell.
const maxCell = 80

// cell makes s safe for a terminal table: control characters (an escape
// sequence from a hostile server, a tab that would break the columns)
// become '?', and it is cut at maxCell characters.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return cellN(s, maxCell)
}

// cellN replaces the control characters of s by '?' and cuts it at max
// characters.
func cellN(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar || unicode.Is(unicode.Bidi_Control, r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// printJSON prints v indented, or raw JSON re-indented.
func (c *cliCall) printJSON(v any) error {
	var buf bytes.Buffer
	if raw, ok := v.(json.RawMessage); ok {
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fault.Errorf(fault.Internal, "autonomicsctl", "the console answered malformed JSON: %v", err)
		}
	} else {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fault.Wrap(fault.Internal, "autonomicsctl", err)
		}
		buf.Write(b)
	}
	buf.WriteByte('\n')
	_, err := c.env.stdout.Write(buf.Bytes())
	return err
}
