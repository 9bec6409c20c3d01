// Package clustertest holds the tests that run real hub processes as a
// cluster: several `agentcom serve` on one PostgreSQL, agents spread over
// them, one hub killed with SIGKILL mid-load. It has no code of its own;
// the tests build the binary and drive it from the outside, as an
// operator's fleet would.
package clustertest
