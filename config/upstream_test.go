package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseUpstreams(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(one("upstreams: [198.18.0.1, 198.18.0.2]")))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Instances[0]
	want := []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")}
	if diff := cmp.Diff(want, in.Upstreams, cmpOpts); diff != "" || in.NoUpstreams {
		t.Errorf("Upstreams (-want +got):\n%s NoUpstreams=%v", diff, in.NoUpstreams)
	}

	// Absent: the default gateway (nil, check on).
	cfg, err = Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if in := cfg.Instances[0]; in.Upstreams != nil || in.NoUpstreams {
		t.Errorf("without the key: Upstreams=%v NoUpstreams=%v, want nil and false (the default gateway)", in.Upstreams, in.NoUpstreams)
	}

	// An empty list turns the check off.
	cfg, err = Parse("t.yaml", []byte(one("upstreams: []")))
	if err != nil {
		t.Fatal(err)
	}
	if in := cfg.Instances[0]; len(in.Upstreams) != 0 || !in.NoUpstreams {
		t.Errorf("upstreams: []: Upstreams=%v NoUpstreams=%v, want none and true", in.Upstreams, in.NoUpstreams)
	}
}

func TestParseUpstreamsRefused(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"upstreams: [router]"}, `t.yaml:6: upstream "router": not an IPv4 address (e.g. 198.18.0.1)`},
		{[]string{"upstreams: [2001:db8::1]"}, `t.yaml:6: upstream "2001:db8::1": IPv6 upstreams are not supported yet`},
		{[]string{"upstreams: [224.0.0.18]"}, `t.yaml:6: upstream "224.0.0.18": a multicast address cannot be an upstream`},
		{[]string{"upstreams: [0.0.0.0]"}, `t.yaml:6: upstream "0.0.0.0": not a unicast address of a neighbour`},
		{[]string{"upstreams:", "  - 198.18.0.1", "  - 198.18.0.1"}, "t.yaml:8: upstream 198.18.0.1 is listed twice in this instance (first at line 7)"},
		{[]string{"upstreams: [198.51.100.10]"}, "t.yaml:6: upstream 198.51.100.10 is a VIP (instance web)"},
		{[]string{"source_address: 198.18.0.21", "upstreams: [198.18.0.21]"}, "t.yaml:7: upstream 198.18.0.21 is this instance's source_address"},
		{[]string{"upstreams: 198.18.0.1"}, "t.yaml:6: upstreams"},
	} {
		_, err := Parse("t.yaml", []byte(one(tc.lines...)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.lines, err, tc.want)
		}
	}
}
