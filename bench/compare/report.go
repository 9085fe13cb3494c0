package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/bench/internal/report"
	"github.com/vipd/vipd/e2e/pair"
)

// writeReport prints compare's section and writes it into the report
// between the markers, and draws the chart.
func (b *bench) writeReport() error {
	var names []string
	for _, d := range b.daemons {
		names = append(names, d.name)
	}
	pngRef := ""
	if b.opt.png != "" && b.outage != nil {
		if err := drawChart(b.opt.png, b.outage, names, b.opt.intervals, b.opt.trials); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		pngRef = b.opt.png
		if b.opt.out != "" {
			if rel, err := filepath.Rel(filepath.Dir(b.opt.out), b.opt.png); err == nil {
				pngRef = rel
			}
		}
		fmt.Fprintln(os.Stderr, "wrote", b.opt.png)
	}
	// Each section is written only by a run of its phases, so that
	// `-phases vmac` leaves the comparison's section as it was.
	type part struct {
		begin, end string
		write      func(io.Writer)
	}
	var parts []part
	if slices.ContainsFunc(comparePhases, func(ph string) bool { return b.opt.phases[ph] }) {
		parts = append(parts, part{markBegin, markEnd, func(w io.Writer) { b.section(w, pngRef) }})
	}
	if b.floor != nil {
		parts = append(parts, part{floorBegin, floorEnd, b.floorSection})
	}
	if b.vmac != nil {
		parts = append(parts, part{vmacBegin, vmacEnd, b.vmacSection})
	}
	if b.ipv6 != nil {
		parts = append(parts, part{ipv6Begin, ipv6End, b.ipv6Section})
	}
	for _, pt := range parts {
		var sb strings.Builder
		pt.write(&sb)
		fmt.Print(sb.String())
		if b.opt.out == "" {
			continue
		}
		if err := report.ReplaceSection(b.opt.out, pt.begin, pt.end, sb.String()); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", b.opt.out)
	}
	return nil
}

func (b *bench) section(w io.Writer, pngRef string) {
	took := time.Since(b.start).Round(time.Second)
	fmt.Fprintf(w, "## vipd beside keepalived\n\n")
	fmt.Fprintf(w, "Written by `bench/compare` (%s UTC, the run took %v); a new run replaces this section and keeps the rest of the file. "+
		"Both daemons run in the same run on the same namespace lab (a bridge and hosts a, b and a client, 198.18.0.0/24): "+
		"each pair is two nodes of the same daemon, VRRPv3, master a at priority %d, backup b at %d. "+
		"Times are in milliseconds, memory in MB (10^6 bytes), CPU in cores (CPU seconds per wall second).\n\n",
		b.start.UTC().Format("2006-01-02 15:04"), took, prioMaster, prioBackup)
	b.machineLine(w)
	fmt.Fprintf(w, "**Reproduce:** `sudo make bench` builds vipd and runs `go run ./bench/compare -vipd bin/vipd` with the defaults "+
		"(`-trials 20 -soak 5m -window 20s -intervals 1s,100ms,20ms -scale-intervals 1s,100ms,20ms -sizes 1,100,250`; about 33 minutes on 2 CPUs, 1.5 of them the floor phase and the last 4 the vmac and ipv6 phases, whose sections follow this one); "+
		"`sudo make bench COMPAREFLAGS=\"-trials 5 -soak 60s\"` passes flags, and `sudo make bench-quick` (`-quick`) measures only one instance's CPU at 20 ms, 100 ms and 1 s adverts, in about two and a half minutes. This run: `%s`.\n\n", b.opt.command)

	if b.outage != nil {
		b.outageSection(w, pngRef)
	}
	if len(b.footprint) > 0 {
		b.footprintSection(w)
	}
	if len(b.soak) > 0 {
		b.soakSection(w)
	}
	if b.gobench.command != "" {
		b.goBenchSection(w)
	}
}

// machineLine says what the run ran on.
func (b *bench) machineLine(w io.Writer) {
	m := b.machine
	fmt.Fprintf(w, "**Machine:** %d CPUs (%s), %s memory, Linux %s; %s; vipd `%s`; %s. Load average (1, 5, 15 min) at the start %s, at the end %s.\n\n",
		m.cpus, orUnknown(m.cpuModel), orUnknown(m.memory), orUnknown(m.kernel), m.goVersion, orUnknown(m.vipd), orUnknown(m.keepalived), m.loadStart, m.loadEnd)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (b *bench) outageSection(w io.Writer, pngRef string) {
	res := b.outage
	fmt.Fprintf(w, "### Failover outage\n\n")
	fmt.Fprintf(w, "The client pings the VIP every 5 ms; the outage is its longest gap between replies around the fault "+
		"(reply times are the kernel's receive timestamps; time the probe itself sent late, its requests further apart than their sequence numbers say, is not counted). After each trial a is repaired and takes the VIP back. "+
		"Each fault is placed at a chosen phase, the same for both daemons in trial k: a time after one of the master's adverts "+
		"(as the client hears them; the trials' phases are spread evenly over the interval, 2 ms or a tenth of it clear of each advert) "+
		"and a time after one of the client's requests (spread evenly over the 5 ms between requests, 0.5 ms clear of each, in another order, so that no request races the cut). "+
		"A random phase would add up to a whole interval of chance to each trial, and the medians of two daemons would differ by luck. "+
		"Protocol bound: for a link cut, the backup's Master_Down_Interval (3 × interval + Skew_Time), "+
		"so a cut just after an advert costs up to the bound and one just before the next advert about one interval less; "+
		"for a graceful stop (SIGTERM: the master sends a priority-0 advert), the backup's Skew_Time = (256 − %d) × interval / 256. "+
		"vipd's stopped master keeps answering for the VIP until the backup advertises as the new master (make before break), "+
		"so its clients do not wait out Skew_Time; keepalived's lets go as it sends the priority-0 advert. "+
		"%d trials per row; the phase took %v.", prioBackup, b.opt.trials, res.took.Round(time.Second))
	var par []string
	for _, iv := range b.opt.intervals {
		if res.parallel[iv] {
			par = append(par, iv.String())
		}
	}
	if len(par) > 0 {
		fmt.Fprintf(w, " At %s adverts the two daemons' trials ran at the same time, each pair in its own lab; "+
			"at the other intervals they took turns, trial by trial.", strings.Join(par, ", "))
	}
	fmt.Fprintf(w, "\n\n")
	fmt.Fprintf(w, "| adverts | fault | daemon | min | median | p95 | max | protocol bound | median − bound | p95 − bound |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, iv := range b.opt.intervals {
		for si, s := range scenarios {
			bound := s.bound(iv)
			for _, d := range b.daemons {
				cells, ok := gapCells(res.gaps(outageKey{d.name, iv, si}), bound, si)
				if !ok {
					continue
				}
				fmt.Fprintf(w, "| %v | %s | %s | %s |\n", iv, s.name, d.name, cells)
			}
		}
	}
	fmt.Fprintln(w)
	if pngRef != "" {
		fmt.Fprintf(w, "![Outage per trial, vipd and keepalived, by fault and advert interval](%s)\n\n", pngRef)
	}
	b.pairedSection(w)
}

// gapCells renders the columns min | median | p95 | max | protocol
// bound | median − bound | p95 − bound of scenario si's gaps (any
// order); false if there are none.
func gapCells(gaps []time.Duration, bound time.Duration, si int) (string, bool) {
	if len(gaps) == 0 {
		return "", false
	}
	g := slices.Clone(gaps)
	slices.Sort(g)
	med, p95 := report.Pct(g, 50), report.Pct(g, 95)
	return fmt.Sprintf("%s | %s | %s | %s | %s (%s) | %s | %s", num(g[0]), num(med), num(p95), num(g[len(g)-1]),
		num(bound), boundName(si), signed(med-bound), signed(p95-bound)), true
}

// pairedSection compares the daemons trial by trial (same phases) and
// shows when each new master told the clients to move and when it
// advertised, by what the client heard.
func (b *bench) pairedSection(w io.Writer) {
	if len(b.daemons) != 2 {
		return
	}
	res := b.outage
	x, y := b.daemons[0].name, b.daemons[1].name
	fmt.Fprintf(w, "Trial by trial (trial k of both daemons had its fault at the same phase): in how many trials %s's gap was shorter than %s's by more than 1 ms, "+
		"within 1 ms of it (the gaps fall on the 5 ms grid of the client's requests, so a difference under 1 ms is the replies' own jitter), or longer by more than 1 ms. "+
		"Gratuitous ARP is from the master's last advert (the priority-0 one after a graceful stop) to the new master's first gratuitous ARP for the VIP, as the client heard them: "+
		"when the clients were told to move. Takeover is from the same advert to the new master's first advert: "+
		"the backup's timer as it kept it, plus what the daemon does before its first advert "+
		"(vipd adds the VIP and announces before it advertises, keepalived advertises first and announces after). "+
		"Phase error is how far the fault fell from its aimed phase after the master's advert (median of the absolute differences).\n\n", x, y)
	fmt.Fprintf(w, "| adverts | fault | %s shorter | within 1 ms | %s longer | gratuitous ARP %s (median, max) | gratuitous ARP %s (median, max) | takeover %s (median, max) | takeover %s (median, max) | protocol timer | phase error %s / %s |\n", x, x, x, y, x, y, x, y)
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, iv := range b.opt.intervals {
		for si, s := range scenarios {
			tx, ty := res.list(outageKey{x, iv, si}), res.list(outageKey{y, iv, si})
			n := min(len(tx), len(ty))
			if n == 0 {
				continue
			}
			var shorter, same, longer int
			for i := range n {
				switch d := tx[i].gap - ty[i].gap; {
				case d < -time.Millisecond:
					shorter++
				case d > time.Millisecond:
					longer++
				default:
					same++
				}
			}
			timer := pair.SkewTime(prioBackup, iv)
			if si == 0 {
				timer = pair.MasterDownInterval(prioBackup, iv)
			}
			fmt.Fprintf(w, "| %v | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s / %s |\n", iv, s.short, shorter, same, longer,
				medMax(tx, announcedOf), medMax(ty, announcedOf), medMax(tx, handoverOf), medMax(ty, handoverOf), num(timer), phaseErr(tx), phaseErr(ty))
		}
	}
	fmt.Fprintln(w)
}

func handoverOf(t trialResult) time.Duration  { return t.handover }
func announcedOf(t trialResult) time.Duration { return t.announced }

// medMax gives the median and the maximum of what of the trials measured
// (zero: not measured).
func medMax(ts []trialResult, what func(trialResult) time.Duration) string {
	var d []time.Duration
	for _, t := range ts {
		if v := what(t); v > 0 {
			d = append(d, v)
		}
	}
	if len(d) == 0 {
		return "—"
	}
	slices.Sort(d)
	return fmt.Sprintf("%.2f, %.2f", msf(report.Pct(d, 50)), msf(d[len(d)-1]))
}

func phaseErr(ts []trialResult) string {
	var d []time.Duration
	for _, t := range ts {
		e := t.advertAge - t.phase.Offset
		d = append(d, max(e, -e))
	}
	if len(d) == 0 {
		return "—"
	}
	slices.Sort(d)
	return fmt.Sprintf("%.2f ms", msf(report.Pct(d, 50)))
}

func (b *bench) footprintSection(w io.Writer) {
	fmt.Fprintf(w, "### Steady-state CPU and memory\n\n")
	fmt.Fprintf(w, "VRIDs 1..N, one /32 VIP each (198.18.0.100 up, then 198.18.0.1 up, skipping the hosts' addresses). "+
		"255 instances were asked for; 250 is the most that fits in the lab's /24 with a unique VIP per instance "+
		"(vipd refuses a VIP in two instances), so 250 is the top size. "+
		"Each configuration starts fresh, waits until a holds every VIP, settles for the backup's Master_Down_Interval + 2 s "+
		"(past the gratuitous ARP repeat, which both daemons send once a second after the election), "+
		"then measures over a %v window. %s"+
		"CPU is the scheduler's time on the CPU in nanoseconds, summed over every thread of the daemon's processes: "+
		"each process's CPU-time clock (clock_gettime on its clock_getcpuclockid clock), which also counts threads that exited during the window; "+
		"the sum over /proc/PID/task/*/schedstat is read beside it as a check (the note says when they differ by more than 1%% or a thread exited). "+
		"Per advert divides by the adverts of the window, instances × window ÷ interval: those the master sent, those the backup received. "+
		"Context switches are the voluntary and involuntary ones of all the daemon's threads over the window, from /proc/PID/task/*/status. "+
		"Peak RSS is VmHWM from /proc/PID/status at the end of the window; PSS (from smaps_rollup, pages shared between processes split among them) is the fairer sum for keepalived, "+
		"whose parent and VRRP child share pages. keepalived's figures add up its parent and VRRP child (the PIDs it was started with and its pid file); "+
		"\"VRRP\" is the child alone. "+
		"A window in which a node changed state or a VIP was out of place is not steady: it is measured again (%d more time(s) at most, `-retries`), "+
		"and the note says what was discarded.\n\n", b.opt.window, b.footprintMethod(), b.opt.retries)
	footprintTable(w, b.footprint)
}

// footprintTable writes the footprint rows of rs, and vipd ÷ keepalived
// where both were measured.
func footprintTable(w io.Writer, rs []footprintResult) {
	fmt.Fprintf(w, "| adverts | instances | daemon | master CPU (cores) | master µs/advert | master switches/advert | backup CPU (cores) | backup µs/advert | backup switches/advert | master peak RSS | backup peak RSS | master PSS | backup PSS | note |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		rss := func(fp nodeFootprint) string {
			if fp.nprocs > 1 {
				return fmt.Sprintf("%.1f (VRRP %.1f)", mb(fp.hwm), mb(fp.hwmVRRP))
			}
			return fmt.Sprintf("%.1f", mb(fp.hwm))
		}
		var notes []string
		if r.unsteady != "" {
			notes = append(notes, "not steady: "+r.unsteady)
		}
		for i, e := range r.earlier {
			notes = append(notes, fmt.Sprintf("attempt %d discarded: %s", i+1, e))
		}
		for _, x := range []struct {
			node string
			fp   nodeFootprint
		}{{"master", r.master}, {"backup", r.backup}} {
			if c := x.fp.crossCheck(); c != "" {
				notes = append(notes, x.node+": "+c)
			}
		}
		fmt.Fprintf(w, "| %v | %d | %s | %s | %.1f | %.2f | %s | %.1f | %.2f | %s | %s | %.1f | %.1f | %s |\n",
			r.interval, r.instances, r.daemon,
			coresText(r.master.cores), us(r.master.perAdvert()), r.master.switchesPerAdvert(),
			coresText(r.backup.cores), us(r.backup.perAdvert()), r.backup.switchesPerAdvert(),
			rss(r.master), rss(r.backup), mb(r.master.pss), mb(r.backup.pss), strings.Join(notes, "; "))
	}
	fmt.Fprintln(w)
	// vipd against keepalived where both ran.
	var lines []string
	for _, r := range rs {
		if r.daemon != "vipd" {
			continue
		}
		for _, k := range rs {
			if k.daemon == "keepalived" && k.interval == r.interval && k.instances == r.instances &&
				k.master.cores > 0 && k.backup.cores > 0 && k.master.hwm > 0 && k.backup.hwm > 0 &&
				k.master.pss > 0 && k.backup.pss > 0 {
				note := ""
				if r.unsteady != "" || k.unsteady != "" {
					note = "a window was not steady"
				}
				lines = append(lines, fmt.Sprintf("| %v | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s |", r.interval, r.instances,
					r.master.cores/k.master.cores, r.backup.cores/k.backup.cores,
					float64(r.master.hwm)/float64(k.master.hwm), float64(r.backup.hwm)/float64(k.backup.hwm),
					float64(r.master.pss)/float64(k.master.pss), float64(r.backup.pss)/float64(k.backup.pss), note))
			}
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "vipd ÷ keepalived (below 1: vipd uses less):\n\n")
		fmt.Fprintf(w, "| adverts | instances | master CPU | backup CPU | master peak RSS | backup peak RSS | master PSS | backup PSS | note |\n|---|---|---|---|---|---|---|---|---|\n")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
		fmt.Fprintln(w)
	}
}

// footprintMethod says how the daemons' footprints were taken.
func (b *bench) footprintMethod() string {
	s := "The daemons took turns, configuration by configuration. "
	if b.opt.together {
		s = "Both daemons' pairs ran at the same time, each on its own lab (`-together`), so that both saw the same load on the machine. "
	}
	if b.opt.rounds > 1 {
		s += fmt.Sprintf("Each configuration was measured %d times (`-rounds`): the figures are the medians, peak RSS the largest. ", b.opt.rounds)
	}
	return s
}

func (b *bench) soakSection(w io.Writer) {
	r0 := b.soak[0]
	hog := fmt.Sprintf("%d busy process(es)", r0.hogProcs)
	if r0.hogPinned != "" {
		hog += " pinned with taskset to CPU " + r0.hogPinned
	} else {
		hog += ", not pinned"
	}
	fmt.Fprintf(w, "### Spurious transitions under a CPU hog\n\n")
	fmt.Fprintf(w, "One instance, adverts every %v, %v per daemon, one daemon after the other. "+
		"After the election has settled (the backup's Master_Down_Interval + 2 s), %s saturate the other core(s); "+
		"every transition after that is spurious. "+
		"Counted from the logs: vipd's `msg=transition` lines, keepalived's \"Entering MASTER/BACKUP/FAULT STATE\" lines; "+
		"for vipd also from `vipd status --json` (its transition counters, and the adverts the master sent and the backup accepted).\n\n",
		r0.interval, r0.length, hog)
	fmt.Fprintf(w, "| daemon | adverts | soak | transitions on the master (a) | on the backup (b) | VIP on at the end | hog load | vipd status: transitions a/b, adverts sent by a / accepted by b |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, r := range b.soak {
		st := "—"
		if r.status {
			st = fmt.Sprintf("%d / %d, %d / %d", r.statusTrans[0], r.statusTrans[1], r.advertsSentA, r.advertsRecvB)
		}
		fmt.Fprintf(w, "| %s | %v | %v | %d | %d | %s | %.2f cores | %s |\n",
			r.daemon, r.interval, r.length, r.transA, r.transB, r.masterAtEnd, r.hogCores, st)
	}
	fmt.Fprintln(w)
}

func (b *bench) goBenchSection(w io.Writer) {
	g := b.gobench
	fmt.Fprintf(w, "### Per-advert hot path and takeover (Go benchmarks)\n\n")
	fmt.Fprintf(w, "`%s`: BenchmarkHotPathReceive is one advert at a backup (Unmarshal with the checksum, the instance's checks, "+
		"the state machine's step); BenchmarkHotPathSend is a master's advert timer (the machine's timer step and marshalling the advert); "+
		"sockets are not included in those two. The takeover's kernel work, on a veth in a fresh namespace: BenchmarkAdd/manager is vipd "+
		"adding a VIP marked with its address protocol and removing it again after checking the mark (a dump of the interface's addresses), "+
		"BenchmarkAdd/netlink-library a plain add and remove through vishvananda/netlink's AddrReplace and AddrDel for comparison; BenchmarkAnnounce is one VIP's gratuitous ARP request and reply written to the "+
		"packet socket, with the kernel's delivery to the peer end.\n\n", g.command)
	if g.err != nil {
		fmt.Fprintf(w, "The benchmarks did not run: %s\n\n", strings.ReplaceAll(g.err.Error(), "\n", " "))
		return
	}
	fmt.Fprintf(w, "```\n")
	if g.cpu != "" {
		fmt.Fprintf(w, "cpu: %s\n", g.cpu)
	}
	for _, l := range g.lines {
		fmt.Fprintln(w, strings.Join(strings.Fields(l), " "))
	}
	fmt.Fprintf(w, "```\n\n")
}

// num is a duration in milliseconds with one decimal, without the unit.
func num(d time.Duration) string { return fmt.Sprintf("%.1f", msf(d)) }

// signed is a difference in milliseconds with its sign.
func signed(d time.Duration) string { return fmt.Sprintf("%+.1f", msf(d)) }

// modeOutageTable writes a mode phase's outage table (vmac, ipv6): a row
// per scenario and daemon at interval iv with the gap statistics, the
// announcement and takeover times (named announce in the header), and
// the cells more adds under the headers extra.
func (b *bench) modeOutageTable(w io.Writer, res *outageResults, iv time.Duration, announce string, extra []string, more func(d *daemon, ts []trialResult) []string) {
	heads := append([]string{"fault", "daemon", "min", "median", "p95", "max", "protocol bound", "median − bound", "p95 − bound", announce, "takeover"}, extra...)
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(heads, " | "), strings.Repeat("---|", len(heads)))
	for si, s := range scenarios {
		for _, d := range b.daemons {
			k := outageKey{d.name, iv, si}
			cells, ok := gapCells(res.gaps(k), s.bound(iv), si)
			if !ok {
				continue
			}
			ts := res.list(k)
			row := append([]string{s.name, d.name, cells, medMax(ts, announcedOf), medMax(ts, handoverOf)}, more(d, ts)...)
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	}
	fmt.Fprintln(w)
}
