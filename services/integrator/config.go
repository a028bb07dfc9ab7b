package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/platform"
)

// Environment variables of the integrator, next to PORT and the
// AUTONOMICS_* variables platform.FromEnv reads.
const (
	// EnvSigningKey holds the note signer key (Secret Manager mounts it in
	// production); EnvSigningKeyFile names a file holding it (the local
	// stack). Exactly one is required.
	EnvSigningKey     = "AUTONOMICS_SIGNING_KEY"
	EnvSigningKeyFile = "AUTONOMICS_SIGNING_KEY_FILE"
	// EnvOrigin is the checkpoints' origin line; it must be the key's name.
	EnvOrigin = "AUTONOMICS_LEDGER_ORIGIN"
	// EnvLedgerName is the ledger's document id under "ledgers".
	EnvLedgerName = platform.EnvLedgerName
	// EnvInterval is the period of the integration loop; "0" turns the
	// loop off and leaves integration to POST /v1/integrate.
	EnvInterval = "AUTONOMICS_LEDGER_INTERVAL"
	// EnvIdleInterval is how long the loop waits, once nothing is
	// pending, for a pass without a push to this instance; the default is
	// the interval (plain polling). The local stack, whose pushes all reach
	// its one integrator, sets it long to spare the emulator a query per
	// interval.
	EnvIdleInterval = "AUTONOMICS_LEDGER_IDLE_INTERVAL"
	// EnvBatch is the most receipts one pass integrates.
	EnvBatch = "AUTONOMICS_LEDGER_BATCH"
	// EnvLeaseTTL is the integrator lease's duration.
	EnvLeaseTTL = "AUTONOMICS_LEDGER_LEASE_TTL"
	// EnvHolderID names this instance in the lease; a random id when empty.
	EnvHolderID = "AUTONOMICS_LEDGER_HOLDER_ID"
)

// Defaults of the configuration.
const (
	DefaultOrigin   = "autonomics.example/ledger"
	DefaultInterval = 500 * time.Millisecond
)

// config is the integrator's configuration.
type config struct {
	Platform    platform.Config
	Port        string
	Signer      note.Signer
	VerifierKey string
	LedgerName  string
	Holder      string
	// Interval is the loop's period; 0 turns the loop off.
	Interval time.Duration
	// Idle is the loop's period while nothing is pending.
	Idle      time.Duration
	BatchSize int
	LeaseTTL  time.Duration
}

// loadConfig reads the configuration through getenv (and the key file
// through readFile) and validates it.
func loadConfig(getenv func(string) string, readFile func(string) ([]byte, error)) (config, error) {
	const op = "integrator.config"
	pc, err := platform.FromEnv(getenv)
	if err != nil {
		return config{}, err
	}
	c := config{
		Platform: pc, Port: getenv("PORT"), LedgerName: getenv(EnvLedgerName), Holder: getenv(EnvHolderID),
		Interval: DefaultInterval, BatchSize: ledger.DefaultBatchSize, LeaseTTL: ledger.DefaultLeaseTTL,
	}
	if c.Port == "" {
		c.Port = "8080"
	}
	key, err := signingKey(getenv, readFile)
	if err != nil {
		return config{}, err
	}
	if c.Signer, c.VerifierKey, err = ledger.NewSigner(key); err != nil {
		return config{}, err
	}
	if o := getenv(EnvOrigin); o != "" && o != c.Signer.Name() {
		return config{}, fault.Errorf(fault.Invalid, op, "%s=%q, but the signing key is named %q; checkpoints carry the key's name as origin", EnvOrigin, o, c.Signer.Name())
	}
	if v := getenv(EnvInterval); v != "" {
		if c.Interval, err = time.ParseDuration(v); err != nil || c.Interval < 0 {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want a duration ≥ 0", EnvInterval, v)
		}
	}
	c.Idle = c.Interval
	if v := getenv(EnvIdleInterval); v != "" {
		if c.Idle, err = time.ParseDuration(v); err != nil || c.Idle < 0 {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want a duration ≥ 0", EnvIdleInterval, v)
		}
	}
	if v := getenv(EnvLeaseTTL); v != "" {
		if c.LeaseTTL, err = time.ParseDuration(v); err != nil || c.LeaseTTL <= 0 {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want a positive duration", EnvLeaseTTL, v)
		}
	}
	if v := getenv(EnvBatch); v != "" {
		if c.BatchSize, err = strconv.Atoi(v); err != nil || c.BatchSize < 1 || c.BatchSize > ledger.MaxBatch {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want 1 to %d", EnvBatch, v, ledger.MaxBatch)
		}
	}
	if c.Interval > 0 && c.Idle >= c.LeaseTTL/2 {
		return config{}, fault.Errorf(fault.Invalid, op, "%s=%v must be below half the lease TTL (%v), so that an idle holder keeps its lease", EnvIdleInterval, c.Idle, c.LeaseTTL)
	}
	if c.Holder == "" {
		c.Holder = holderID(getenv)
	}
	return c, nil
}

// signingKey returns the signer key from the environment or its file.
func signingKey(getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	const op = "integrator.config"
	key, file := getenv(EnvSigningKey), getenv(EnvSigningKeyFile)
	switch {
	case key != "" && file != "":
		return "", fault.Errorf(fault.Invalid, op, "set %s or %s, not both", EnvSigningKey, EnvSigningKeyFile)
	case key != "":
		return key, nil
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return "", fault.Errorf(fault.Invalid, op, "%s: %v", EnvSigningKeyFile, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", fault.Errorf(fault.Invalid, op, "%s or %s is required (integrator -keygen -out FILE makes a key)", EnvSigningKey, EnvSigningKeyFile)
}

// holderID names this instance: the Cloud Run revision or host name and a
// random suffix, so that two instances never share an id.
func holderID(getenv func(string) string) string {
	base := getenv("K_REVISION")
	if base == "" {
		base, _ = os.Hostname()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base + "-" + hex.EncodeToString(b[:])
}
