// Command autonomicsctl is the operator tool of the Autonomics local stack.
//
//	autonomicsctl dev    [flags]  run the local stack until Ctrl-C
//	autonomicsctl demo   [flags]  drive a three-tenant scenario and verify it
//	autonomicsctl load   [flags]  measure end-to-end throughput and latency
//	autonomicsctl receiver -config FILE  serve the webhook receiver (the stack starts it)
//
// and, against any deployment through its console's JSON API:
//
//	autonomicsctl tenants   [-prefix P] [-after T] [-limit N] [-all]
//	autonomicsctl governors TENANT
//	autonomicsctl receipts  TENANT [-domain D] [-since T] [-until T] [-limit N]
//	autonomicsctl verify    TENANT [-max N] [-concurrency N]
//	autonomicsctl send      TYPE -tenant T [-subject S] [-data JSON]
//	autonomicsctl send      -fixture NAME -tenant T [-subject S]
//	autonomicsctl send      -list
//	autonomicsctl tail      [-tenant T] [-n N]
//	autonomicsctl dlq       list [-limit N] [-after ID] | replay ID
//	autonomicsctl alerts    [-state pending|firing|resolved]
//	autonomicsctl silence   list | create -matcher k=v... -for 2h|-until TIME [-comment C] [-id ID] | expire ID
//	autonomicsctl clock     advance -tenant T -to RFC3339|+DURATION
//
// and, against a deployment's governors database and Pub/Sub directly:
//
//	autonomicsctl backfill  [-dry-run] [-project P] [-database D] [-page N] [-json]
//
// backfill brings what earlier versions wrote to the current layout
// (shared/firestore's BackfillTimerShards, then DrainLegacyOutbox): it
// gives timers written before the shard field their shard, so that the
// tick finds them, and publishes the entries of the former global outbox
// collection that were never delivered, then marks them delivered. It
// reads the project and database as the services do
// ($AUTONOMICS_PROJECT or $GOOGLE_CLOUD_PROJECT,
// $AUTONOMICS_FIRESTORE_DATABASE; -project and -database override them)
// and talks to the emulators when FIRESTORE_EMULATOR_HOST and
// PUBSUB_EMULATOR_HOST are set. Both steps are idempotent and a failed
// run resumes when run again; -dry-run only counts.
//
// Every console command takes -url (default $AUTONOMICS_CONSOLE_URL, else
// the local stack's console, http://127.0.0.1:8801) and -json; flags may
// come before or after the arguments. People get aligned tables, scripts
// -json: the console's JSON passed through, or for the commands that
// combine answers (tenants -all, receipts, send, verify, tail, silence
// expire) a stable object of their own. The exit code is 0 when it went
// well, 1 on a failure (a verification that found a problem included), 2
// for a command line that cannot be run (nothing was sent) and 3 when
// the console answered 404 (an unknown tenant, dead letter or silence; a
// test clock in production). The console's errors, {"error": {"code",
// "message"}}, are printed plainly with their code and status, and
// control characters in anything the console answers are shown as '?'.
// Reads are retried on 429, 502, 503 and 504 and on network faults;
// writes only when the request did not leave this machine, so that an
// event is never published twice.
//
// A console that is not on a loopback address is called over HTTPS only,
// with a Google ID token whose audience is the console's URL (scheme and
// host), as Cloud Run IAM expects: minted with google.golang.org/api/idtoken
// from the Application Default Credentials, which must be a service
// account (a key, an impersonated service account, or the metadata
// server), or taken from $AUTONOMICS_ID_TOKEN, e.g. the output of
// "gcloud auth print-identity-token". The local console gets no token.
//
// verify trusts nothing but the ledger's published verifier key: it
// fetches the key and the signed checkpoint, opens the checkpoint
// (signature and origin, shared/ledger), lists the tenant's governors and
// every receipt, recomputes each receipt's hash (RFC 8785 canonical JSON,
// SHA-256), checks each instance's chain from seq 1 (shared/receipt) up to
// the instance's version, and checks each receipt's inclusion proof in
// the checkpoint's tree (golang.org/x/mod/sumdb/tlog). Receipts the tree
// does not hold yet are reported pending, only at the end of a chain;
// when the checkpoint history says the checkpoint was signed well after
// such a receipt was decided, a warning says so. Every failure is listed
// with the receipt and the reason, and the exit code is 1.
//
// send publishes through the console, which names the event and sends it
// to the domain topic as the provider's own (class external). Fixtures,
// like stripe trigger's, are named stories of one or several events,
// embedded from fixtures/: signup, subscribe, trial-ends, payment-fails,
// plan-change, cancel, usage-over-limit, account-suspended; -subject
// replaces each fixture's default subject. tail follows the console's
// server-sent events, one line per receipt or action, reconnecting with
// Last-Event-ID after the stream drops, until Ctrl-C or -n events.
// clock advance -to +48h moves the tenant's test clock 48 hours past now
// (this machine's clock); the console fires the timers due on the way.
//
// Every subcommand starts the same stack: it makes sure the Firestore and
// Pub/Sub emulators answer (starting them with .ci/emulators.sh when they
// do not), builds ./functions/serve and ./services/{query,integrator,
// monitor,actuator,ingest} into bin/, runs them as child processes (the
// functions host with a scheduler standing in for Cloud Scheduler, every
// second, or every minute as in production for load, whose emulator
// queries would otherwise take CPU from the decisions measured; the
// actuator with its own one-second sweep), creates the
// topics, one ordered push subscription "<topic>-push" per domain topic
// aimed at the functions host, the ordered push subscription
// "<actions topic>-actuator-push" aimed at the actuator, and the pull
// subscriptions "autonomicsctl-receipts", "autonomicsctl-actions" and
// "autonomicsctl-dead-letter" that the demo and load tools read. Child
// logs go to .run/<name>.log. On exit the push subscriptions are turned
// into pull ones, keeping what they hold for the next start (which points
// them at its endpoints again), so that the emulator does not spend its
// CPU retrying deliveries to the stopped children; then the children are
// stopped.
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
// transactions of the same shape on the same emulator. It measures the
// CPU time of every process over each phase, the baseline's included,
// and sets a decision's CPU beside a bare transaction's: on a machine that
// both phases saturate, the machine's CPU per decision and per transaction
// predict the ratio of their rates. The baseline runs in the load driver
// with the functions host's Go runtime settings, so that the driver's CPU
// over it is what the host's Firestore client costs such a transaction.
package main
