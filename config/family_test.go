package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// six returns an instance whose VIPs are the given lines (after "vips:",
// from line 6 on), with extra keys before them from line 5.
func six(extra []string, vips ...string) string {
	lines := append([]string{"name: web6", "interface: eth0", "vrid: 61"}, extra...)
	lines = append(lines, "vips:")
	for _, v := range vips {
		lines = append(lines, "  "+v)
	}
	return inst(lines...)
}

func TestInstanceFamily(t *testing.T) {
	type vip struct {
		addr          string
		notAdvertised bool
	}
	tests := []struct {
		name string
		yaml string
		fam  Family
		vips []vip
	}{
		{"bare IPv6 is a /128", six(nil, `- "fd00:18::10"`), FamilyIPv6,
			[]vip{{"fd00:18::10/128", false}}},
		{"IPv6 prefix kept", six(nil, "- address: fd00:18::10/64"), FamilyIPv6,
			[]vip{{"fd00:18::10/64", false}}},
		{"link-local VIP", six(nil, `- "fe80::1:10"`), FamilyIPv6,
			[]vip{{"fe80::1:10/128", false}}},
		{"IPv4 only", six(nil, "- 198.18.0.10"), FamilyIPv4,
			[]vip{{"198.18.0.10/32", false}}},
		{"mixed: IPv4 instance, IPv6 moves but is not advertised",
			six(nil, "- 198.18.0.10", `- "fd00:18::10/64"`), FamilyIPv4,
			[]vip{{"198.18.0.10/32", false}, {"fd00:18::10/64", true}}},
		{"mixed, IPv6 first: still IPv4 unless the IPv4 ones are excluded",
			six(nil, `- "fd00:18::10"`, "- 198.18.0.10"), FamilyIPv4,
			[]vip{{"fd00:18::10/128", true}, {"198.18.0.10/32", false}}},
		{"IPv6 instance carrying an IPv4 address",
			six(nil, `- "fd00:18::10"`, "- {address: 198.18.0.10, advertise: false}"), FamilyIPv6,
			[]vip{{"fd00:18::10/128", false}, {"198.18.0.10/32", true}}},
		{"nothing advertised, all IPv6",
			six(nil, `- {address: "fd00:18::10", advertise: false}`), FamilyIPv6,
			[]vip{{"fd00:18::10/128", true}}},
		{"IPv6 instance with IPv6 unicast peers and a global source",
			six([]string{`unicast_peers: ["fd00:18::12", "fe80::12"]`, `source_address: "fd00:18::11"`}, `- "fd00:18::10"`), FamilyIPv6,
			[]vip{{"fd00:18::10/128", false}}},
		{"IPv6 multicast from a link-local source",
			six([]string{`source_address: "fe80::11"`}, `- "fd00:18::10"`), FamilyIPv6,
			[]vip{{"fd00:18::10/128", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			in := cfg.Instances[0]
			if got := in.Family(); got != tt.fam {
				t.Errorf("Family() = %v, want %v", got, tt.fam)
			}
			var got []vip
			for _, v := range in.VIPs {
				got = append(got, vip{v.Address.String(), v.NotAdvertised})
			}
			if diff := cmp.Diff(tt.vips, got, cmp.AllowUnexported(vip{})); diff != "" {
				t.Errorf("VIPs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFamilyOfInstanceWithoutVIPs(t *testing.T) {
	in := Instance{}
	if in.Family() != FamilyIPv4 {
		t.Errorf("no VIPs: %v, want IPv4", in.Family())
	}
	if FamilyIPv4.String() != "IPv4" || FamilyIPv6.String() != "IPv6" {
		t.Errorf("String: %s %s", FamilyIPv4, FamilyIPv6)
	}
	if FamilyOf(netip.MustParseAddr("::ffff:198.18.0.1")) != FamilyIPv4 {
		t.Error("an IPv4-mapped address is IPv4")
	}
}

func TestFamilyErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"version 2 over IPv6", six([]string{"version: 2"}, `- "fd00:18::10"`),
			[]string{"t.yaml:5: version: 2 cannot run over IPv6 (VRRPv2 is IPv4 only) and this instance runs over IPv6 (its advertised VIPs are all IPv6); use version 3"}},
		{"message-only checksum over IPv6", six([]string{"v3_checksum: message-only"}, `- "fd00:18::10"`),
			[]string{"t.yaml:5: v3_checksum: message-only applies to IPv4; over IPv6 the checksum always covers the pseudo-header and this instance runs over IPv6 (its advertised VIPs are all IPv6)"}},
		{"IPv4 peer on an IPv6 instance", six([]string{"unicast_peers: [198.18.0.12]"}, `- "fd00:18::10"`),
			[]string{"t.yaml:5: unicast peer 198.18.0.12 is IPv4 but the instance runs over IPv6 (its advertised VIPs are all IPv6); adverts go to peers of the instance's family"}},
		{"IPv6 peer on an instance without VIPs", inst("name: web", "interface: eth0", "vrid: 51", `unicast_peers: ["fd00:18::12"]`),
			[]string{"t.yaml:5: unicast peer fd00:18::12 is IPv6 but the instance runs over IPv4 (an instance without VIPs runs over IPv4); adverts go to peers of the instance's family"}},
		{"mixed peers", six([]string{"unicast_peers:", `  - "fd00:18::12"`, "  - 198.18.0.12"}, `- "fd00:18::10"`),
			[]string{"t.yaml:7: unicast peer 198.18.0.12 is IPv4 but the instance runs over IPv6 (its advertised VIPs are all IPv6); adverts go to peers of the instance's family"}},
		{"IPv4 source on an IPv6 instance", six([]string{"source_address: 198.18.0.11"}, `- "fd00:18::10"`),
			[]string{"t.yaml:5: source_address 198.18.0.11 is IPv4 but the instance runs over IPv6 (its advertised VIPs are all IPv6)"}},
		{"global source for IPv6 multicast", six([]string{`source_address: "fd00:18::11"`}, `- "fd00:18::10"`),
			[]string{"t.yaml:5: source_address fd00:18::11: multicast adverts over IPv6 must come from a link-local address (RFC 5798 §5.1.2); omit source_address for the interface's link-local, or use unicast_peers"}},
		{"other family explicitly advertised", six(nil, "- 198.18.0.10", `- {address: "fd00:18::10", advertise: true}`),
			[]string{"t.yaml:7: VIP fd00:18::10 is IPv6 but the instance runs over IPv4 (its VIPs are IPv4): an advert lists only addresses of its own family; drop advertise: true (the address still moves with the master)"}},
		{"label on an IPv6 VIP", six(nil, `- {address: "fd00:18::10", label: "eth0:v6"}`),
			[]string{"t.yaml:6: VIP fd00:18::10: label eth0:v6: Linux keeps no label on an IPv6 address; drop the label"}},
		{"VIP with a zone", six(nil, `- "fe80::10%eth0"`),
			[]string{`t.yaml:6: address "fe80::10%eth0": a zone (%eth0) cannot be given; the instance's interface is the scope`}},
		{"IPv4-mapped VIP", six(nil, `- "::ffff:198.18.0.10"`),
			[]string{`t.yaml:6: address "::ffff:198.18.0.10": an IPv4-mapped IPv6 address; write the IPv4 address 198.18.0.10`}},
		{"loopback VIP", six(nil, `- "::1"`), []string{`t.yaml:6: address "::1": a loopback address cannot be a VIP`}},
		{"unspecified VIP", six(nil, `- "::"`), []string{`t.yaml:6: address "::": the unspecified address cannot be a VIP`}},
		{"IPv6 /0", six(nil, `- "fd00:18::10/0"`), []string{`t.yaml:6: address "fd00:18::10/0": a /0 prefix would cover every address`}},
		{"IPv6 /129", six(nil, `- "fd00:18::10/129"`), []string{`t.yaml:6: address "fd00:18::10/129": not an IP address or address/prefix (e.g. 198.51.100.10, 198.51.100.10/24 or 2001:db8::10/64)`}},
		{"peer with a zone", six([]string{`unicast_peers: ["fe80::12%eth0"]`}, `- "fd00:18::10"`),
			[]string{`t.yaml:5: unicast peer "fe80::12%eth0": a zone (%eth0) cannot be given; the instance's interface is the scope`}},
		{"multicast peer", six([]string{`unicast_peers: ["ff02::12"]`}, `- "fd00:18::10"`),
			[]string{`t.yaml:5: unicast peer "ff02::12": a multicast address cannot be a peer`}},
		{"loopback source", six([]string{`source_address: "::1"`}, `- "fd00:18::10"`),
			[]string{`t.yaml:5: source_address "::1": a loopback address cannot be a source`}},
		{"IPv6 VIP in two instances",
			"instances:\n" +
				"  - {name: a, interface: eth0, vrid: 1, vips: [\"fd00:18::10\"]}\n" +
				"  - {name: b, interface: eth0, vrid: 2, vips: [\"fd00:18::10/64\"]}\n",
			[]string{"t.yaml:3: VIP fd00:18::10 is also in instance a at line 2"}},
		{"IPv6 peer that is a VIP",
			"instances:\n" +
				"  - {name: a, interface: eth0, vrid: 1, vips: [\"fd00:18::10\"]}\n" +
				"  - {name: b, interface: eth0, vrid: 2, vips: [\"fd00:18::20\"], unicast_peers: [\"fd00:18::10\"]}\n",
			[]string{"t.yaml:3: unicast peer fd00:18::10 is a VIP (instance a at line 2); list the peer's own address"}},
		{"IPv6 upstream still refused", six([]string{`upstreams: ["fe80::1"]`}, `- "fd00:18::10"`),
			[]string{`t.yaml:5: upstream "fe80::1": IPv6 upstreams are not supported yet`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("got %v, want Errors", err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// Load, which the daemon and vipd check use, runs IPv6 instances and
// dual-stack ones, with and without virtual_mac.
func TestLoadRunsIPv6AndDualStack(t *testing.T) {
	yaml := "instances:\n" +
		"  - name: web6\n" +
		"    interface: eth0\n" +
		"    vrid: 61\n" +
		"    vips: [\"fd00:18::10\"]\n" +
		"  - name: dual\n" +
		"    interface: eth1\n" +
		"    vrid: 62\n" +
		"    vips:\n" +
		"      - 198.18.0.10\n" +
		"      - \"fd00:18::20/64\"\n"
	path := filepath.Join(t.TempDir(), "vipd.yaml")
	write := func(y string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(yaml)
	if _, err := Load(path); err != nil {
		t.Errorf("Load of an IPv6 and a dual-stack instance: %v", err)
	}

	mixed := strings.Replace(yaml, "interface: eth1", "interface: eth0", 1)
	write(mixed)
	if _, err := Load(path); err != nil {
		t.Errorf("Load of an IPv4 and an IPv6 instance on one interface: %v", err)
	}

	vmac := strings.Replace(yaml, "    vrid: 61\n", "    vrid: 61\n    virtual_mac: true\n", 1)
	vmac = strings.Replace(vmac, "    vrid: 62\n", "    vrid: 62\n    virtual_mac: true\n", 1)
	write(vmac)
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load with virtual_mac on an IPv6 and a dual-stack instance: %v", err)
	}
	if got := cfg.Instances[0].VirtualMACName; got != "vrrp6.61" {
		t.Errorf("IPv6 instance's macvlan %q, want vrrp6.61", got)
	}
	if got := cfg.Instances[1].VirtualMACName; got != "vrrp4.62" {
		t.Errorf("dual-stack IPv4 instance's macvlan %q, want vrrp4.62", got)
	}
}
