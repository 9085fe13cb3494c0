package doctor

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/config"
)

var vmacInst = config.Instance{Name: "web", Interface: "eth0", VRID: 51, VirtualMAC: true, VirtualMACName: "vrrp4.51",
	VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}}}

func TestVMACLinkVerdict(t *testing.T) {
	good := func() *vmacLink {
		return &vmacLink{kind: "macvlan", mode: netlink.MACVLAN_MODE_BRIDGE, mac: net.HardwareAddr{0, 0, 0x5e, 0, 1, 51}, parent: 2, alias: "vipd:web"}
	}
	for _, tc := range []struct {
		name  string
		edit  func(l *vmacLink) *vmacLink
		level string
		want  string
	}{
		{"absent", func(*vmacLink) *vmacLink { return nil }, OK, "no macvlan vrrp4.51 yet: vipd makes it (00:00:5e:00:01:33, bridge mode, on eth0)"},
		{"vipd's, backup", func(l *vmacLink) *vmacLink { return l }, OK, "macvlan vrrp4.51 on eth0 with 00:00:5e:00:01:33, bridge mode, down (backup"},
		{"vipd's, master", func(l *vmacLink) *vmacLink { l.up = true; return l }, OK, "bridge mode, up (master"},
		{"not a macvlan", func(l *vmacLink) *vmacLink { l.kind = "dummy"; return l }, Fail, "vrrp4.51 is a dummy link, not vipd's macvlan: vipd refuses to start"},
		{"someone else's", func(l *vmacLink) *vmacLink { l.alias = ""; return l }, Fail, `macvlan vrrp4.51 is not vipd's (alias "", want "vipd:web")`},
		{"other parent", func(l *vmacLink) *vmacLink { l.parent = 3; return l }, Fail, "macvlan vrrp4.51 is not on eth0"},
		{"other MAC", func(l *vmacLink) *vmacLink { l.mac = net.HardwareAddr{2, 0, 0, 0, 0, 1}; return l }, Fail, "has MAC 02:00:00:00:00:01, want 00:00:5e:00:01:33"},
		{"private mode", func(l *vmacLink) *vmacLink { l.mode = netlink.MACVLAN_MODE_PRIVATE; return l }, Fail, "is not in bridge mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vmacLinkVerdict(vmacInst, 2, tc.edit(good()))
			if !hasVerdict([]Verdict{v}, tc.level, tc.want) {
				t.Errorf("verdict %+v, want %s %q", v, tc.level, tc.want)
			}
		})
	}
}

func TestVMACSysctls(t *testing.T) {
	values := map[string]int{
		"net.ipv4.conf.all.arp_ignore": 0, "net.ipv4.conf.eth0.arp_ignore": 1,
		"net.ipv4.conf.all.arp_filter": 0, "net.ipv4.conf.eth0.arp_filter": 0,
		"net.ipv4.conf.all.arp_announce": 0, "net.ipv4.conf.eth0.arp_announce": 0,
		"net.ipv4.conf.vrrp4.51.arp_ignore": 0, "net.ipv4.conf.vrrp4.51.arp_announce": 2,
	}
	d := doctor{sysctl: func(k string) (int, error) {
		v, ok := values[k]
		if !ok {
			return 0, errors.New("no such sysctl")
		}
		return v, nil
	}}
	// vipd running (its macvlan exists): a value below vipd's is a change
	// behind its back; arp_announce and arp_ignore fail, the others warn.
	vs := d.vmacSysctls("eth0", []string{"web"}, []string{"vrrp4.51"}, true)
	for _, w := range []struct{ level, want string }{
		{OK, "arp_ignore is 1 on eth0 (virtual_mac of web)"},
		{Warn, "arp_filter is 0 on eth0 while vipd runs with virtual_mac of web"},
		{Fail, "arp_announce is 0 on eth0 while vipd runs with virtual_mac of web: vipd sets 2 because the host's own ARP requests never give a VIP as sender"},
		{Warn, "arp_ignore is 0 on vrrp4.51 while vipd runs"},
		{OK, "arp_announce is 2 on vrrp4.51"},
	} {
		if !hasVerdict(vs, w.level, w.want) {
			t.Errorf("running: verdicts lack %s %q:\n%v", w.level, w.want, vs)
		}
	}
	// vipd not running: the values are reported with what vipd will set.
	vs = d.vmacSysctls("eth0", []string{"web"}, nil, false)
	if !hasVerdict(vs, OK, "arp_announce is 0 on eth0: vipd raises it to 2 while it runs") || hasVerdict(vs, Fail, "") || hasVerdict(vs, Warn, "") || len(vs) != 3 {
		t.Errorf("stopped: %v", vs)
	}
	// all.arp_announce=2 is as good as the interface's own.
	values["net.ipv4.conf.all.arp_announce"] = 2
	if vs := d.vmacSysctls("eth0", []string{"web"}, nil, true); !hasVerdict(vs, OK, "arp_announce is 2 on eth0") {
		t.Errorf("all=2: %v", vs)
	}
	// The generic ARP checks stay out on a virtual-MAC parent (vipd sets
	// arp_filter=1 there on purpose).
	values["net.ipv4.conf.eth0.arp_filter"] = 1
	if vs := d.kernelSettings("eth0", true); hasVerdict(vs, Warn, "arp_filter") || hasVerdict(vs, OK, "arp_ignore") {
		t.Errorf("kernelSettings on a virtual-MAC parent judged ARP sysctls: %v", vs)
	}
	if vs := d.kernelSettings("eth0", false); !hasVerdict(vs, Warn, "arp_filter is 1 on eth0") {
		t.Errorf("kernelSettings elsewhere lost the arp_filter check: %v", vs)
	}
}

func TestMacvlanSupport(t *testing.T) {
	files := map[string]string{}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	loaded := false
	stat := func(p string) bool { return loaded && p == "/sys/module/macvlan" }
	if v := macvlanSupport(stat, read, "6.1.0"); v.Level != Fail || v.Fix == "" {
		t.Errorf("no macvlan anywhere: %+v", v)
	}
	files["/lib/modules/6.1.0/modules.dep"] = "kernel/drivers/net/ipvlan/ipvlan.ko.xz:\nkernel/drivers/net/macvtap.ko.xz: kernel/drivers/net/macvlan.ko.xz\n"
	if v := macvlanSupport(stat, read, "6.1.0"); v.Level != Fail {
		t.Errorf("macvlan only as a dependency of another module is not the module: %+v", v)
	}
	files["/lib/modules/6.1.0/modules.dep"] += "kernel/drivers/net/macvlan.ko.xz:\n"
	if v := macvlanSupport(stat, read, "6.1.0"); v.Level != OK || !hasVerdict([]Verdict{v}, OK, "module, loaded when vipd makes the first macvlan") {
		t.Errorf("module on disk: %+v", v)
	}
	delete(files, "/lib/modules/6.1.0/modules.dep")
	files["/lib/modules/6.1.0/modules.builtin"] = "kernel/drivers/net/macvlan.ko\n"
	if v := macvlanSupport(stat, read, "6.1.0"); !hasVerdict([]Verdict{v}, OK, "built in") {
		t.Errorf("built in: %+v", v)
	}
	loaded = true
	if v := macvlanSupport(stat, read, "6.1.0"); !hasVerdict([]Verdict{v}, OK, "module loaded or built in") {
		t.Errorf("loaded: %+v", v)
	}
}

func TestVMACReachVerdicts(t *testing.T) {
	vipA := netip.MustParseAddr("198.18.0.100")
	master := netip.MustParseAddr("198.18.0.11")
	own, mm, rogue, vm := "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:99", "00:00:5e:00:01:33"
	for _, tc := range []struct {
		name  string
		held  bool
		got   arpAnswers
		level string
		want  string
	}{
		{"backup: the virtual MAC answers", false, arpAnswers{master: {mm}, vipA: {vm}}, OK, "VIP 198.18.0.100 answers from the virtual MAC 00:00:5e:00:01:33"},
		{"backup: the master's real MAC answers too", false, arpAnswers{master: {mm}, vipA: {vm, mm}}, Fail, "answered for by the master's own MAC 02:00:00:00:00:02"},
		{"backup: a third host", false, arpAnswers{master: {mm}, vipA: {vm, rogue}}, Fail, "also answered for by 02:00:00:00:00:99 (the VIP's MAC is the virtual MAC"},
		{"backup: nobody", false, arpAnswers{master: {mm}}, Warn, "nobody answers ARP for VIP 198.18.0.100"},
		{"holder: its own virtual MAC", true, arpAnswers{vipA: {vm}}, OK, "held here and no other host answers"},
		{"holder: another MAC", true, arpAnswers{vipA: {vm, rogue}}, Fail, "also answered for by 02:00:00:00:00:99 (this node holds it)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := reachVerdicts("eth0", vmacInst, own, map[netip.Addr]bool{vipA: tc.held}, master, tc.got)
			if !hasVerdict(vs, tc.level, tc.want) {
				t.Errorf("verdicts %+v lack %s %q", vs, tc.level, tc.want)
			}
		})
	}
}
