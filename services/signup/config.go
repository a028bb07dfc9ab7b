package main

import (
	"strings"

	"github.com/autonomics/autonomics/services/signup/signupenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/platform"
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
		Provider:  strings.TrimSpace(getenv(platform.EnvMarketplaceProvider)),
		Audience:  strings.TrimSpace(getenv(signupenv.Audience)),
		Issuer:    strings.TrimSpace(getenv(signupenv.Issuer)),
		Redirect:  strings.TrimSpace(getenv(signupenv.Redirect)),
		Namespace: strings.TrimSpace(getenv(platform.EnvMarketplaceNamespace)),
	}
	switch {
	case c.Provider == "":
		return config{}, fault.Errorf(fault.Invalid, op, "%s is required", platform.EnvMarketplaceProvider)
	case c.Audience == "":
		return config{}, fault.Errorf(fault.Invalid, op, "%s is required", signupenv.Audience)
	}
	return c, nil
}
