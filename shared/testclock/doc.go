// Package testclock is the per-tenant test clock of non-production
// stacks, as Stripe's test clocks are for subscriptions: advancing a
// tenant's clock to a time fires, in due order, every armed timer of the
// tenant that falls due on the way, each as the timeout event the tick
// would publish but with source engine.TestClockSource, so that its
// receipt's event_source says it ran on a test clock.
//
// # Time
//
// Governors decide at real time: the engine's clock is not the test
// clock's. A tenant's test clock therefore runs with real time, ahead of
// it by an offset that only grows: advancing to a time sets the offset to
// that time minus now. A timer armed at real time T for a duration d is
// stored due at T+d; on the tenant's clock it falls due at T+d plus the
// offset the clock had when the timer was armed. Advance learns that
// offset when it first sees the timer: timers a fired timeout arms are
// seen right after its receipt, while the clock stands at the fired
// timer's due time, so a timer re-armed on every firing (a billing
// period's end) fires once per period up to the target, not in a loop.
// Between advances the offset is constant and the tick, firing a timer at
// its stored due time, fires it when the tenant's clock reaches its due
// time too.
//
// # Firing
//
// For each timer, earliest first, Advance moves it through the store
// (store.Store.MoveTimer) to now plus Options.Hold when it is due later
// than that, so that the tick fires it within Hold should the timeout be
// lost; publishes its timeout to the domain's internal topic, as the tick
// does (same id, type, data, attributes and ordering key); and waits for
// its receipt by polling the store, before looking for the next, so that
// timers armed on the way fire too when they fall due by the target.
// Engines accept that source and fire such a timeout before the timer's
// stored due time only with engine.Options.TestClock, which
// platform.Config turns on outside production.
//
// # State
//
// The clocks' state (each tenant's offset, last target and the offsets of
// its armed timers) is kept through the Clocks interface; Memory keeps it
// in the process, bounded, which suits a console of one instance, as a
// non-production stack runs it. A lost state only makes the clock start
// again at real time. Advances of one tenant are serialised within the
// process; a concurrent one is a Conflict.
//
// In production (Options.Enabled false) Advance and Now answer a NotFound
// error: there is no test clock there.
package testclock
