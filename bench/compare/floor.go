package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// The markers of the floor phase's section in the report.
const (
	floorBegin = "<!-- floor:begin -->"
	floorEnd   = "<!-- floor:end -->"
)

// floorResult is one interval of the floor phase: bench/floor's program
// as the master of one instance on a, and vipd as its backup on b.
type floorResult struct {
	interval time.Duration
	master   nodeFootprint // the floor program
	backup   nodeFootprint // vipd on b, following it
	// received is how many adverts b's vipd counted over the window.
	received uint64
	unsteady string
}

// floorResults is what the floor phase measured.
type floorResults struct {
	rows []floorResult
	took time.Duration
}

// floorPhase builds bench/floor and, at each -intervals interval, runs it
// on vipd's lab as the master of one instance (VRID 1, the footprint's
// first VIP) with vipd on b as its backup, and measures both over
// -window as the footprint phase measures the daemons.
func (b *bench) floorPhase() (*floorResults, error) {
	start := time.Now()
	var d *daemon
	for _, x := range b.daemons {
		if x.vipd() {
			d = x
		}
	}
	if d == nil {
		return nil, fmt.Errorf("needs vipd's lab: add vipd to -daemons")
	}
	bin, err := buildFloor(b.dir)
	if err != nil {
		return nil, err
	}
	res := &floorResults{}
	for _, iv := range b.opt.intervals {
		r, err := b.measureFloor(d, bin, iv)
		if err != nil {
			return nil, fmt.Errorf("at %v: %w", iv, err)
		}
		fmt.Fprintf(os.Stderr, "%s floor: %-5v floor master %s cores %.1f µs %.2f sw /advert, vipd backup %s cores %.1f µs %.2f sw /advert, %d of %.0f adverts received%s\n",
			time.Now().Format("15:04:05"), iv,
			coresText(r.master.cores), us(r.master.perAdvert()), r.master.switchesPerAdvert(),
			coresText(r.backup.cores), us(r.backup.perAdvert()), r.backup.switchesPerAdvert(),
			r.received, r.backup.adverts, unsteadyNote(r.unsteady))
		res.rows = append(res.rows, r)
	}
	res.took = time.Since(start)
	return res, nil
}

// buildFloor builds bench/floor into dir/vipd-floor, static as the
// Makefile builds vipd, from the module root of the working directory.
func buildFloor(dir string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "/" {
		return "", fmt.Errorf("build bench/floor: run from vipd's module (go env GOMOD says %q)", strings.TrimSpace(string(gomod)))
	}
	out := filepath.Join(dir, "vipd-floor")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./bench/floor")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s ./bench/floor in %s: %w: %s", out, root, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// floorArgs is the floor program's command line as a's master of the
// footprint's one instance at iv.
func floorArgs(bin string, src, vip string, iv time.Duration) []string {
	return []string{bin, "-interface", "eth0", "-src", src, "-vrid", "1",
		"-priority", strconv.Itoa(prioMaster), "-interval", iv.String(), "-vip", vip}
}

// measureFloor runs vipd as b's backup of one instance and the floor
// program as a's master, lets b settle, and measures both over -window.
func (b *bench) measureFloor(d *daemon, bin string, iv time.Duration) (r floorResult, err error) {
	r.interval = iv
	d.stopAll()
	if err := d.configureMany(d.p.B, prioBackup, iv, 1); err != nil {
		return r, err
	}
	B := d.p.B
	before, err := d.transitions(B)
	if err != nil && !os.IsNotExist(err) {
		return r, err
	}
	if err := d.start(B); err != nil {
		return r, fmt.Errorf("vipd on %s: %w", B.Host.Name, err)
	}
	logPath := filepath.Join(d.dir, "floor.log")
	floor, err := d.p.A.Host.Start(logPath, floorArgs(bin, d.p.A.Host.Addr.String(), d.vip().String(), iv)...)
	if err != nil {
		d.stopAll()
		if floor != nil {
			floor.Kill()
		}
		return r, fmt.Errorf("the floor program on %s: %w", d.p.A.Host.Name, err)
	}
	// b first, while it is still a backup following the floor.
	defer func() {
		d.stopAll()
		if serr := stopFloor(floor); serr != nil && err == nil {
			err = fmt.Errorf("%w (log %s)", serr, logPath)
		}
	}()
	// Settle: b must take the floor's adverts, never a's absence, past
	// its Master_Down_Interval.
	sleep(pair.MasterDownInterval(prioBackup, iv) + 2*time.Second)
	if floor.Exited() {
		return r, fmt.Errorf("the floor program exited (log %s)", logPath)
	}
	st0, err := d.vipdOne(B)
	if err != nil {
		return r, err
	}
	pids := [2][]int{{floor.PID}, {B.Proc.PID}}
	var usage0 [2][]procUsage
	t0 := time.Now()
	for i := range pids {
		if usage0[i], err = readUsages(pids[i]); err != nil {
			return r, err
		}
	}
	sleep(b.opt.window)
	wall := time.Since(t0)
	fps := []*nodeFootprint{&r.master, &r.backup}
	for i := range pids {
		u, err := usageSince(pids[i], usage0[i])
		if err != nil {
			return r, err
		}
		fp := fps[i]
		fp.cpu, fp.tasks, fp.exited, fp.switches = u.cpu, u.tasks, u.exited, u.switches
		fp.cores = fp.cpu.Seconds() / wall.Seconds()
		fp.adverts = wall.Seconds() / iv.Seconds()
		fp.nprocs = 1
		st, err := readStatus(pids[i][0])
		if err != nil {
			return r, err
		}
		fp.hwm = st["VmHWM"]
		fp.hwmVRRP = fp.hwm
	}
	st1, err := d.vipdOne(B)
	if err != nil {
		return r, err
	}
	after, err := d.transitions(B)
	if err != nil {
		return r, err
	}
	onB, err := vipsOn(B, []netip.Addr{d.vip()})
	if err != nil {
		return r, err
	}
	r.received = st1.received - st0.received
	r.unsteady = floorSteady(after-before, st0.state, st1.state, onB, r.received, r.backup.adverts)
	return r, nil
}

// floorSteady says what was wrong with a floor window, "" if nothing:
// vipd on b must have made no transition since it started but its first
// (initialize to backup; transitions counts that one), be backup at the
// end, hold no VIP, and have counted the window's adverts (at least 90%
// of them less one: the window's ends cut an interval). state0 and state
// are its state at the window's start and end.
func floorSteady(transitions int, state0, state string, vipsOnB int, received uint64, adverts float64) string {
	var notes []string
	if transitions > 1 {
		notes = append(notes, fmt.Sprintf("%d transitions on b after its first to backup", transitions-1))
	}
	if state0 != "backup" {
		notes = append(notes, "b is "+state0+" at the start")
	}
	if state != "backup" {
		notes = append(notes, "b is "+state+" at the end")
	}
	if vipsOnB > 0 {
		notes = append(notes, "b holds the VIP")
	}
	if float64(received) < 0.9*adverts-1 {
		notes = append(notes, fmt.Sprintf("b received %d of %.0f adverts", received, adverts))
	}
	return strings.Join(notes, "; ")
}

// stopFloor sends SIGTERM to the floor program and checks that it exits
// 0 within 5 s (it looks for the signal once an interval); else kills it.
func stopFloor(p *lab.Proc) error {
	if p.Exited() {
		code, _ := p.Wait(0)
		return fmt.Errorf("the floor program had exited (%d)", code)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	code, err := p.Wait(5 * time.Second)
	if err != nil {
		return errors.Join(err, p.Kill())
	}
	if code != 0 {
		return fmt.Errorf("the floor program exited %d after SIGTERM", code)
	}
	return nil
}

// vipdState is the one instance's state and received adverts from
// `vipd status --json`.
type vipdState struct {
	state    string
	received uint64
}

// vipdOne asks vipd on n for its one instance's state and counter.
func (d *daemon) vipdOne(n *pair.Node) (vipdState, error) {
	out, err := exec.Command(d.bin, "status", "--json", "--socket", d.socket(n)).Output()
	if err != nil {
		return vipdState{}, fmt.Errorf("vipd status on %s: %w", n.Host.Name, err)
	}
	var st struct {
		Instances []struct {
			State    string `json:"state"`
			Counters struct {
				AdvertsReceived uint64 `json:"adverts_received"`
			} `json:"counters"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return vipdState{}, fmt.Errorf("vipd status on %s: %w", n.Host.Name, err)
	}
	if len(st.Instances) != 1 {
		return vipdState{}, fmt.Errorf("vipd status on %s: %d instances, want 1", n.Host.Name, len(st.Instances))
	}
	return vipdState{state: st.Instances[0].State, received: st.Instances[0].Counters.AdvertsReceived}, nil
}

// footprintMaster is the master's µs/advert of daemon's footprint row with
// one instance at iv, "-" without one.
func footprintMaster(rs []footprintResult, daemon string, iv time.Duration) (time.Duration, bool) {
	for _, r := range rs {
		if r.daemon == daemon && r.instances == 1 && r.interval == iv && r.master.adverts > 0 {
			return r.master.perAdvert(), true
		}
	}
	return 0, false
}

// floorSection writes the floor phase's section of the report.
func (b *bench) floorSection(w io.Writer) {
	r := b.floor
	fmt.Fprintf(w, "### The Go floor of a one-instance master\n\n")
	fmt.Fprintf(w, "Written by `bench/compare`'s floor phase (%s UTC, the phase took %v); a new run of the phase replaces this section and keeps the rest of the file. "+
		"`bench/floor` is the least a Go program does as the master of one VRRPv3 instance, with the same timer, socket and frame as vipd's master and nothing else: "+
		"GOMAXPROCS 1; a timerfd waited on through the runtime's poller with vipd's read callback (wait once, never read the expiry count) and re-armed with a raw timerfd_settime for the next absolute deadline; "+
		"on each expiry one prebuilt Ethernet frame (the VRRPv3 advert to 224.0.0.18, TTL 255, DSCP CS6, IPv4 ID and header checksum redone per frame) sent with a raw sendto on a packet socket bound to eth0 with PACKET_QDISC_BYPASS. "+
		"No state machine, no receive socket, no netlink, no conflict probes, no other goroutines (but os/signal's, asleep until SIGTERM). "+
		"It runs on a as the master of VRID 1 (priority %d, VIP %s) with vipd on b as its backup (priority %d), which must stay backup and count the adverts; "+
		"after b's Master_Down_Interval + 2 s both are measured over a %v window, as the footprint rows above measure the daemons (the process's CPU-time clock; per advert sent or received). "+
		"vipd and keepalived master are this run's footprint rows with 1 instance at that interval (\"-\" when the footprint phase did not run or had no such row).\n\n",
		b.start.UTC().Format("2006-01-02 15:04"), r.took.Round(time.Second), prioMaster, vipPool()[0], prioBackup, b.opt.window)
	fmt.Fprintf(w, "**Reproduce:** `sudo make bench COMPAREFLAGS=\"-phases footprint,floor -sizes 1\"`. This run: `%s`.\n\n", b.opt.command)
	floorTable(w, r.rows, b.footprint)
}

// floorTable writes the floor rows beside the footprint's one-instance
// masters of fp.
func floorTable(w io.Writer, rows []floorResult, fp []footprintResult) {
	fmt.Fprintf(w, "| adverts | floor CPU (cores) | floor µs/advert | floor switches/advert | vipd master µs/advert | keepalived master µs/advert | floor ÷ keepalived | floor peak RSS (MB) | vipd backup (following the floor) µs/advert | note |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		cell := func(daemon string) string {
			if d, ok := footprintMaster(fp, daemon, r.interval); ok {
				return fmt.Sprintf("%.1f", us(d))
			}
			return "-"
		}
		ratio := "-"
		if k, ok := footprintMaster(fp, "keepalived", r.interval); ok && k > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.master.perAdvert())/float64(k))
		}
		var notes []string
		if r.unsteady != "" {
			notes = append(notes, "not steady: "+r.unsteady)
		}
		if c := r.master.crossCheck(); c != "" {
			notes = append(notes, "floor: "+c)
		}
		if c := r.backup.crossCheck(); c != "" {
			notes = append(notes, "backup: "+c)
		}
		fmt.Fprintf(w, "| %v | %s | %.1f | %.2f | %s | %s | %s | %.1f | %.1f | %s |\n",
			r.interval, coresText(r.master.cores), us(r.master.perAdvert()), r.master.switchesPerAdvert(),
			cell("vipd"), cell("keepalived"), ratio, mb(r.master.hwm), us(r.backup.perAdvert()), strings.Join(notes, "; "))
	}
	fmt.Fprintln(w)
}
