package doctor

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
)

func TestHeardVerdicts(t *testing.T) {
	vip := netip.MustParsePrefix("198.18.0.100/32")
	inst := config.Instance{Name: "web", VRID: 51, VIPs: []config.VIP{{Address: vip}}}
	a, b := netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12")
	for _, tc := range []struct {
		name  string
		seen  map[uint8]map[netip.Addr]*heard
		level string
		want  string
	}{
		{"nobody", nil, "warn", "no advert for VRID 51"},
		{"one master", map[uint8]map[netip.Addr]*heard{51: {a: {src: a, addrs: []netip.Addr{vip.Addr()}, lastPrio: 150}}},
			"ok", "advertised by 198.18.0.11 (priority 150)"},
		{"two masters", map[uint8]map[netip.Addr]*heard{51: {
			a: {src: a, addrs: []netip.Addr{vip.Addr()}, lastPrio: 150},
			b: {src: b, addrs: []netip.Addr{vip.Addr()}, lastPrio: 100}}},
			"FAIL", "advertised by 2 routers at once: 198.18.0.11 (priority 150), 198.18.0.12 (priority 100)"},
		{"a resigned master does not count", map[uint8]map[netip.Addr]*heard{51: {
			a: {src: a, addrs: []netip.Addr{vip.Addr()}, lastPrio: 0},
			b: {src: b, addrs: []netip.Addr{vip.Addr()}, lastPrio: 100}}},
			"ok", "advertised by 198.18.0.12"},
		{"foreign address list", map[uint8]map[netip.Addr]*heard{51: {a: {src: a, addrs: []netip.Addr{netip.MustParseAddr("203.0.113.9")}, lastPrio: 200}}},
			"warn", "advertises VRID 51 with addresses [203.0.113.9]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := heardVerdicts("eth0", config.FamilyIPv4, []config.Instance{inst}, tc.seen, time.Second)
			found := false
			for _, v := range vs {
				if v.Level == tc.level && strings.Contains(v.What, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("verdicts %+v lack %s %q", vs, tc.level, tc.want)
			}
		})
	}
}

func TestKernelSettingVerdicts(t *testing.T) {
	values := map[string]int{
		"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.eth0.rp_filter": 1,
		"net.ipv4.conf.all.arp_ignore": 0, "net.ipv4.conf.eth0.arp_ignore": 0,
		"net.ipv4.conf.all.arp_announce": 2, "net.ipv4.conf.eth0.arp_announce": 0,
		"net.ipv4.ip_nonlocal_bind": 0,
	}
	d := doctor{sysctl: func(k string) (int, error) { return values[k], nil }}
	out := ""
	for _, v := range d.kernelSettings("eth0", false) {
		out += v.String() + "\n"
	}
	for _, want := range []string{"warn  rp_filter is strict (1) on eth0", "ok    arp_ignore is 0", "ok    arp_announce is 2", "warn  ip_nonlocal_bind is 0", "fix: sysctl -w net.ipv4.conf.eth0.rp_filter=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("kernel verdicts lack %q:\n%s", want, out)
		}
	}
}
