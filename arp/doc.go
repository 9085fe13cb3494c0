// Package arp announces virtual IPv4 addresses with gratuitous ARP, so that
// routers, switches and clients on the segment move their caches to this
// node's MAC at once when it becomes master, sends targeted ARP requests
// (Request) from the VIPs to an upstream that ignores gratuitous ARP, and
// hears who claims addresses on the segment (Watcher), so that a copy of a
// VIP on another host can be found. For IPv6 VIPs it sends unsolicited
// neighbour advertisements (NAAnnouncer), IPv6's gratuitous ARP.
//
// It never answers requests (the kernel does that for addresses on the
// interface), never decides when to announce (the VRRP runtime schedules
// the bursts) and never decides what a frame it hears means: the Watcher
// reports frames and sends ARP probes (sender 0.0.0.0, which change no
// neighbour's cache) when told to.
package arp
