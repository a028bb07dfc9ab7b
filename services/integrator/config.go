package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/autonomics/autonomics/services/integrator/integratorenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/platform"
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
		Platform: pc, Port: getenv("PORT"), LedgerName: getenv(platform.EnvLedgerName), Holder: getenv(integratorenv.HolderID),
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
	if o := getenv(integratorenv.Origin); o != "" && o != c.Signer.Name() {
		return config{}, fault.Errorf(fault.Invalid, op, "%s=%q, but the signing key is named %q; checkpoints carry the key's name as origin", integratorenv.Origin, o, c.Signer.Name())
	}
	if v := getenv(integratorenv.Interval); v != "" {
		if c.Interval, err = time.ParseDuration(v); err != nil || c.Interval < 0 {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want a duration ≥ 0", integratorenv.Interval, v)
		}
	}
	c.Idle = c.Interval
	if v := getenv(integratorenv.IdleInterval); v != "" {
		if c.Idle, err = time.ParseDuration(v); err != nil || c.Idle < 0 {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want a duration ≥ 0", integratorenv.IdleInterval, v)
		}
	}
	if v := getenv(integratorenv.LeaseTTL); v != "" {
		if c.LeaseTTL, err = time.ParseDuration(v); err != nil || c.LeaseTTL <= 0 {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want a positive duration", integratorenv.LeaseTTL, v)
		}
	}
	if v := getenv(integratorenv.Batch); v != "" {
		if c.BatchSize, err = strconv.Atoi(v); err != nil || c.BatchSize < 1 || c.BatchSize > ledger.MaxBatch {
			return config{}, fault.Errorf(fault.Invalid, op, "%s=%q: want 1 to %d", integratorenv.Batch, v, ledger.MaxBatch)
		}
	}
	if c.Interval > 0 && c.Idle >= c.LeaseTTL/2 {
		return config{}, fault.Errorf(fault.Invalid, op, "%s=%v must be below half the lease TTL (%v), so that an idle holder keeps its lease", integratorenv.IdleInterval, c.Idle, c.LeaseTTL)
	}
	if c.Holder == "" {
		c.Holder = holderID(getenv)
	}
	return c, nil
}

// signingKey returns the signer key from the environment or its file.
func signingKey(getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	const op = "integrator.config"
	key, file := getenv(integratorenv.SigningKey), getenv(integratorenv.SigningKeyFile)
	switch {
	case key != "" && file != "":
		return "", fault.Errorf(fault.Invalid, op, "set %s or %s, not both", integratorenv.SigningKey, integratorenv.SigningKeyFile)
	case key != "":
		return key, nil
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return "", fault.Errorf(fault.Invalid, op, "%s: %v", integratorenv.SigningKeyFile, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", fault.Errorf(fault.Invalid, op, "%s or %s is required (integrator -keygen -out FILE makes a key)", integratorenv.SigningKey, integratorenv.SigningKeyFile)
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
