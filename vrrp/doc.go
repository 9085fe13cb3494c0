// Package vrrp is vipd's implementation of VRRP (RFC 5798 version 3 and
// RFC 3768 version 2) over IPv4.
//
// It has three layers, kept apart so that the protocol can be tested without
// root or sleeps:
//   - packet.go: the wire codec. Pure: bytes in, an Advert or a typed
//     DropReason out.
//   - machine.go: the state machine of one instance. Pure: an event and the
//     current time in, actions and the next deadline out. It never reads a
//     clock, touches a socket or calls netlink.
//   - node.go, conn.go, link.go: the runtime. One loop goroutine owns every
//     instance's state and carries out the machines' actions (adverts,
//     VIP changes through package vip, announcements through package arp);
//     one socket per interface is shared by the instances on it.
package vrrp
