package doctor

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

func hasVerdict(vs []Verdict, level, want string) bool {
	for _, v := range vs {
		if v.Level == level && strings.Contains(v.What, want) {
			return true
		}
	}
	return false
}

func TestSharedSubnet(t *testing.T) {
	addrs := []vip.Addr{{Prefix: netip.MustParsePrefix("198.18.0.11/24")}, {Prefix: netip.MustParsePrefix("198.18.0.100/24"), Owned: true}}
	configured := map[netip.Addr]bool{netip.MustParseAddr("198.18.0.100"): true}
	in := config.Instance{Name: "web", VIPs: []config.VIP{
		{Address: netip.MustParsePrefix("198.18.0.100/24")}, // shares 198.18.0.0/24
		{Address: netip.MustParsePrefix("198.18.0.101/32")}, // a /32: fine
		{Address: netip.MustParsePrefix("198.18.5.1/24")},   // its own subnet: fine
	}}
	vs := sharedSubnet("eth0", addrs, configured, []config.Instance{in})
	if len(vs) != 1 || !hasVerdict(vs, Warn, "VIP 198.18.0.100/24 is not a /32 and shares the subnet of eth0's own address 198.18.0.11/24") ||
		!strings.Contains(vs[0].Fix, "198.18.0.100/32") {
		t.Errorf("verdicts %+v, want one warning about 198.18.0.100/24", vs)
	}
}

func TestArpFilterVerdict(t *testing.T) {
	for _, tc := range []struct {
		all, dev int
		level    string
		want     string
	}{{0, 0, OK, "arp_filter is 0 on eth0"}, {1, 0, Warn, "arp_filter is 1 on eth0"}, {0, 1, Warn, "arp_filter is 1 on eth0"}} {
		d := doctor{sysctl: func(k string) (int, error) {
			switch k {
			case "net.ipv4.conf.all.arp_filter":
				return tc.all, nil
			case "net.ipv4.conf.eth0.arp_filter":
				return tc.dev, nil
			}
			return 0, nil
		}}
		if vs := d.kernelSettings("eth0", false); !hasVerdict(vs, tc.level, tc.want) {
			t.Errorf("all=%d dev=%d: verdicts %+v lack %s %q", tc.all, tc.dev, vs, tc.level, tc.want)
		}
	}
}

func TestReachVerdicts(t *testing.T) {
	vipA := netip.MustParseAddr("198.18.0.100")
	master := netip.MustParseAddr("198.18.0.11")
	in := config.Instance{Name: "web", VIPs: []config.VIP{{Address: netip.PrefixFrom(vipA, 32)}}}
	own, mm, rogue := "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:99"
	for _, tc := range []struct {
		name   string
		held   bool
		master netip.Addr
		got    arpAnswers
		level  string
		want   string
	}{
		{"backup: the master answers", false, master, arpAnswers{master: {mm}, vipA: {mm}}, OK, "VIP 198.18.0.100 answers from the master's MAC 02:00:00:00:00:02 (master 198.18.0.11)"},
		{"backup: a third host answers too", false, master, arpAnswers{master: {mm}, vipA: {mm, rogue}}, Fail, "VIP 198.18.0.100 is also answered for by 02:00:00:00:00:99 (the master 198.18.0.11 is 02:00:00:00:00:02)"},
		{"backup: only a third host answers", false, master, arpAnswers{master: {mm}, vipA: {rogue}}, Fail, "also answered for by 02:00:00:00:00:99"},
		{"backup: nobody answers", false, master, arpAnswers{master: {mm}}, Warn, "nobody answers ARP for VIP 198.18.0.100"},
		{"backup: master unknown", false, netip.Addr{}, arpAnswers{vipA: {mm}}, Warn, "the master's MAC is unknown"},
		{"holder: another MAC answers", true, netip.Addr{}, arpAnswers{vipA: {rogue}}, Fail, "also answered for by 02:00:00:00:00:99 (this node holds it)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := reachVerdicts("eth0", in, own, map[netip.Addr]bool{vipA: tc.held}, tc.master, tc.got)
			if !hasVerdict(vs, tc.level, tc.want) {
				t.Errorf("verdicts %+v lack %s %q", vs, tc.level, tc.want)
			}
		})
	}
	if vs := reachVerdicts("eth0", in, own, map[netip.Addr]bool{vipA: true}, netip.Addr{}, arpAnswers{}); !hasVerdict(vs, OK, "held here and no other host answers") {
		t.Errorf("holder alone: %+v", vs)
	}
}
