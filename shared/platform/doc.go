// Package platform connects Autonomics to Google Cloud: it reads the
// configuration that a function or service receives in its environment,
// builds the Firestore and Pub/Sub clients (which honour
// FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST) and wires the engine.
// It is the only shared package that knows every adapter; function
// packages and service mains call it, libraries never do.
package platform
