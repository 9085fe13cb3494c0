// Package vip puts virtual IP addresses on an interface and takes them off
// again, through netlink, and reports address changes made behind vipd's back
// so that a master can restore an alias someone removed.
//
// It never decides whether an address should be present (the VRRP runtime
// does), and it only ever touches the addresses it is asked about: it never
// removes an address that is not a configured VIP.
package vip
