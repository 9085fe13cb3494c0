// Package vrrp is vipd's implementation of VRRP (RFC 5798 version 3 and
// RFC 3768 version 2) over IPv4: the protocol and the runtime that runs
// every configured instance.
//
// It is built in layers, kept apart so that everything above the host can
// be tested without root or sleeps:
//   - packet.go: the wire codec. Pure: bytes in, an Advert or a typed
//     DropReason out.
//   - machine.go, machinetypes.go, reassert.go: the state machine of one
//     instance. Pure: an event and the current time in, actions and the next
//     deadline out, through the one entry point Machine.Step (start-up,
//     adverts, timers, faults, holds, reconfiguration, shutdown and its
//     hand-over), so that a trace of events replays what happened.
//   - policy.go: trackers, maintenance and sync groups, as pure decisions
//     (faultFor, holdFor, groupFollow) that the Node feeds to Step.
//   - reconcile.go: the only code that changes the host. Each instance
//     declares the addresses it wants present; the reconciler compares with
//     what it knows of the host and adds or removes, only what vipd added.
//   - dataplane.go: the seam to the host (Dataplane, Link, the receiver and
//     the clock); hostdp.go, conn.go, batch.go, frames.go, link.go are the
//     host's side: raw and packet sockets, vip.Manager, arp.Announcer and
//     netlink watchers. Tests run Nodes on an in-memory segment instead.
//   - node.go, loop.go, actions.go, receive.go, hostevents.go, reload.go,
//     status.go: the runtime. One loop goroutine owns every instance's state
//     and carries out the machines' actions.
//
// The loop must never wait on a hook, a script, the disk or a client:
// hooks and trackers run on their own goroutines (notify.go, track.go),
// the maintenance file is written off the loop (maintsave.go), and clients
// get snapshots. Nothing in this package decides anything about an address
// it did not add: package vip refuses to remove or take over a foreign one.
package vrrp
