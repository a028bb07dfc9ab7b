// Package platform connects Autonomics to Google Cloud: it reads the
// configuration that a function or service receives in its environment
// (FromEnv) and wires the adapters, in two steps.
//
// Connect sets up telemetry and builds the Clients every process needs:
// the Firestore clients of the governors', the ledger's and the monitor's
// databases, the Pub/Sub client and publisher, the governors' store, the
// topic names and the logger. The clients honour FIRESTORE_EMULATOR_HOST
// and PUBSUB_EMULATOR_HOST. The services that read, publish or keep their
// own state (query, integrator, monitor, ingest, console, actuator,
// marketplace, sign-up) use the clients alone.
//
// Governors builds, on the clients, the engine that runs the eight
// governors. Only the processes that decide need it: the governor
// functions and the scheduler's, which get both lazily, on their first
// request, through Lazy (GovernorFunction serves one governor).
//
// It is the only shared package that knows every adapter; function
// packages and service mains call it, libraries never do.
package platform
