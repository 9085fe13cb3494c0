package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/e2e/pair"
)

// In the IPv6 mode both daemons' configurations, the pair's one instance
// and the footprint's many, are IPv6 instances with IPv6 VIPs (keepalived
// read through vipd convert, which follows keepalived's family rules);
// without it IPv4 ones.
func TestIPv6Configs(t *testing.T) {
	for _, ipv6 := range []bool{true, false} {
		for _, name := range []string{"vipd", "keepalived"} {
			d := offlineDaemon(t, name, false)
			d.ipv6 = ipv6
			path, read := d.p.A.Config, vipdInstances
			if name == "keepalived" {
				path, read = d.p.KeepalivedConf(d.p.A), keepalivedInstances
			}
			check := func(what string, want []netip.Addr) {
				t.Helper()
				ins := read(t, path)
				if len(ins) != len(want) {
					t.Fatalf("%s, ipv6 %v, %s: %d instances, want %d", name, ipv6, what, len(ins), len(want))
				}
				for i, in := range ins {
					if fam := in.Family(); fam != config.FamilyIPv4 && !ipv6 || fam != config.FamilyIPv6 && ipv6 {
						t.Errorf("%s, ipv6 %v, %s: instance %d runs over %v", name, ipv6, what, i, fam)
					}
					if len(in.VIPs) != 1 || in.VIPs[0].Address != netip.PrefixFrom(want[i], want[i].BitLen()) {
						t.Errorf("%s, ipv6 %v, %s: instance %d has VIPs %v, want %s alone", name, ipv6, what, i, in.VIPs, want[i])
					}
				}
			}
			if err := d.configureOne(d.p.A, prioMaster, 100*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			check("one instance", []netip.Addr{d.vip()})
			if err := d.configureMany(d.p.A, prioMaster, 100*time.Millisecond, 3); err != nil {
				t.Fatal(err)
			}
			check("three instances", d.pool()[:3])
		}
	}
}

func TestVIPPool6(t *testing.T) {
	pool, pool4 := vipPool6(), vipPool()
	if len(pool) != len(pool4) {
		t.Errorf("%d IPv6 VIPs, want as many as IPv4 ones (%d): -sizes is checked against those", len(pool), len(pool4))
	}
	seen := map[netip.Addr]bool{}
	for _, a := range pool {
		if !a.Is6() || !netip.MustParsePrefix("fd00:18::/64").Contains(a) || seen[a] {
			t.Fatalf("VIP %s: not a unique address in the lab's fd00:18::/64", a)
		}
		for _, h := range v6Hosts {
			if a == h.Addr() {
				t.Fatalf("VIP %s is a host's address", a)
			}
		}
		seen[a] = true
	}
	d := &daemon{ipv6: true}
	if d.vip() != vip6 || (&daemon{}).vip() != pair.VIP {
		t.Errorf("one-instance VIPs %s and %s, want %s and %s", d.vip(), (&daemon{}).vip(), vip6, pair.VIP)
	}
}

// The IPv6 section has a row per scenario and daemon with the gap
// statistics and the neighbour advertisement and takeover times, and the
// footprint rows; a run of the ipv6 phase alone leaves the other sections
// as they were.
func TestIPv6Section(t *testing.T) {
	path := filepath.Join(t.TempDir(), "REPORT.md")
	old := "# Report\n\n" + markBegin + "\nthe comparison, untouched\n" + markEnd + "\n\n" + vmacBegin + "\nvmac, untouched\n" + vmacEnd + "\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	iv := 100 * time.Millisecond
	b := vmacBench(path)
	b.opt.phases = map[string]bool{"ipv6": true}
	b.opt.command = "go run ./bench/compare -phases ipv6"
	b.vmac = nil
	res := &outageResults{trials: map[outageKey][]trialResult{}, parallel: map[time.Duration]bool{}}
	for si := range scenarios {
		for i := range 10 {
			gap := time.Duration(280+5*i) * time.Millisecond
			if si == 1 {
				gap = 10 * time.Millisecond
			}
			res.add(outageKey{"vipd", iv, si}, trialResult{gap: gap, announced: 361 * time.Millisecond, handover: 362 * time.Millisecond})
			res.add(outageKey{"keepalived", iv, si}, trialResult{gap: gap + 55*time.Millisecond*time.Duration(si)})
		}
	}
	b.ipv6 = &ipv6Results{interval: iv, trials: 10, outage: res, took: 2 * time.Minute}
	if err := b.writeReport(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	if !strings.HasPrefix(got, old) {
		t.Errorf("the report's existing part changed:\n%s", got)
	}
	sec := got[strings.Index(got, ipv6Begin):]
	if !strings.HasSuffix(sec, ipv6End+"\n") {
		t.Errorf("section not closed by %s:\n%s", ipv6End, sec)
	}
	for _, want := range []string{
		"| link cut on the master | vipd | 280.0 | 300.0 | 325.0 | 325.0 | 360.9 (Master_Down_Interval) | -60.9 | -35.9 | 361.00, 361.00 | 362.00, 362.00 |",
		"| graceful stop of the master | keepalived | 65.0 | 65.0 | 65.0 | 65.0 | 60.9 (Skew_Time) | +4.1 | +4.1 | — | — |",
		"over IPv6 (adverts from the node's link-local to ff02::12)",
		"This run: `go run ./bench/compare -phases ipv6`",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
}
