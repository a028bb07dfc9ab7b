// Command autonomicsctl is the operator tool of the Autonomics local stack.
//
//	autonomicsctl dev    [flags]  run the local stack until Ctrl-C
//	autonomicsctl demo   [flags]  drive a three-tenant scenario and verify it
//	autonomicsctl load   [flags]  measure end-to-end throughput and latency
//
// Every subcommand starts the same stack: it makes sure the Firestore and
// Pub/Sub emulators answer (starting them with .ci/emulators.sh when they
// do not), builds ./functions/serve and ./services/query into bin/, runs
// them as child processes (the functions host with a one-second scheduler
// standing in for Cloud Scheduler), creates the topics, one ordered push
// subscription "<topic>-push" per domain topic aimed at the functions host,
// and the pull subscriptions "autonomicsctl-receipts",
// "autonomicsctl-actions" and "autonomicsctl-dead-letter" that the demo and
// load tools read. Child logs go to .run/functions.log and .run/query.log.
// The children are stopped on exit.
//
// Timer durations are shortened (see -timers) so that trials, grace
// periods and payment retries end within seconds. The push subscriptions
// carry no dead-letter policy: the Pub/Sub emulator crashes when it
// dead-letters on an ordered subscription.
//
// demo and load run against a fresh Firestore database of the emulator
// (named after the run) so that they can be repeated without clearing the
// emulator, which other tests may be using; dev uses the default database
// unless -database says otherwise. All traffic goes to 127.0.0.1: the
// emulator hosts must be loopback addresses.
//
// demo publishes CloudEvents in binary mode with the tenant as ordering
// key, as a real producer does, and waits for each step's receipts and
// states through the query API. Where a timer lasts longer than a demo
// can wait (a trial of one day), a test clock moves the timer's due time
// to now, as Stripe's test clocks do; the timer then fires through the
// normal tick.
//
// load publishes a bounded number of events over many tenants with a fixed
// number in flight, matches each receipt on autonomics-receipts to its
// event by execution_id, and compares the result with bare Firestore
// transactions of the same shape on the same emulator.
package main
