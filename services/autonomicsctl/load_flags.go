package main

import "flag"

// registerLoadModeFlag adds the load's -mode flag to fset.
func registerLoadModeFlag(fset *flag.FlagSet, l *loadConfig) {
	fset.StringVar(&l.Mode, "mode", loadModeBoth,
		`phases: "direct" (push bodies POSTed to the functions host, as production push delivers), "emulator" (published, delivered by the emulator's push subscriptions) or "both"`)
}
