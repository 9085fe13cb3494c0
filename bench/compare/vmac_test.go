package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
	"github.com/vipd/vipd/internal/convert"
	"github.com/vipd/vipd/internal/kaconf"
)

// offlineDaemon is a daemon whose configuration files can be written
// without a lab: the pair's hosts have names but no namespaces.
func offlineDaemon(t *testing.T, name string, vmac bool) *daemon {
	t.Helper()
	dir := t.TempDir()
	node := func(h string) *pair.Node {
		return &pair.Node{Host: &lab.Host{Name: h, NS: "x" + h}, Config: filepath.Join(dir, h+".yaml"), Log: filepath.Join(dir, h+".log")}
	}
	p := &pair.Pair{A: node("a"), B: node("b"), Dir: dir}
	return &daemon{name: name, p: p, dir: dir, vmac: vmac}
}

// vipdInstances parses the vipd configuration at path as vipd would.
func vipdInstances(t *testing.T, path string) []config.Instance {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		t.Fatalf("vipd refuses the benchmark's configuration: %v\n%s", err, data)
	}
	return cfg.Instances
}

// keepalivedInstances maps the keepalived.conf at path through vipd
// convert, which maps use_vmac NAME to virtual_mac with that name, and
// parses the result.
func keepalivedInstances(t *testing.T, path string) []config.Instance {
	t.Helper()
	tree, err := kaconf.ReadFile(path, kaconf.Options{ConfigID: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	res := convert.Convert(tree, convert.Options{LookPath: func(string) (string, bool) { return "", false }})
	if res.ExitCode() != convert.ExitOK {
		data, _ := os.ReadFile(path)
		t.Fatalf("vipd convert of the benchmark's keepalived.conf: exit %d, %+v\n%s", res.ExitCode(), res.Reports, data)
	}
	cfg, err := config.Parse("converted", append([]byte("metrics_listen: \"\"\n"), res.YAML...))
	if err != nil {
		t.Fatalf("converted keepalived.conf: %v\n%s", err, res.YAML)
	}
	return cfg.Instances
}

// In the virtual-MAC mode both daemons' configurations, the pair's one
// instance and the footprint's many, put every instance on a macvlan
// with the virtual MAC, named alike (vrrp4.<VRID>); without it none.
func TestVMACConfigs(t *testing.T) {
	for _, vmac := range []bool{true, false} {
		for _, name := range []string{"vipd", "keepalived"} {
			d := offlineDaemon(t, name, vmac)
			path := d.p.A.Config
			read := vipdInstances
			if name == "keepalived" {
				path = d.p.KeepalivedConf(d.p.A)
				read = keepalivedInstances
			}
			check := func(what string, want map[int]string) {
				t.Helper()
				ins := read(t, path)
				if len(ins) != len(want) {
					t.Fatalf("%s, vmac %v, %s: %d instances, want %d", name, vmac, what, len(ins), len(want))
				}
				for _, in := range ins {
					wantName, ok := want[int(in.VRID)]
					if !ok {
						t.Errorf("%s, vmac %v, %s: VRID %d not asked for", name, vmac, what, in.VRID)
						continue
					}
					if in.VirtualMAC != vmac || in.VirtualMACName != wantName {
						t.Errorf("%s, vmac %v, %s: VRID %d has virtual MAC %v on %q, want %v on %q",
							name, vmac, what, in.VRID, in.VirtualMAC, in.VirtualMACName, vmac, wantName)
					}
				}
			}
			name51, name1, name2 := "", "", ""
			if vmac {
				name51, name1, name2 = pair.VMACLink, vmacName(1), vmacName(2)
			}
			if err := d.configureOne(d.p.A, prioMaster, 100*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			check("one instance", map[int]string{51: name51})
			if err := d.configureMany(d.p.A, prioMaster, 100*time.Millisecond, 2); err != nil {
				t.Fatal(err)
			}
			check("two instances", map[int]string{1: name1, 2: name2})
		}
	}
}

func TestEntryCounts(t *testing.T) {
	owners := map[string]string{"02:00:00:00:00:0a": "a's eth0", "02:00:00:00:00:0b": "b's eth0"}
	vm := pair.VirtualMAC.String()
	ts := []trialResult{
		{macFailover: vm, macRepair: vm},
		{macFailover: "02:00:00:00:00:0b", macRepair: vm},
		{macFailover: vm, macRepair: "02:00:00:00:00:0a"},
		{macFailover: "02:00:00:00:00:0b", macRepair: ""},
		{macFailover: "02:00:00:00:00:0c", macRepair: vm},
	}
	on, others := entryCounts(ts, macFailoverOf, owners)
	if on != 2 || strings.Join(others, ", ") != "02:00:00:00:00:0c ×1, b's eth0 ×2" {
		t.Errorf("after the failover: %d on the virtual MAC, others %q", on, others)
	}
	on, others = entryCounts(ts, macRepairOf, owners)
	if on != 3 || strings.Join(others, ", ") != "a's eth0 ×1, no entry ×1" {
		t.Errorf("after the repair: %d on the virtual MAC, others %q", on, others)
	}
}

// vmacBench is a finished run of the vmac phase alone, with made-up
// trials: vipd's client always on the virtual MAC, keepalived's on b's
// eth0 after two link-cut failovers.
func vmacBench(out string) *bench {
	iv := 100 * time.Millisecond
	b := &bench{
		opt:   &options{out: out, window: 20 * time.Second, retries: 1, phases: map[string]bool{"vmac": true}, command: "go run ./bench/compare -phases vmac"},
		start: time.Date(2026, 11, 30, 13, 40, 0, 0, time.UTC),
	}
	for _, n := range []string{"vipd", "keepalived"} {
		b.daemons = append(b.daemons, &daemon{name: n})
	}
	res := &outageResults{trials: map[outageKey][]trialResult{}, parallel: map[time.Duration]bool{}}
	vm := pair.VirtualMAC.String()
	for si := range scenarios {
		for i := range 10 {
			gap := time.Duration(270+5*i) * time.Millisecond
			if si == 1 {
				gap = 10 * time.Millisecond
			}
			res.add(outageKey{"vipd", iv, si}, trialResult{gap: gap, macFailover: vm, macRepair: vm, announced: 300 * time.Millisecond})
			k := trialResult{gap: gap + 5*time.Millisecond, macFailover: vm, macRepair: vm}
			if si == 0 && i < 2 {
				k.macFailover = "02:00:00:00:00:0b"
			}
			res.add(outageKey{"keepalived", iv, si}, k)
		}
	}
	fp := func(d string, cpu time.Duration, hwm uint64) footprintResult {
		node := nodeFootprint{cpu: cpu, tasks: cpu, cores: cpu.Seconds() / 20, hwm: hwm, pss: hwm / 2, nprocs: 1, adverts: 200}
		return footprintResult{daemon: d, interval: iv, instances: 1, window: 20 * time.Second, master: node, backup: node}
	}
	b.vmac = &vmacResults{
		interval: iv, trials: 10, outage: res, took: 3 * time.Minute,
		footprint: []footprintResult{fp("vipd", 4*time.Millisecond, 15e6), fp("keepalived", 6*time.Millisecond, 13e6)},
		owners:    map[string]map[string]string{"keepalived": {"02:00:00:00:00:0b": "b's eth0"}, "vipd": {}},
	}
	return b
}

// The section has a row per scenario and daemon with the gap statistics
// and both counts of trials on the virtual MAC, and the footprint rows;
// a run of the vmac phase alone leaves the comparison's section as it was.
func TestVMACSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "REPORT.md")
	old := "# Report\n\n" + markBegin + "\nthe comparison, untouched\n" + markEnd + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	b := vmacBench(path)
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
	sec := got[strings.Index(got, vmacBegin):]
	if !strings.HasSuffix(sec, vmacEnd+"\n") {
		t.Errorf("section not closed by %s:\n%s", vmacEnd, sec)
	}
	for _, want := range []string{
		"| link cut on the master | vipd | 270.0 | 290.0 | 315.0 | 315.0 | 360.9 (Master_Down_Interval) | -70.9 | -45.9 | 300.00, 300.00 | — | 10/10 | 10/10 |  |",
		"| link cut on the master | keepalived | 275.0 | 295.0 | 320.0 | 320.0 | 360.9 (Master_Down_Interval) | -65.9 | -40.9 | — | — | 8/10 | 10/10 | after the failover: b's eth0 ×2 |",
		"| graceful stop of the master | vipd | 10.0 | 10.0 | 10.0 | 10.0 | 60.9 (Skew_Time) |",
		"| graceful stop of the master | keepalived | 15.0 | 15.0 | 15.0 | 15.0 | 60.9 (Skew_Time) | -45.9 | -45.9 | — | — | 10/10 | 10/10 |  |",
		"| 100ms | 1 | vipd | 0.000200 | 20.0 |",
		"| 100ms | 1 | keepalived | 0.000300 | 30.0 |",
		"| 100ms | 1 | 0.67 | 0.67 | 1.15 | 1.15 |",
		"This run: `go run ./bench/compare -phases vmac`",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
}

func TestPhases(t *testing.T) {
	ph, err := parsePhases("vmac")
	if err != nil || !ph["vmac"] || len(ph) != 1 {
		t.Errorf("parsePhases(vmac) = %v, %v", ph, err)
	}
	for _, p := range comparePhases {
		if p == "vmac" {
			t.Error("vmac writes the comparison's section")
		}
	}
	if err := checkInterval(100 * time.Millisecond); err != nil {
		t.Error(err)
	}
	if err := checkInterval(105 * time.Millisecond); err == nil {
		t.Error("105ms: no error")
	}
}
