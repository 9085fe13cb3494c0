package doctor

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

func verdictText(vs []Verdict) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.String() + "\n")
	}
	return b.String()
}

// Over IPv6 adverts come from the link-local: present, it is named; absent
// (or still tentative), it is a failure that says what to do.
func TestSourceVerdictIPv6(t *testing.T) {
	p := netip.MustParsePrefix
	configured := map[netip.Addr]bool{netip.MustParseAddr("fd00:18::100"): true}
	as := []vip.Addr{{Prefix: p("198.18.0.11/24")}, {Prefix: p("fd00:18::100/128"), Owned: true}, {Prefix: p("fe80::1/64")}}
	src, v := sourceVerdict("eth0", config.FamilyIPv6, as, configured)
	if src != netip.MustParseAddr("fe80::1") || v.Level != OK || !strings.Contains(v.What, "link-local fe80::1") {
		t.Errorf("with a link-local: %v, %v", src, v)
	}
	as[2].Tentative = true
	if _, v := sourceVerdict("eth0", config.FamilyIPv6, as, configured); v.Level != Fail || !strings.Contains(v.What, "no usable IPv6 link-local") {
		t.Errorf("with a tentative link-local only: %v", v)
	}
	if src, v := sourceVerdict("eth0", config.FamilyIPv4, as, configured); src != netip.MustParseAddr("198.18.0.11") || v.Level != OK {
		t.Errorf("IPv4 source: %v, %v", src, v)
	}
	// IPv6 unicast to global peers: the first usable global address, not
	// a VIP; none is a failure naming the fault reason.
	if src, v := global6Verdict("eth0", as, configured); src.IsValid() || v.Level != Fail || !strings.Contains(v.What, "no_global_address") {
		t.Errorf("without a global address: %v, %v", src, v)
	}
	as = append(as, vip.Addr{Prefix: p("fd00:18::11/64"), Tentative: true}, vip.Addr{Prefix: p("fd00:18::12/64")})
	if src, v := global6Verdict("eth0", as, configured); src != netip.MustParseAddr("fd00:18::12") || v.Level != OK || !strings.Contains(v.What, "from fd00:18::12") {
		t.Errorf("with a global address: %v, %v", src, v)
	}
	// Link-locals, the source and VIPs are never "unowned"; an address of
	// a family nobody uses here is not either.
	ll := netip.MustParseAddr("fe80::1")
	for _, tc := range []struct {
		a    string
		fam  config.Family
		want bool
	}{
		{"fe80::1", config.FamilyIPv6, false},
		{"fe80::2", config.FamilyIPv6, false},
		{"fd00:18::100", config.FamilyIPv6, false},
		{"fd00:18::11", config.FamilyIPv6, true},
		{"198.18.0.12", config.FamilyIPv6, false},
		{"198.18.0.12", config.FamilyIPv4, true},
	} {
		if got := unowned(netip.MustParseAddr(tc.a), map[netip.Addr]bool{ll: true}, []config.Family{tc.fam}, configured); got != tc.want {
			t.Errorf("unowned(%s, %v) = %v, want %v", tc.a, tc.fam, got, tc.want)
		}
	}
}

func TestIPv6SettingVerdicts(t *testing.T) {
	values := map[string]int{
		"net.ipv6.conf.eth0.disable_ipv6": 0, "net.ipv6.conf.eth0.accept_dad": 1, "net.ipv6.conf.eth0.forwarding": 1,
	}
	d := doctor{sysctl: func(k string) (int, error) {
		v, ok := values[k]
		if !ok {
			return 0, errors.New("no such sysctl")
		}
		return v, nil
	}}
	out := verdictText(d.ipv6Settings("eth0"))
	for _, want := range []string{"ok    accept_dad is 1 on eth0", "vipd adds VIPs without it", "ok    IPv6 forwarding is on on eth0: vipd's neighbour advertisements carry the Router flag"} {
		if !strings.Contains(out, want) {
			t.Errorf("IPv6 verdicts lack %q:\n%s", want, out)
		}
	}
	values["net.ipv6.conf.eth0.disable_ipv6"] = 1
	if out := verdictText(d.ipv6Settings("eth0")); !strings.Contains(out, "FAIL  IPv6 is disabled on eth0") || !strings.Contains(out, "disable_ipv6=0") {
		t.Errorf("IPv6 off:\n%s", out)
	}
	if out := verdictText(d.ipv6Settings("eth9")); !strings.Contains(out, "FAIL  cannot read eth9's IPv6 settings") {
		t.Errorf("no IPv6 in the kernel:\n%s", out)
	}
}

// Heard over IPv6, nobody advertising points at ff02::12; an IPv6 VIP not
// advertised (advertise: false) is not expected in the peer's list.
func TestHeardVerdictsIPv6(t *testing.T) {
	v6 := netip.MustParsePrefix("fd00:18::100/128")
	inst := config.Instance{Name: "web6", VRID: 61, VIPs: []config.VIP{{Address: v6}}}
	out := verdictText(heardVerdicts("eth0", config.FamilyIPv6, []config.Instance{inst}, nil, time.Second))
	if !strings.Contains(out, "IP protocol 112 to ff02::12") {
		t.Errorf("no-advert hint does not name ff02::12:\n%s", out)
	}
	dual := config.Instance{Name: "dual", VRID: 62, VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}, {Address: v6, NotAdvertised: true}}}
	a := netip.MustParseAddr("198.18.0.11")
	seen := map[uint8]map[netip.Addr]*heard{62: {a: {src: a, addrs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}, lastPrio: 150}}}
	if out := verdictText(heardVerdicts("eth0", config.FamilyIPv4, []config.Instance{dual}, seen, time.Second)); strings.Contains(out, "warn") {
		t.Errorf("a dual-stack peer's IPv4-only list was judged different:\n%s", out)
	}
}

func TestAdvertFamilies(t *testing.T) {
	four := config.Instance{Name: "four", VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}}}
	six := config.Instance{Name: "six", VIPs: []config.VIP{{Address: netip.MustParsePrefix("fd00:18::100/128")}}}
	for _, tc := range []struct {
		insts []config.Instance
		want  []config.Family
	}{
		{nil, []config.Family{config.FamilyIPv4}},
		{[]config.Instance{six}, []config.Family{config.FamilyIPv6}},
		{[]config.Instance{six, four}, []config.Family{config.FamilyIPv4, config.FamilyIPv6}},
	} {
		if got := advertFamilies(tc.insts); !slices.Equal(got, tc.want) {
			t.Errorf("advertFamilies(%d instances) = %v, want %v", len(tc.insts), got, tc.want)
		}
	}
}
