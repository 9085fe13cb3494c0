package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSourceAddress(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(one("source_address: 198.18.0.21", "unicast_peers: [198.18.0.12]")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0].SourceAddress; got != netip.MustParseAddr("198.18.0.21") {
		t.Errorf("SourceAddress = %v", got)
	}
	cfg, err = Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0].SourceAddress; got.IsValid() {
		t.Errorf("SourceAddress without the key = %v, want the zero Addr (the primary address)", got)
	}
}

func TestParseVIPPlacement(t *testing.T) {
	in := inst("name: web", "interface: eth0", "vrid: 51", "vips:",
		"  - address: 198.51.100.10",
		"    label: eth0:web",
		"  - address: 198.51.100.11/24",
		"    interface: eth1",
		"    label: eth1:1",
		"  - address: 198.51.100.12",
		"    interface: eth0")
	cfg, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []VIP{
		{Address: mustPrefix("198.51.100.10/32"), Label: "eth0:web", Line: 6},
		{Address: mustPrefix("198.51.100.11/24"), Interface: "eth1", Label: "eth1:1", Line: 8},
		// The instance's own interface, named, is the default.
		{Address: mustPrefix("198.51.100.12/32"), Line: 11},
	}
	if diff := cmp.Diff(want, cfg.Instances[0].VIPs, cmpOpts); diff != "" {
		t.Errorf("VIPs (-want +got):\n%s", diff)
	}
}

func TestParseNoVIPs(t *testing.T) {
	for _, in := range []string{
		inst("name: web", "interface: eth0", "vrid: 51"),
		inst("name: web", "interface: eth0", "vrid: 51", "vips: []"),
		inst("name: web", "interface: eth0", "vrid: 51", "vips:"),
	} {
		cfg, err := Parse("t.yaml", []byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if n := len(cfg.Instances[0].VIPs); n != 0 {
			t.Errorf("%q: %d VIPs", in, n)
		}
	}
}

func TestParseLongAuthPassIsCut(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(one("version: 2", "auth_pass: secret-pass1")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Instances[0].AuthPass; got != "secret-p" {
		t.Errorf("AuthPass = %q, want the first 8 bytes %q", got, "secret-p")
	}
	want := []Error{{File: "t.yaml", Line: 7, Msg: `auth_pass: 12 bytes; VRRP version 2 carries 8, so only the first 8 ("secret-p") are sent and checked, as keepalived does`}}
	if diff := cmp.Diff(want, cfg.Warnings); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
	// 8 bytes exactly: no warning.
	cfg, err = Parse("t.yaml", []byte(one("version: 2", "auth_pass: 12345678")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Instances[0].AuthPass != "12345678" || len(cfg.Warnings) != 0 {
		t.Errorf("8-byte password: %q, warnings %v", cfg.Instances[0].AuthPass, cfg.Warnings)
	}
	// Still version 2 only.
	if _, err := Parse("t.yaml", []byte(one("auth_pass: secret-pass1"))); err == nil {
		t.Error("a long auth_pass on a version 3 instance loaded")
	}
}

func TestParseNetErrors(t *testing.T) {
	vipWith := func(lines ...string) string {
		return inst(append([]string{"name: web", "interface: eth0", "vrid: 51", "vips:", "  - address: 198.51.100.10"}, lines...)...)
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"source not an address", one("source_address: eth0"), []string{`t.yaml:6: source_address "eth0": not an IP address (e.g. 198.18.0.21 or fe80::21)`}},
		{"source IPv6", one("source_address: 2001:db8::1"), []string{`t.yaml:6: source_address 2001:db8::1 is IPv6 but the instance runs over IPv4 (its VIPs are IPv4)`}},
		{"source unspecified", one("source_address: 0.0.0.0"), []string{`t.yaml:6: source_address "0.0.0.0": the unspecified address cannot be a source; omit source_address for the interface's primary address`}},
		{"source multicast", one("source_address: 224.0.0.18"), []string{`t.yaml:6: source_address "224.0.0.18": a multicast address cannot be a source`}},
		{"source loopback", one("source_address: 127.0.0.1"), []string{`t.yaml:6: source_address "127.0.0.1": a loopback address cannot be a source`}},
		{"source a list", one("source_address: [198.18.0.21]"), []string{`t.yaml:6: source_address: expected a string, got a list`}},
		{"source is a VIP", one("source_address: 198.51.100.10"), []string{"t.yaml:6: source_address 198.51.100.10 is a VIP (instance web); adverts must come from an address of this node that stays"}},
		{"source is a peer", one("source_address: 198.18.0.21", "unicast_peers: [198.18.0.21]"), []string{"t.yaml:6: source_address 198.18.0.21 is also listed in unicast_peers; a peer is another node's address"}},
		{"vip interface invalid", vipWith("    interface: eth0:1"), []string{`t.yaml:7: vip interface: "eth0:1" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`}},
		{"label without the interface", vipWith("    label: web"), []string{`t.yaml:7: vip label "web": must be the VIP's interface name, then ':', then a suffix (e.g. eth0:1)`}},
		{"label of another interface", vipWith("    label: eth1:1"), []string{`t.yaml:7: vip label "eth1:1": must be the VIP's interface name, then ':', then a suffix (e.g. eth0:1)`}},
		{"label of the instance's interface on another", vipWith("    interface: eth1", "    label: eth0:1"), []string{`t.yaml:8: vip label "eth0:1": must be the VIP's interface name, then ':', then a suffix (e.g. eth1:1)`}},
		{"label without suffix", vipWith("    label: 'eth0:'"), []string{`t.yaml:7: vip label "eth0:": must be the VIP's interface name, then ':', then a suffix (e.g. eth0:1)`}},
		{"label too long", vipWith("    label: eth0:0123456789a"), []string{`t.yaml:7: vip label "eth0:0123456789a": at most 15 bytes (the kernel's limit for a label)`}},
		{"label with a space", vipWith("    label: 'eth0:a b'"), []string{`t.yaml:7: vip label "eth0:a b": no whitespace, control characters or '/'`}},
		{"label with a bad interface", vipWith("    interface: a/b", "    label: x"), []string{
			`t.yaml:7: vip interface: "a/b" is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`,
			`t.yaml:8: vip label "x": must be the VIP's interface name, then ':', then a suffix (e.g. eth0:1)`,
		}},
		{"unknown vip key", vipWith("    dev: eth1"), []string{`t.yaml:7: unknown key "dev" in vip`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tt.in))
			if cfg != nil {
				t.Errorf("Parse returned a config along with the errors: %+v", cfg)
			}
			if diff := cmp.Diff(tt.want, errorLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseVIPAdvertise(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(inst("name: web", "interface: eth0", "vrid: 51",
		"vips: [198.51.100.10, {address: 198.51.100.11, advertise: false}, {address: 198.51.100.12, advertise: true}]")))
	if err != nil {
		t.Fatal(err)
	}
	vs := cfg.Instances[0].VIPs
	if len(vs) != 3 || vs[0].NotAdvertised || !vs[1].NotAdvertised || vs[2].NotAdvertised {
		t.Errorf("VIPs: %+v", vs)
	}
	_, err = Parse("t.yaml", []byte(inst("name: web", "interface: eth0", "vrid: 51",
		"vips: [{address: 198.51.100.11, advertise: no}]")))
	if err == nil || err.Error() != `t.yaml:5: vips.advertise: expected true or false, got "no"` {
		t.Errorf("advertise: no: %v", err)
	}
}
