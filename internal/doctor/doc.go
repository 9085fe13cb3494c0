// Package doctor runs vipd doctor's checks of this host for a
// configuration: documented VIPs, the interfaces' links and addresses, the
// kernel settings that VRRP and ARP depend on, and who advertises the
// configured VRIDs on the segment. Each finding is a Verdict with the fix.
//
// It is read-only: it must never add or remove an address, write a
// sysctl, change a link or send a packet. It only reads netlink and /proc
// and listens for adverts, so it is safe beside a running vipd.
package doctor
