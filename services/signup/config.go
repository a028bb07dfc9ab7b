package main

import (
	"strings"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/platform"
)

// Environment variables of the sign-up service, next to PORT,
// AUTONOMICS_LISTEN_HOST and the AUTONOMICS_* variables platform.FromEnv
// reads.
const (
	// EnvProvider is the Marketplace provider id: the events' source is
	// marketplace/<provider>. Required.
	EnvProvider = platform.EnvMarketplaceProvider
	// EnvAudience is the audience the tokens must carry: the provider's
	// domain as registered in Producer Portal. Required.
	EnvAudience = "AUTONOMICS_MARKETPLACE_SIGNUP_AUDIENCE"
	// EnvIssuer is the URL of the issuer's certificates; Google's when
	// empty. The local stack points it at the stand-in.
	EnvIssuer = "AUTONOMICS_MARKETPLACE_SIGNUP_ISSUER"
	// EnvRedirect, when set, is where a signed-up buyer is sent (303 with
	// ?tenant=); otherwise the answer is JSON.
	EnvRedirect = "AUTONOMICS_MARKETPLACE_SIGNUP_REDIRECT"
	// EnvNamespace separates deployments sharing the monitor database
	// (default "default"); the Marketplace service must use the same.
	EnvNamespace = platform.EnvMarketplaceNamespace
)

// config is the sign-up service's configuration.
type config struct {
	Platform                             platform.Config
	Provider, Audience, Issuer, Redirect string
	Namespace                            string
}

// loadConfig reads the configuration through getenv and checks it.
func loadConfig(getenv func(string) string) (config, error) {
	const op = "signup.config"
	pc, err := platform.FromEnv(getenv)
	if err != nil {
		return config{}, err
	}
	c := config{
		Platform:  pc,
		Provider:  strings.TrimSpace(getenv(EnvProvider)),
		Audience:  strings.TrimSpace(getenv(EnvAudience)),
		Issuer:    strings.TrimSpace(getenv(EnvIssuer)),
		Redirect:  strings.TrimSpace(getenv(EnvRedirect)),
		Namespace: strings.TrimSpace(getenv(EnvNamespace)),
	}
	switch {
	case c.Provider == "":
		return config{}, fault.Errorf(fault.Invalid, op, "%s is required", EnvProvider)
	case c.Audience == "":
		return config{}, fault.Errorf(fault.Invalid, op, "%s is required", EnvAudience)
	}
	return c, nil
}
