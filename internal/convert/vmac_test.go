package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// use_vmac becomes virtual_mac (with virtual_mac_name when it names the
// macvlan); what keepalived does around it is reported, dropped only when
// its effect is lost.
func TestVirtualMACMapping(t *testing.T) {
	const head = "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n"
	const vips = " virtual_ipaddress {\n  198.18.0.51/32\n }\n}\n"
	for _, tc := range []struct {
		name    string
		lines   string
		exit    int
		yaml    []string // lines the output has
		notYAML []string // and has not
		reports []string // each report, in order
	}{
		{"bare", " use_vmac\n", ExitOK,
			[]string{"    virtual_mac: true\n", "keepalived names the macvlan vrrp.51, vipd vrrp4.51"}, []string{"virtual_mac_name:"}, nil},
		{"named", " use_vmac pub_a\n", ExitOK, []string{"    virtual_mac: true\n    virtual_mac_name: pub_a\n"}, []string{"keepalived names"}, nil},
		{"name keyword", " use_vmac name group\n", ExitOK, []string{"    virtual_mac_name: group\n"}, nil, nil},
		{"own MAC", " use_vmac vm1 02:00:00:00:00:01\n", ExitDropped, []string{"    virtual_mac_name: vm1\n"}, nil,
			[]string{"t.conf:4: use_vmac: vipd's macvlan always has RFC 5798's MAC 00:00:5e:00:01:<VRID> (00:00:5e:00:02:<VRID> over IPv6); the MAC 02:00:00:00:00:01 is not used"}},
		{"RFC MAC", " use_vmac 00:00:5e:00:01\n", ExitOK, []string{"    virtual_mac: true\n"}, nil,
			[]string{"t.conf:4: use_vmac: keepalived ignores 00:00:5e:00:01"}},
		{"group", " use_vmac group 7\n", ExitDropped, []string{"    virtual_mac: true\n"}, []string{"virtual_mac_name:"},
			[]string{"t.conf:4: use_vmac: vipd makes the macvlan in its parent's link group; group 7 is not set"}},
		{"invalid name", " use_vmac a/b\n", ExitOK, []string{"    virtual_mac: true\n"}, []string{"virtual_mac_name:"},
			[]string{`t.conf:4: use_vmac: "a/b" is not a valid interface name`}},
		{"name of the interface", " use_vmac eth0\n", ExitOK, []string{"    virtual_mac: true\n"}, []string{"virtual_mac_name:"},
			[]string{"t.conf:4: use_vmac: the macvlan's name eth0 is an interface the instance uses"}},
		{"xmit base", " use_vmac\n vmac_xmit_base\n", ExitOK, []string{"    virtual_mac: true\n"}, nil,
			[]string{"t.conf:5: vmac_xmit_base: vipd sends adverts from the virtual MAC"}},
		{"ipvlan", " use_ipvlan ipv1 bridge\n", ExitOK, nil, []string{"virtual_mac"},
			[]string{"t.conf:4: use_ipvlan: vipd makes no ipvlan: the VIPs go on eth0 itself, which answers with the same MAC as the ipvlan ipv1 would"}},
		{"ipvlan address", " use_ipvlan 198.18.0.9/24\n", ExitDropped, nil, []string{"virtual_mac"},
			[]string{"t.conf:4: use_ipvlan: vipd makes no ipvlan", "t.conf:4: use_ipvlan: 198.18.0.9/24 is not added by vipd"}},
		{"vmac addr, no other interface", " use_vmac\n use_vmac_addr\n", ExitOK, []string{"    virtual_mac: true\n"}, nil,
			[]string{"t.conf:5: use_vmac_addr: no VIP of this instance is on another interface"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "t.conf")
			if err := os.WriteFile(f, []byte(head+tc.lines+vips), 0o600); err != nil {
				t.Fatal(err)
			}
			res := convertFile(t, f)
			out := string(res.YAML)
			if res.ExitCode() != tc.exit {
				t.Errorf("exit %d, want %d; reports %v", res.ExitCode(), tc.exit, res.Reports)
			}
			for _, w := range tc.yaml {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notYAML {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if len(res.Reports) != len(tc.reports) {
				t.Fatalf("reports %v, want %d", res.Reports, len(tc.reports))
			}
			for i, w := range tc.reports {
				if got := strings.TrimPrefix(res.Reports[i].String(), filepath.Dir(f)+"/"); !strings.HasPrefix(got, w) {
					t.Errorf("report %d: %q, want it to start with %q", i, got, w)
				}
			}
			parseOutput(t, f, res.YAML)
		})
	}
}

// use_vmac on an IPv6 instance (and on one with native_ipv6) becomes
// virtual_mac; vipd's default name is vrrp6.<VRID>, and the converted
// file loads (parseOutput), as vipd runs the virtual MAC over IPv6.
func TestVirtualMACIPv6Mapping(t *testing.T) {
	for _, tc := range []struct{ name, conf, want string }{
		{"IPv6 VIP", "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n  fd00:18::51\n }\n}\n", "vipd vrrp6.51"},
		{"two on one VRID", "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n  fd00:18::51\n }\n}\n" +
			"vrrp_instance B {\n interface eth1\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n  fd00:19::51\n }\n}\n", "virtual_mac_name: vrrp6.51.2\n"},
		{"IPv4 VIP beside, excluded", "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n  fd00:18::51\n }\n virtual_ipaddress_excluded {\n  198.18.0.51\n }\n}\n", "vipd vrrp6.51"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "t.conf")
			if err := os.WriteFile(f, []byte(tc.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			res := convertFile(t, f)
			out := string(res.YAML)
			if res.ExitCode() != ExitOK || !strings.Contains(out, "    virtual_mac: true\n") || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d (reports %v), want %d, virtual_mac: true and %q:\n%s", res.ExitCode(), res.Reports, ExitOK, tc.want, out)
			}
			parseOutput(t, f, res.YAML)
		})
	}
}

// Two instances whose macvlans would share a name get distinct ones, as
// keepalived picks an unused name; vipd refuses the clash otherwise.
func TestVirtualMACNamesDistinct(t *testing.T) {
	inst := func(name, iface, vmac, vip string) string {
		return "vrrp_instance " + name + " {\n interface " + iface + "\n virtual_router_id 51\n use_vmac " + vmac + "\n virtual_ipaddress {\n  " + vip + "\n }\n}\n"
	}
	f := filepath.Join(t.TempDir(), "t.conf")
	conf := inst("A", "eth0", "", "198.18.0.51") + inst("B", "eth1", "", "198.18.1.51") + inst("C", "eth2", "vm", "198.18.2.51") + inst("D", "eth3", "vm", "198.18.3.51")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	res := convertFile(t, f)
	out := string(res.YAML)
	for _, w := range []string{"virtual_mac_name: vrrp4.51.2\n", "virtual_mac_name: vm\n", "virtual_mac_name: vrrp4.51.3\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	parseOutput(t, f, res.YAML)
}

// The corpus samples with use_vmac (079, 119) keep it as virtual_mac, and
// report only what is truly dropped: 079 nothing, 119 its e-mail settings.
func TestCorpusVirtualMAC(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "keepalived-corpus")
	if d := os.Getenv("VIPD_KEEPALIVED_CORPUS"); d != "" {
		dir = d
	}
	for _, tc := range []struct {
		file  string
		exit  int
		names []string
	}{
		{"079.conf", ExitOK, []string{""}},
		{"119.conf", ExitDropped, []string{"pub_a", "pvt_a"}},
	} {
		path := filepath.Join(dir, tc.file)
		if _, err := os.Stat(path); err != nil {
			t.Skipf("no corpus sample %s", path)
		}
		res := convertFile(t, path)
		if res.ExitCode() != tc.exit {
			t.Errorf("%s: exit %d, want %d", tc.file, res.ExitCode(), tc.exit)
		}
		for _, r := range res.Reports {
			if r.Dropped && r.Msg != msgEmail || strings.Contains(r.Keyword, "vmac") {
				t.Errorf("%s: report beyond the e-mail settings: %s", tc.file, r)
			}
		}
		out := string(res.YAML)
		if n := strings.Count(out, "    virtual_mac: true\n"); n != len(tc.names) {
			t.Errorf("%s: %d instances with virtual_mac, want %d", tc.file, n, len(tc.names))
		}
		for _, name := range tc.names {
			if name != "" && !strings.Contains(out, "    virtual_mac_name: "+name+"\n") {
				t.Errorf("%s: no virtual_mac_name %s:\n%s", tc.file, name, out)
			}
		}
	}
}
