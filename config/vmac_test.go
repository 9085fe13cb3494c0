package config

import (
	"strings"
	"testing"
)

func TestParseVirtualMAC(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(one("virtual_mac: true")))
	if err != nil {
		t.Fatal(err)
	}
	if in := cfg.Instances[0]; !in.VirtualMAC || in.VirtualMACName != "vrrp4.51" {
		t.Errorf("virtual_mac: true: VirtualMAC=%v VirtualMACName=%q, want true and the default vrrp4.51", in.VirtualMAC, in.VirtualMACName)
	}
	cfg, err = Parse("t.yaml", []byte(one("virtual_mac: true", "virtual_mac_name: web-vmac")))
	if err != nil {
		t.Fatal(err)
	}
	if in := cfg.Instances[0]; !in.VirtualMAC || in.VirtualMACName != "web-vmac" {
		t.Errorf("virtual_mac_name: web-vmac: VirtualMAC=%v VirtualMACName=%q", in.VirtualMAC, in.VirtualMACName)
	}
	for _, extra := range [][]string{nil, {"virtual_mac: false"}} {
		cfg, err = Parse("t.yaml", []byte(one(extra...)))
		if err != nil {
			t.Fatal(err)
		}
		if in := cfg.Instances[0]; in.VirtualMAC || in.VirtualMACName != "" {
			t.Errorf("%q: VirtualMAC=%v VirtualMACName=%q, want off and no name", extra, in.VirtualMAC, in.VirtualMACName)
		}
	}
}

// The default name and the MAC follow the instance's family: an instance
// whose VIPs are IPv6 gets vrrp6.<VRID> and 00:00:5e:00:02:<VRID>; one
// whose advertised VIPs are IPv4 keeps vrrp4.<VRID> with IPv6 addresses
// beside them, and the reverse.
func TestVirtualMACFollowsFamily(t *testing.T) {
	for _, tt := range []struct {
		vips, name string
		fam        Family
	}{
		{`vips: ["fd00:18::10"]`, "vrrp6.51", FamilyIPv6},
		{`vips: ["fd00:18::10", {address: 198.51.100.10, advertise: false}]`, "vrrp6.51", FamilyIPv6},
		{`vips: [198.51.100.10, "fd00:18::10"]`, "vrrp4.51", FamilyIPv4},
	} {
		y := inst("name: web", "interface: eth0", "vrid: 51", tt.vips, "virtual_mac: true")
		cfg, err := Parse("t.yaml", []byte(y))
		if err != nil {
			t.Fatalf("%s: %v", tt.vips, err)
		}
		in := cfg.Instances[0]
		if in.VirtualMACName != tt.name || in.Family() != tt.fam {
			t.Errorf("%s: macvlan %q over %v, want %q over %v", tt.vips, in.VirtualMACName, in.Family(), tt.name, tt.fam)
		}
	}
	if got := VirtualMAC(51, FamilyIPv4).String(); got != "00:00:5e:00:01:33" {
		t.Errorf("IPv4 virtual MAC of 51: %s", got)
	}
	if got := VirtualMAC(51, FamilyIPv6).String(); got != "00:00:5e:00:02:33" {
		t.Errorf("IPv6 virtual MAC of 51: %s", got)
	}
}

func TestParseVirtualMACRefused(t *testing.T) {
	twoVMAC := minimal + "    virtual_mac: true\n  - name: db\n    interface: eth1\n    vrid: 51\n    vips: [198.51.100.20]\n    virtual_mac: true\n"
	for _, tc := range []struct {
		yaml string
		want string
	}{
		{one("virtual_mac: yes please"), "t.yaml:6: virtual_mac"},
		{one("virtual_mac: true", "virtual_mac_name: a/b"), `t.yaml:7: virtual_mac_name: "a/b" is not a valid interface name`},
		{one("virtual_mac: true", "virtual_mac_name: sixteen-bytes-xx"), `t.yaml:7: virtual_mac_name: "sixteen-bytes-xx" is not a valid interface name`},
		{one("virtual_mac_name: vm51"), `t.yaml:6: virtual_mac_name: "vm51" names the macvlan of virtual_mac, which is not on in this instance`},
		{one("virtual_mac: true", "virtual_mac_name: eth0"), "t.yaml:7: virtual_mac: instance web's macvlan eth0 has the name of an interface this configuration uses"},
		{twoVMAC, "t.yaml:11: virtual_mac: instance db's macvlan vrrp4.51 has the name of instance web's (line 2); set virtual_mac_name on one of them"},
	} {
		_, err := Parse("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
	// Two instances on one VRID, told apart by virtual_mac_name.
	ok := strings.Replace(twoVMAC, "vips: [198.51.100.20]\n    virtual_mac: true\n", "vips: [198.51.100.20]\n    virtual_mac: true\n    virtual_mac_name: vrrp4.51b\n", 1)
	if _, err := Parse("t.yaml", []byte(ok)); err != nil {
		t.Errorf("distinct virtual_mac_name: %v", err)
	}
}
