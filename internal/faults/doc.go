// Package faults is the fault-injection suite: the real parley binary, two
// processes sharing one PostgreSQL, under a mixed workload (posts to
// several lists, fan-out to thousands of members at a sink, command mail,
// bounces, IMAP readers in IDLE), while parley is killed with SIGKILL,
// PostgreSQL is stopped, crashed and has its connections cut, the relay
// fails, drops and hangs, and clients walk away mid-DATA and mid-FETCH.
// When the workload has drained it checks the invariants of
// docs/architecture.md and prints them as a table.
//
// The package has only tests. `make test` runs a short form; `make faults`
// runs it verbosely (the table is printed) for FAULTS_DURATION.
package faults
