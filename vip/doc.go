// Package vip puts virtual IP addresses on an interface and takes them off
// again, through netlink, and reports address changes made behind vipd's back
// so that a master can restore an alias someone removed.
//
// It never decides whether an address should be present (the VRRP runtime
// does), and it only ever touches the addresses it is asked about. It marks
// every address it adds with vipd's address protocol (Proto, IFA_PROTO) and
// never removes, nor takes over, an address that does not carry the mark and
// that it did not add itself: not one of the host's own, even one equal to a
// configured VIP.
package vip
