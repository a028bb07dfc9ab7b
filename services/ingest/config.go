package main

import (
	"strings"

	"github.com/autonomics/autonomics/services/ingest/ingestenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/platform"
)

// config is the ingest API's configuration.
type config struct {
	Platform platform.Config
	Rules    *ingest.Rules
	Keys     ingest.Keys
	Audience string
}

// sources name where the rules and keys come from: files (flags) take
// the place of the environment variables.
type sources struct {
	ProducersFile string
	KeysFile      string
}

// loadConfig reads the configuration through getenv, and the files of src
// through readFile, and validates it.
func loadConfig(getenv func(string) string, readFile func(string) ([]byte, error), src sources) (config, error) {
	const op = "ingest.config"
	pc, err := platform.FromEnv(getenv)
	if err != nil {
		return config{}, err
	}
	c := config{Platform: pc, Audience: strings.TrimSpace(getenv(ingestenv.Audience))}
	rules, err := oneOf(getenv, readFile, ingestenv.Producers, src.ProducersFile, "-producers")
	if err != nil {
		return config{}, err
	}
	if rules == nil {
		return config{}, fault.Errorf(fault.Invalid, op, "producer rules are required: set %s or -producers FILE", ingestenv.Producers)
	}
	if c.Rules, err = ingest.ParseRules(rules, machines.New(pc.Timers)); err != nil {
		return config{}, err
	}
	keys, err := oneOf(getenv, readFile, ingestenv.HMACKeys, src.KeysFile, "-hmac-keys")
	if err != nil {
		return config{}, err
	}
	c.Keys = ingest.Keys{}
	if keys != nil {
		if c.Keys, err = ingest.ParseKeys(keys); err != nil {
			return config{}, err
		}
	}
	for _, id := range c.Rules.KeyIDs() {
		if len(c.Keys[id]) == 0 {
			return config{}, fault.Errorf(fault.Invalid, op, "producer %s signs with key %s, which %s does not hold", c.Rules.ByKeyID(id).Name, id, ingestenv.HMACKeys)
		}
	}
	for _, p := range c.Rules.Producers() {
		if p.Email != "" && c.Audience == "" {
			return config{}, fault.Errorf(fault.Invalid, op, "producer %s authenticates with ID tokens: %s is required", p.Name, ingestenv.Audience)
		}
	}
	return c, nil
}

// oneOf returns the value of env or the content of file (not both), nil
// when neither is given.
func oneOf(getenv func(string) string, readFile func(string) ([]byte, error), env, file, flag string) ([]byte, error) {
	const op = "ingest.config"
	v := getenv(env)
	switch {
	case v != "" && file != "":
		return nil, fault.Errorf(fault.Invalid, op, "set %s or %s, not both", env, flag)
	case v != "":
		return []byte(v), nil
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return nil, fault.Errorf(fault.Invalid, op, "%s %s: %v", flag, file, err)
		}
		return b, nil
	}
	return nil, nil
}
