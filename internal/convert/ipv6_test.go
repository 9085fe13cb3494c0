package convert

import (
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/vipd/vipd/config"
)

// The converted IPv6 fixture is a valid vipd configuration (config.Parse;
// config.Load still refuses IPv6 until the runtime runs it), and each
// instance runs over the family keepalived gives it, carrying the other
// family unadvertised.
func TestIPv6ConversionParses(t *testing.T) {
	res := convertFile(t, "testdata/ipv6.conf")
	cfg, err := config.Parse("ipv6.yaml", res.YAML)
	if err != nil {
		t.Fatalf("converted ipv6.conf does not parse: %v\n%s", err, res.YAML)
	}
	want := map[string]struct {
		fam        config.Family
		version    int
		advertised []string
		excluded   []string
		peers      []string
		source     string
	}{
		"v6": {config.FamilyIPv6, 3, []string{"fd00:18::10/128", "fd00:18::11/64", "fd00:18::/128", "fd00:18::12/64"},
			[]string{"198.18.0.61/24", "fd00:18::13/64"}, []string{"fd00:18::2"}, "fd00:18::1"},
		"dual":             {config.FamilyIPv4, 2, []string{"198.18.0.62/24"}, []string{"fd00:18::62/64"}, nil, ""},
		"v6_v2":            {config.FamilyIPv6, 3, []string{"fd00:18::63/64"}, nil, nil, ""},
		"v6_linklocal_src": {config.FamilyIPv6, 3, []string{"fd00:18::64/64"}, nil, nil, "fe80::1"},
		"v4_native":        {config.FamilyIPv4, 2, []string{"198.18.0.65/24"}, nil, nil, ""},
		"v6_no_vips":       {config.FamilyIPv4, 3, nil, []string{"198.18.0.66/24"}, nil, ""},
	}
	if len(cfg.Instances) != len(want) {
		t.Fatalf("%d instances, want %d", len(cfg.Instances), len(want))
	}
	for _, in := range cfg.Instances {
		w, ok := want[in.Name]
		if !ok {
			t.Errorf("unexpected instance %s", in.Name)
			continue
		}
		var adv, exc, peers []string
		for _, v := range in.VIPs {
			if v.NotAdvertised {
				exc = append(exc, v.Address.String())
			} else {
				adv = append(adv, v.Address.String())
			}
		}
		for _, p := range in.UnicastPeers {
			peers = append(peers, p.String())
		}
		src := ""
		if in.SourceAddress != (netip.Addr{}) {
			src = in.SourceAddress.String()
		}
		if in.Family() != w.fam || in.Version != w.version || !slices.Equal(adv, w.advertised) || !slices.Equal(exc, w.excluded) || !slices.Equal(peers, w.peers) || src != w.source {
			t.Errorf("%s: %v v%d advertised %v excluded %v peers %v source %q; want %v v%d %v %v %v %q",
				in.Name, in.Family(), in.Version, adv, exc, peers, src, w.fam, w.version, w.advertised, w.excluded, w.peers, w.source)
		}
	}

	// vipd check (config.Load) takes it: the runtime runs all of it.
	path := t.TempDir() + "/vipd.yaml"
	if err := os.WriteFile(path, res.YAML, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Errorf("config.Load of the conversion: %v", err)
	}
}
