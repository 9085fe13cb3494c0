package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// floorRow is a floor result whose master used perAdvert for each of n
// adverts.
func floorRow(iv time.Duration, perAdvert time.Duration, n float64) floorResult {
	fp := nodeFootprint{cpu: time.Duration(float64(perAdvert) * n), adverts: n, switches: uint64(2 * n), hwm: 1_500_000}
	fp.tasks = fp.cpu
	fp.cores = fp.cpu.Seconds() / 20
	backup := nodeFootprint{cpu: time.Duration(30 * float64(time.Microsecond) * n), adverts: n}
	backup.tasks = backup.cpu
	return floorResult{interval: iv, master: fp, backup: backup, received: uint64(n)}
}

// footprintRow is a footprint result of daemon with one instance at iv
// whose master used perAdvert for each of n adverts.
func footprintRow(daemon string, iv time.Duration, instances int, perAdvert time.Duration, n float64) footprintResult {
	return footprintResult{daemon: daemon, interval: iv, instances: instances,
		master: nodeFootprint{cpu: time.Duration(float64(perAdvert) * n), adverts: n}}
}

// tableRows returns the rows of the Markdown table under the header that
// starts with head, split into trimmed cells.
func tableRows(t *testing.T, text, head string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, head):
			in = true
		case in && strings.HasPrefix(line, "|---"):
		case in && strings.HasPrefix(line, "|"):
			var cells []string
			for c := range strings.SplitSeq(strings.Trim(line, "|"), "|") {
				cells = append(cells, strings.TrimSpace(c))
			}
			rows = append(rows, cells)
		case in:
			return rows
		}
	}
	if !in {
		t.Fatalf("no table starting %q in\n%s", head, text)
	}
	return rows
}

// The floor table sets each interval's floor beside the footprint's
// one-instance masters of the same interval, with floor ÷ keepalived,
// and "-" where the footprint has no such row (other intervals, other
// instance counts do not count).
func TestFloorTable(t *testing.T) {
	rows := []floorResult{
		floorRow(time.Second, 40*time.Microsecond, 20),
		floorRow(20*time.Millisecond, 25*time.Microsecond, 1000),
	}
	fp := []footprintResult{
		footprintRow("vipd", 20*time.Millisecond, 1, 120*time.Microsecond, 1000),
		footprintRow("keepalived", 20*time.Millisecond, 1, 50*time.Microsecond, 1000),
		footprintRow("keepalived", time.Second, 100, 10*time.Microsecond, 2000), // 100 instances: not the floor's
		footprintRow("vipd", 100*time.Millisecond, 1, 90*time.Microsecond, 200), // no floor row at 100ms
	}
	var sb strings.Builder
	floorTable(&sb, rows, fp)
	got := tableRows(t, sb.String(), "| adverts | floor CPU")
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2:\n%s", len(got), sb.String())
	}
	// adverts, floor cores, floor µs, switches, vipd µs, keepalived µs, ratio, RSS, backup µs, note
	want := [][]string{
		{"1s", "0.000040", "40.0", "2.00", "-", "-", "-", "1.5", "30.0", ""},
		{"20ms", "0.001250", "25.0", "2.00", "120.0", "50.0", "0.50", "1.5", "30.0", ""},
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("row %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

// The section names what the floor program does, how to reproduce it,
// and carries the table; a window that was not steady is noted in its
// row.
func TestFloorSection(t *testing.T) {
	r := floorRow(100*time.Millisecond, 30*time.Microsecond, 200)
	r.unsteady = "b is master at the end"
	b := &bench{opt: &options{window: 20 * time.Second, command: "go run ./bench/compare -phases floor"},
		start: time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC),
		floor: &floorResults{rows: []floorResult{r}, took: 75 * time.Second}}
	var sb strings.Builder
	b.floorSection(&sb)
	s := sb.String()
	for _, want := range []string{
		"### The Go floor of a one-instance master\n",
		"2025-01-02 03:04 UTC, the phase took 1m15s",
		"no state machine", "no netlink", "no conflict probes", "no other goroutines",
		"PACKET_QDISC_BYPASS", "timerfd",
		"`sudo make bench COMPAREFLAGS=\"-phases footprint,floor -sizes 1\"`",
		"This run: `go run ./bench/compare -phases floor`",
		"20s window",
	} {
		if !strings.Contains(strings.ToLower(s), strings.ToLower(want)) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	rows := tableRows(t, s, "| adverts | floor CPU")
	if len(rows) != 1 || rows[0][0] != "100ms" || rows[0][9] != "not steady: b is master at the end" {
		t.Errorf("rows %q", rows)
	}
}

func TestFloorSteady(t *testing.T) {
	for _, c := range []struct {
		name          string
		transitions   int
		state0, state string
		vips          int
		received      uint64
		adverts       float64
		want          string
	}{
		{"steady", 1, "backup", "backup", 0, 250, 250, ""},
		{"one advert cut off at each end of a short window", 1, "backup", "backup", 0, 4, 5, ""},
		{"took over and gave back", 3, "backup", "backup", 0, 250, 250, "2 transitions on b after its first to backup"},
		{"master at the start", 2, "master", "backup", 0, 250, 250, "1 transitions on b after its first to backup; b is master at the start"},
		{"master at the end", 2, "backup", "master", 1, 250, 250, "1 transitions on b after its first to backup; b is master at the end; b holds the VIP"},
		{"adverts lost", 1, "backup", "backup", 0, 100, 250, "b received 100 of 250 adverts"},
	} {
		if got := floorSteady(c.transitions, c.state0, c.state, c.vips, c.received, c.adverts); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// The floor phase is a default phase, run after the footprint's, whose
// figures it sits beside.
func TestFloorPhaseDefault(t *testing.T) {
	i, j := slices.Index(defaultPhases, "footprint"), slices.Index(defaultPhases, "floor")
	if i < 0 || j < 0 {
		t.Fatalf("default phases %v lack footprint or floor", defaultPhases)
	}
	if _, err := parsePhases("footprint,floor"); err != nil {
		t.Error(err)
	}
}

// The floor program's command line names a's source, VRID 1, the
// master's priority, the interval and the VIP.
func TestFloorArgs(t *testing.T) {
	got := floorArgs("/tmp/vipd-floor", "198.18.0.11", "198.18.0.100", 20*time.Millisecond)
	want := []string{"/tmp/vipd-floor", "-interface", "eth0", "-src", "198.18.0.11", "-vrid", "1", "-priority", "150", "-interval", "20ms", "-vip", "198.18.0.100"}
	if !slices.Equal(got, want) {
		t.Errorf("%q\nwant %q", got, want)
	}
}
