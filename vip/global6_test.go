package vip

import (
	"net/netip"
	"testing"
)

func TestGlobal6(t *testing.T) {
	p := netip.MustParsePrefix
	as := []Addr{
		{Prefix: p("10.0.0.1/24")},
		{Prefix: p("fe80::1/64")},
		{Prefix: p("::ffff:10.0.0.9/128")},
		{Prefix: p("fd00:18::100/128")}, // a VIP
		{Prefix: p("fd00:18::11/64"), Tentative: true},
		{Prefix: p("fd00:18::12/64")},
		{Prefix: p("2001:db8::1/64")},
	}
	skip := func(a netip.Addr) bool { return a == netip.MustParseAddr("fd00:18::100") }
	if got, ok := Global6(as, skip); !ok || got != netip.MustParseAddr("fd00:18::12") {
		t.Fatalf("Global6 = %v, %v; want fd00:18::12", got, ok)
	}
	if got, ok := Global6(as[:5], skip); ok {
		t.Fatalf("Global6 without a usable global address = %v", got)
	}
}
