// Package arp announces virtual IPv4 addresses with gratuitous ARP, so that
// routers, switches and clients on the segment move their caches to this
// node's MAC at once when it becomes master, and sends targeted ARP
// requests (Request) from the VIPs to an upstream that ignores gratuitous
// ARP.
//
// It only sends: it never reads ARP traffic, never answers requests (the
// kernel does that for addresses on the interface) and never decides when to
// announce; the VRRP runtime schedules the bursts.
package arp
