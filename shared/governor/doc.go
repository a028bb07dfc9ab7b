// Package governor is the pure core of Autonomics: governor state machines
// as data, and the one function that decides what an event does to an
// instance.
//
// A Machine is a transition table with guards, timers and effects. Decide
// applies an Event to an Instance snapshot at a given time and returns a
// Decision: accepted or rejected, the new state and data, the timers that
// remain armed and the events and actuator actions to emit. Decide does no
// I/O, reads no clock and keeps no globals, so the same input always yields
// the same decision.
//
// The package imports no cloud SDK. Storage, messaging and receipts live in
// sibling packages that depend on this one.
package governor
