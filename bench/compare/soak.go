package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// hogEnv makes the benchmark's own binary a CPU hog: a busy loop that
// never returns, started and stopped by its PID.
const hogEnv = "VIPD_COMPARE_HOG"

// hogSink keeps the hog's loop from being optimised away.
var hogSink atomic.Uint64

func hog() {
	runtime.GOMAXPROCS(1)
	for i := uint64(0); ; i++ {
		hogSink.Store(i)
	}
}

// hogs are the busy processes of one soak.
type hogs struct {
	procs  []*hogProc
	pinned string // CPU list they are pinned to, "" if not pinned
}

// hogProc is one busy process; stop ends it once, from whichever
// goroutine comes first (the soak, or the clean-up after a signal).
type hogProc struct {
	cmd  *exec.Cmd
	once sync.Once
}

// stop kills the process by its PID and reaps it.
func (p *hogProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
}

// startHogs saturates every CPU but the first with one busy process each,
// pinned with taskset; without taskset (or with one CPU) it runs two
// unpinned busy processes at nice 0. It registers their end with cl.
func startHogs(cl *cleanups) (*hogs, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	h := &hogs{}
	taskset, terr := exec.LookPath("taskset")
	ncpu := runtime.NumCPU()
	var argvs [][]string
	if terr == nil && ncpu >= 2 {
		for cpu := 1; cpu < ncpu; cpu++ {
			argvs = append(argvs, []string{taskset, "-c", strconv.Itoa(cpu), self})
		}
		h.pinned = "1"
		if ncpu > 2 {
			h.pinned = fmt.Sprintf("1-%d", ncpu-1)
		}
	} else {
		argvs = [][]string{{self}, {self}}
	}
	for _, argv := range argvs {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), hogEnv+"=1")
		// taskset execs the hog in place, so the PID is the hog's, and
		// the hog dies with the benchmark whatever happens.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			h.stop()
			return nil, err
		}
		hp := &hogProc{cmd: cmd}
		h.procs = append(h.procs, hp)
		if !cl.add(hp.stop) {
			h.stop()
			return nil, errors.New("interrupted")
		}
	}
	return h, nil
}

// cpu is the CPU time the hogs have used so far.
func (h *hogs) cpu() time.Duration {
	var t time.Duration
	for _, p := range h.procs {
		if u, err := readUsage(p.cmd.Process.Pid); err == nil {
			t += u.cpu
		}
	}
	return t
}

func (h *hogs) stop() {
	for _, p := range h.procs {
		p.stop()
	}
}

type soakResult struct {
	daemon   string
	interval time.Duration
	length   time.Duration
	// transitions after the initial election, on A and B.
	transA, transB int
	// vipd's own counters over the soak, from its status (vipd only).
	status       bool
	statusTrans  [2]uint64
	advertsRecvB uint64
	advertsSentA uint64
	hogProcs     int
	hogPinned    string
	hogCores     float64
	masterAtEnd  string
}

// soakPhase runs each daemon's pair with one instance at the soak
// interval, waits for the election to settle, then saturates the other
// CPUs for the soak and counts the transitions that follow.
func (b *bench) soakPhase() error {
	for _, d := range b.daemons {
		r, err := b.soakOne(d)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		fmt.Fprintf(os.Stderr, "soak: %-10s %v at %v adverts under %d hog(s): %d transitions on a, %d on b\n",
			d.name, r.length, r.interval, r.hogProcs, r.transA, r.transB)
		b.soak = append(b.soak, r)
	}
	return nil
}

func (b *bench) soakOne(d *daemon) (soakResult, error) {
	iv := b.opt.soakInterval
	r := soakResult{daemon: d.name, interval: iv, length: b.opt.soak}
	d.stopAll()
	if err := d.configureOne(d.p.A, prioMaster, iv); err != nil {
		return r, err
	}
	if err := d.configureOne(d.p.B, prioBackup, iv); err != nil {
		return r, err
	}
	if err := d.startPair([]netip.Addr{d.vip()}, pair.MasterDownInterval(prioMaster, iv)+10*time.Second); err != nil {
		return r, err
	}
	sleep(pair.MasterDownInterval(prioBackup, iv) + 2*time.Second)
	a0, err := d.transitions(d.p.A)
	if err != nil {
		return r, err
	}
	b0, err := d.transitions(d.p.B)
	if err != nil {
		return r, err
	}
	var stA0, stB0 vipdCounters
	if d.vipd() {
		if stA0, err = d.vipdStatus(d.p.A); err != nil {
			return r, err
		}
		if stB0, err = d.vipdStatus(d.p.B); err != nil {
			return r, err
		}
	}
	h, err := startHogs(b.cl)
	if err != nil {
		return r, fmt.Errorf("start the CPU hog: %w", err)
	}
	r.hogProcs, r.hogPinned = len(h.procs), h.pinned
	t0 := time.Now()
	sleep(b.opt.soak)
	r.hogCores = h.cpu().Seconds() / time.Since(t0).Seconds()
	h.stop()

	a1, err := d.transitions(d.p.A)
	if err != nil {
		return r, err
	}
	b1, err := d.transitions(d.p.B)
	if err != nil {
		return r, err
	}
	r.transA, r.transB = a1-a0, b1-b0
	if d.vipd() {
		stA1, err := d.vipdStatus(d.p.A)
		if err != nil {
			return r, err
		}
		stB1, err := d.vipdStatus(d.p.B)
		if err != nil {
			return r, err
		}
		r.status = true
		r.statusTrans = [2]uint64{stA1.Transitions - stA0.Transitions, stB1.Transitions - stB0.Transitions}
		r.advertsSentA = stA1.AdvertsSent - stA0.AdvertsSent
		r.advertsRecvB = stB1.AdvertsReceived - stB0.AdvertsReceived
	}
	hs, err := d.p.Holders(d.vip())
	if err != nil {
		return r, err
	}
	switch len(hs) {
	case 0:
		r.masterAtEnd = "nobody"
	case 1:
		r.masterAtEnd = hs[0].Host.Name
	default:
		r.masterAtEnd = "both"
	}
	d.stopAll()
	return r, nil
}
