package vrrp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/config"
)

// Process tracking (track.processes, keepalived's vrrp_track_process):
// a scan of /proc counts, for every tracker, the processes that match it.
// A scan reads /proc/PID/comm of each process when a tracker matches by
// name, /proc/PID/exe when one matches by path, and /proc/PID/cmdline only
// for a process whose name or program matched and whose arguments must be
// compared (or whose program cannot be read). Only thread-group leaders are
// listed at the top of /proc, so threads are never counted.

// procMatcher is one tracker's rule, ready for the scan.
type procMatcher struct {
	comm      string // compared with /proc/PID/comm; "" when path is set
	path      string // compared with the program (exe, else argv[0])
	args      []byte // argv[1:], each followed by NUL, as in cmdline
	matchArgs bool
}

func newProcMatcher(spec config.TrackProcess) procMatcher {
	m := procMatcher{matchArgs: spec.MatchArgs}
	if bytes.IndexByte([]byte(spec.Process), '/') >= 0 {
		m.path = spec.Process
	} else {
		m.comm = spec.Process
	}
	for _, a := range spec.Args {
		m.args = append(append(m.args, a...), 0)
	}
	return m
}

// procScanner counts matching processes under a proc root ("/proc"; a
// directory of the same shape in tests). Its buffers are kept between
// scans, so that a scan allocates little. Not safe for concurrent use.
type procScanner struct {
	root     string
	ms       []procMatcher
	needComm bool // some matcher compares comm
	needExe  bool // some matcher compares the program

	dirents []byte
	names   []string
	path    []byte // "PID/file", NUL-terminated, for openat
	comm    []byte
	link    []byte
	cmdline []byte
	stat    []byte
}

// maxCmdline bounds what is read of a process's command line: argv[0] of
// at most PATH_MAX, and the longest argument list a tracker compares.
const maxCmdline = 4096

func newProcScanner(root string, specs []config.TrackProcess) *procScanner {
	s := &procScanner{root: root, dirents: make([]byte, 32<<10), comm: make([]byte, 64),
		link: make([]byte, 4096), stat: make([]byte, 512)}
	longest := 0
	for _, spec := range specs {
		m := newProcMatcher(spec)
		s.ms = append(s.ms, m)
		s.needComm = s.needComm || m.comm != ""
		s.needExe = s.needExe || m.path != ""
		longest = max(longest, len(m.args))
	}
	s.cmdline = make([]byte, maxCmdline+longest+1)
	return s
}

// scan counts, into counts (one per matcher), the processes that match
// each matcher now, and returns how many processes it looked at. It fails
// only when the proc root cannot be listed; a process that exits during
// the scan is skipped.
func (s *procScanner) scan(counts []int) (int, error) {
	clear(counts)
	fd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", s.root, err)
	}
	defer unix.Close(fd)
	procs := 0
	for {
		n, err := unix.Getdents(fd, s.dirents)
		if err != nil {
			return procs, fmt.Errorf("list %s: %w", s.root, err)
		}
		if n <= 0 {
			return procs, nil
		}
		s.names = s.names[:0]
		_, _, s.names = unix.ParseDirent(s.dirents[:n], -1, s.names)
		for _, name := range s.names {
			if name[0] < '1' || name[0] > '9' {
				continue // not a process
			}
			procs++
			s.process(fd, name, counts)
		}
	}
}

// process matches one process against every matcher.
func (s *procScanner) process(dirfd int, pid string, counts []int) {
	var comm, prog []byte
	commRead, progRead, cmdRead := false, false, false
	var cmd []byte
	zombie, zombieRead := false, false
	for i := range s.ms {
		m := &s.ms[i]
		if m.comm != "" {
			if !commRead {
				comm, commRead = s.readComm(dirfd, pid), true
			}
			if string(comm) != m.comm {
				continue
			}
			// A zombie keeps its name until it is reaped; it runs no
			// more. (By path it never matches: it has no program and
			// an empty command line.)
			if !zombieRead {
				zombie, zombieRead = s.isZombie(dirfd, pid), true
			}
			if zombie {
				continue
			}
		} else {
			if !progRead {
				prog, progRead = s.readProg(dirfd, pid), true
				if prog == nil {
					// Unreadable (another user's process, and vipd
					// without CAP_SYS_PTRACE): argv[0] stands in.
					if !cmdRead {
						cmd, cmdRead = s.readCmdline(dirfd, pid), true
					}
					prog, _, _ = bytes.Cut(cmd, []byte{0})
				}
			}
			if len(prog) == 0 || string(prog) != m.path {
				continue
			}
		}
		if m.matchArgs {
			if !cmdRead {
				cmd, cmdRead = s.readCmdline(dirfd, pid), true
			}
			if !argsEqual(cmd, m.args) {
				continue
			}
		}
		counts[i]++
	}
}

// argsEqual reports whether a command line (argv, each NUL-terminated)
// has exactly args (encoded the same way) after argv[0].
func argsEqual(cmdline, args []byte) bool {
	i := bytes.IndexByte(cmdline, 0)
	if i < 0 {
		// A process that rewrote its command line as one string
		// (setproctitle) has no arguments to show.
		return len(args) == 0
	}
	return bytes.Equal(cmdline[i+1:], args)
}

// read reads "pid/file" below dirfd into buf, as much as buf holds; nil
// when it cannot be opened (the process is gone, or the file is not
// readable). comm and stat come whole in one read; a command line may
// take several (it is read from the process's memory a page at a time),
// which whole asks for.
func (s *procScanner) read(dirfd int, pid, file string, buf []byte, whole bool) []byte {
	fd, err := unix.Openat(dirfd, s.name(pid, file), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if m <= 0 || err != nil {
			break
		}
		n += m
		if !whole {
			break
		}
	}
	return buf[:n]
}

// name returns "pid/file". The string shares s.path's memory and is valid
// until the next call.
func (s *procScanner) name(pid, file string) string {
	s.path = append(append(append(s.path[:0], pid...), '/'), file...)
	return unsafeString(s.path)
}

func (s *procScanner) readComm(dirfd int, pid string) []byte {
	return bytes.TrimSuffix(s.read(dirfd, pid, "comm", s.comm, false), []byte{'\n'})
}

func (s *procScanner) readCmdline(dirfd int, pid string) []byte {
	return s.read(dirfd, pid, "cmdline", s.cmdline, true)
}

// readProg returns the program the process runs, or nil when it cannot be
// read (a kernel thread, a zombie, or another user's process without the
// privilege). A program replaced on disk since it started (a package
// upgrade) is still the same program: the kernel's " (deleted)" mark is
// taken off.
func (s *procScanner) readProg(dirfd int, pid string) []byte {
	n, err := unix.Readlinkat(dirfd, s.name(pid, "exe"), s.link)
	if err != nil || n <= 0 || n == len(s.link) {
		return nil
	}
	return bytes.TrimSuffix(s.link[:n], []byte(" (deleted)"))
}

// isZombie reads the process's state from /proc/PID/stat: "pid (comm) S
// ...", where comm may itself hold ") ".
func (s *procScanner) isZombie(dirfd int, pid string) bool {
	b := s.read(dirfd, pid, "stat", s.stat, false)
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true // gone, or unreadable: do not count it
	}
	st := b[i+2]
	return st == 'Z' || st == 'X'
}

// procState is one process tracker's verdict: up while Quorum <= count
// and (QuorumMax == 0 or count <= QuorumMax). A change of that verdict is
// reported once it has lasted Delay, as seen by the scans (so the delay is
// rounded up to the next scan); the first scan is reported at once, so
// that a node does not start as master with its service down.
type procState struct {
	spec    config.TrackProcess
	started bool      // a verdict was reported
	up      bool      // the verdict reported
	count   int       // the count reported
	since   time.Time // when the scans started to disagree with up; zero while they agree
}

// unsafeString is b as a string without a copy, for a path handed to a
// system call at once; b must not change while the string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// quorate says whether count processes make the tracker up.
func quorate(spec config.TrackProcess, count int) bool {
	return count >= max(spec.Quorum, 1) && (spec.QuorumMax == 0 || count <= spec.QuorumMax)
}

// observe takes the count of one scan at now and reports whether what is
// to be reported changed: the verdict, or the count (which status shows as
// the last scan saw it, also while a change of verdict waits for Delay).
func (s *procState) observe(count int, now time.Time) bool {
	raw := quorate(s.spec, count)
	changed := !s.started || count != s.count
	s.count = count
	switch {
	case !s.started:
		s.started, s.up = true, raw
	case raw == s.up:
		s.since = time.Time{}
	case s.spec.Delay > 0 && s.since.IsZero():
		s.since = now
	case s.spec.Delay > 0 && now.Sub(s.since) < s.spec.Delay:
		// Not for long enough yet.
	default:
		s.up, s.since, changed = raw, time.Time{}, true
	}
	return changed
}

// runProcessTrackers scans the proc root for an instance's process
// trackers until ctx is done. Trackers with the same interval share one
// scan each interval. It sends a TrackResult for each tracker after the
// first scan and whenever its verdict or its count changes.
func runProcessTrackers(ctx context.Context, instance, root string, specs []config.TrackProcess, out chan<- TrackResult, log *slog.Logger) {
	var intervals []time.Duration
	for _, spec := range specs {
		if !slices.Contains(intervals, spec.Interval) {
			intervals = append(intervals, spec.Interval)
		}
	}
	log = log.With("instance", instance)
	done := make(chan struct{})
	for _, iv := range intervals {
		var group []config.TrackProcess
		for _, spec := range specs {
			if spec.Interval == iv {
				group = append(group, spec)
			}
		}
		go func() {
			defer func() { done <- struct{}{} }()
			runProcessGroup(ctx, instance, root, group, iv, out, log)
		}()
	}
	for range intervals {
		<-done
	}
}

// runProcessGroup is runProcessTrackers for trackers of one interval.
func runProcessGroup(ctx context.Context, instance, root string, specs []config.TrackProcess, interval time.Duration, out chan<- TrackResult, log *slog.Logger) {
	if interval <= 0 {
		interval = time.Second
	}
	w := newProcWatch(instance, root, specs)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var lastErr string
	for {
		rs, err := w.poll(time.Now())
		switch {
		case err != nil && err.Error() != lastErr:
			log.Warn("cannot read the process list; counting no processes", "err", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			log.Info("process list readable again")
			lastErr = ""
		}
		for _, r := range rs {
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// procWatch is the trackers of one scan: the scanner and each tracker's
// state.
type procWatch struct {
	instance string
	sc       *procScanner
	st       []procState
	counts   []int
}

func newProcWatch(instance, root string, specs []config.TrackProcess) *procWatch {
	w := &procWatch{instance: instance, sc: newProcScanner(root, specs), counts: make([]int, len(specs))}
	for _, spec := range specs {
		w.st = append(w.st, procState{spec: spec})
	}
	return w
}

// poll scans once at now and returns the results to send. When the scan
// fails every tracker counts 0 processes and carries the error.
func (w *procWatch) poll(now time.Time) ([]TrackResult, error) {
	_, err := w.sc.scan(w.counts)
	if err != nil {
		clear(w.counts)
	}
	var rs []TrackResult
	for i := range w.st {
		s := &w.st[i]
		if !s.observe(w.counts[i], now) {
			continue
		}
		r := TrackResult{Instance: w.instance, Kind: "process", Name: s.spec.Name, Failing: !s.up, Value: s.count}
		if err != nil {
			r.Err = err.Error()
		}
		rs = append(rs, r)
	}
	return rs, err
}
