// Package lab builds a small L2 network out of Linux network namespaces for
// vipd's end-to-end tests and benchmarks, and runs processes inside it.
//
// A Lab is one bridge namespace ("<prefix>br", bridge "br0") plus one
// namespace per host ("<prefix><name>"), each joined to the bridge by a veth
// pair whose host end is "eth0". Hosts get addresses from 198.18.0.0/24 and
// VIPs from 198.18.0.100 up (see "Test lab conventions" in DESIGN.md); the
// lab itself does not enforce this, but no traffic it generates ever leaves
// its namespaces.
//
// The package is shared by tests and by the benchmark program, so it must
// never import testing: every call returns an error and the caller defers
// Lab.Close, which kills every process the lab started and deletes every
// namespace it made, also after a partial failure. Namespace names carry the
// caller's prefix, and New removes what a crashed earlier run with the same
// prefix left behind, so prefixes must be unique per test and must not be
// prefixes of one another among tests that may run at the same time.
//
// Link faults are made on the bridge side of a host's veth pair, so that the
// host sees them the way a real node sees a cable pull (CutLink: no carrier)
// or a broken switch (Detach: carrier up, nobody reachable).
//
// Probes and address watches open their sockets inside a host's namespace
// from a dedicated, locked OS thread that is switched back before it is
// released; the sockets stay bound to the namespace they were made in.
//
// Running a lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
package lab
