// Command stage builds the one source archive that every Autonomics Cloud
// Function deploys from (see the README, "Deploy").
//
//	go run ./functions/stage -out dist
//
// The Go buildpack of Cloud Functions builds the package at the root of the
// uploaded source, next to go.mod. stage therefore finds, with package
// functions/gosrc, every package under functions/ that registers a function
// with the Functions Framework (functions.CloudEvent, functions.HTTP or
// functions.Typed; package main is skipped), copies go.mod, go.sum and the
// packages they need from the module (Go sources without tests; nothing
// else of the repository), and adds a generated root file,
// autonomics_functions.go, that blank-imports them and the framework's
// functions package. Each function resource then names its own entry point
// in that archive.
//
// The archive is deterministic: entries sorted by path, fixed modification
// times and permissions. Its name is source-<hex SHA-256 of the archive>.zip,
// so a change to any staged file yields a new object name and a redeploy,
// and an unchanged tree yields the same name. stage prints the archive's
// path on stdout and the registrations it found on stderr.
package main
