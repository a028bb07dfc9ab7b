// Command autonomicsctl is the operator tool of the Autonomics local stack.
//
//	autonomicsctl dev    [flags]  run the local stack until Ctrl-C
//	autonomicsctl demo   [flags]  drive a three-tenant scenario and verify it
//	autonomicsctl load   [flags]  measure end-to-end throughput and latency
//	autonomicsctl receiver -config FILE  serve the webhook receiver (the stack starts it)
//
// Every subcommand starts the same stack: it makes sure the Firestore and
// Pub/Sub emulators answer (starting them with .ci/emulators.sh when they
// do not), builds ./functions/serve and ./services/{query,integrator,
// monitor,actuator,ingest} into bin/, runs them as child processes (the
// functions host with a one-second scheduler standing in for Cloud
// Scheduler, the actuator with its own one-second sweep), creates the
// topics, one ordered push subscription "<topic>-push" per domain topic
// aimed at the functions host, the ordered push subscription
// "<actions topic>-actuator-push" aimed at the actuator, and the pull
// subscriptions "autonomicsctl-receipts", "autonomicsctl-actions" and
// "autonomicsctl-dead-letter" that the demo and load tools read. Child
// logs go to .run/<name>.log. The children are stopped on exit.
//
// The stack also runs this program's receiver command, a webhook receiver
// standing in for the provider's systems: it verifies every delivery with
// the reference implementation of Standard Webhooks, deduplicates by
// webhook-id, and on tenant.provision reports multi_tenant.provisioned to
// the ingest API, HMAC-signed, closing the provisioning loop. One of its
// two endpoints is flaky on purpose. The endpoints' secrets and the
// HMAC key are generated on every start into .run/ (mode 0600), and the
// endpoints are registered through the actuator's API.
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
// states through the query API. The provider's own reactions to actions
// (multi_tenant.provisioned) it does not publish: it waits for them to
// arrive through the receiver and the ingest API. It then checks every
// webhook delivery against the receiver's record, redelivers one action
// and sends forged deliveries that must be refused. Where a timer lasts longer than a demo
// can wait (a trial of one day), a test clock moves the timer's due time
// to now, as Stripe's test clocks do; the timer then fires through the
// normal tick.
//
// load publishes a bounded number of events over many tenants with a fixed
// number in flight, matches each receipt on autonomics-receipts to its
// event by execution_id, and compares the result with bare Firestore
// transactions of the same shape on the same emulator.
package main
