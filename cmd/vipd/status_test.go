package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/control"
)

func TestPrintStatusFits100Columns(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := control.Status{Reload: control.Reload{OK: false, Time: now}, Instances: []control.Instance{{
		Name: "a-rather-long-instance-name", Interface: "enp129s0f1np1", VRID: 255, State: "master",
		Priority: 254, EffectivePriority: 194, MasterAddress: "203.0.113.254", LastTransition: now.Add(-90 * time.Minute),
		VIPs: []control.VIP{
			{Address: "203.0.113.100", Description: "a very long description of the public service behind it", Owner: "the platform team", Present: true},
			{Address: "203.0.113.101/24", Present: false},
			{Address: "203.0.113.102", Present: false, AddFailures: 4,
				AddError: "vip: add 203.0.113.102/32 on interface 7: no buffer space available and a long tail of text"},
		},
	}}}
	var b bytes.Buffer
	printStatus(&b, s, now)
	out := b.String()
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("line of %d columns: %q", n, l)
		}
	}
	for _, want := range []string{"194/254", "1h30m", "203.0.113.100 on a very", "203.0.113.101/24 off", "reload failed",
		"203.0.113.102 failing", "VIP 203.0.113.102 cannot be added (4 failed adds, retrying): vip: add"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPrintStatusPlacement(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := control.Status{Reload: control.Reload{OK: true}, Instances: []control.Instance{{
		Name: "web", Interface: "eth0", VRID: 51, State: "master", PrimaryAddress: "198.18.0.11", SourceAddress: "198.18.0.21",
		VIPs: []control.VIP{
			{Address: "198.18.0.100", Interface: "eth0", Present: true},
			{Address: "198.18.0.101", Interface: "eth1", Present: true},
			{Address: "198.18.0.102", Interface: "eth1", Label: "eth1:web", Present: true,
				Conflicts: []control.VIPConflict{{MAC: "02:00:00:00:00:99", Since: now.Add(-time.Minute)}}},
		},
	}, {
		Name: "novip", Interface: "eth0", VRID: 52, State: "backup", PrimaryAddress: "198.18.0.11", SourceAddress: "198.18.0.11",
	}}}
	var b bytes.Buffer
	printStatus(&b, s, now)
	out := b.String()
	for _, want := range []string{"198.18.0.100 on", "198.18.0.101 [eth1] on", "198.18.0.102 [eth1:web] on",
		"web: adverts from 198.18.0.21 (source_address; eth0's primary address is 198.18.0.11)",
		"web: VIP 198.18.0.102: CONFLICT: 02:00:00:00:00:99 answers for it too, since 2026-01-01T11:59:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "novip: adverts from") {
		t.Errorf("a note for an instance without source_address:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^novip +eth0 +52 +backup .* -$`).MatchString(out) {
		t.Errorf("the instance without VIPs is not one line ending in -:\n%s", out)
	}
}

func TestSince(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{1500 * time.Millisecond: "1.5s", 61 * time.Second: "1m01s", 25 * time.Hour: "25h00m", 72 * time.Hour: "3d"} {
		if got := since(now.Add(-d), now); got != want {
			t.Errorf("since(%v) = %q, want %q", d, got, want)
		}
	}
	if got := since(time.Time{}, now); got != "-" {
		t.Errorf("since(zero) = %q", got)
	}
}

func TestPrintStatusUpstreams(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	checked := now.Add(-2 * time.Second)
	s := control.Status{Reload: control.Reload{OK: true}, Instances: []control.Instance{{
		Name: "web", Interface: "eth0", VRID: 51, State: "master",
		Upstreams: []control.Upstream{
			{Address: "198.18.0.1", Default: true, State: "moved", Attempts: 1, LastCheck: &checked},
			{Address: "198.18.0.2", State: "not-moved", Attempts: 3, LastCheck: &checked, Error: "no echo reply"},
			{Default: true, State: "checking"},
		},
	}}}
	var b bytes.Buffer
	printStatus(&b, s, now)
	out := b.String()
	for _, want := range []string{
		"web: upstream moved: 198.18.0.1 (default gateway; 1 attempt, checked 2.0s ago)\n",
		"web: upstream not moved: 198.18.0.2 (3 attempts, checked 2.0s ago): no echo reply\n",
		"web: upstream checking: the default gateway (0 attempts)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
