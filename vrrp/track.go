package vrrp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/config"
)

// TrackResult is one tracker's verdict, sent to the Node's loop.
type TrackResult struct {
	Instance string // instance name
	Kind     string // "script" | "file" | "process"
	Name     string // script name, file path, or process tracker name
	Failing  bool   // script: failing by rise/fall; process: down (after its delay); file: unused (false)
	Value    int    // file: the integer read (0 if missing/unreadable); process: matching processes; script: unused
	Err      string // last error text for logs/status ("" if none)
}

// Defaults for specs built without the config parser (which sets them).
const (
	defaultTrackInterval = 2 * time.Second
	defaultTrackTimeout  = time.Second
	defaultNotifyTimeout = 10 * time.Second
)

// runScriptTracker runs spec.Command every spec.Interval until ctx is done,
// and sends a TrackResult on out after the first run and whenever the
// tracker's state changes. The first run decides the initial state on its
// own, so that a node does not start as master only to learn a few
// intervals later that its service is down. After that, Fall failures in a
// row turn a healthy tracker failing and Rise successes in a row turn it
// healthy again.
//
// Runs are sequential: the next one starts only after the previous one has
// exited or been killed, so a slow check can never pile up copies of
// itself. A run that exceeds spec.Timeout is killed with its whole process
// group and counts as a failure. It returns when ctx is done, after killing
// and reaping any running child.
func runScriptTracker(ctx context.Context, instance string, spec config.TrackScript, out chan<- TrackResult, log *slog.Logger) {
	interval := spec.Interval
	if interval <= 0 {
		interval = defaultTrackInterval
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = defaultTrackTimeout
	}
	rise, fall := max(spec.Rise, 1), max(spec.Fall, 1)
	log = log.With("instance", instance, "script", spec.Name)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var (
		first   = true
		failing bool
		streak  int // runs in a row that disagree with the current state
		// A failing script is warned about once per kind of failure (its
		// error and the first line of its output), not at every run, and
		// with that line only: a check failing every second must not fill
		// the journal. The full output is at debug level.
		warned     string
		failedRuns int // in a row
	)
	for {
		run := runCommand(ctx, spec.Command, nil, timeout, spec.Run)
		if ctx.Err() != nil {
			// Killed because vipd is stopping: not the script's fault.
			return
		}
		ok := run.err == nil
		attrs := append(run.outputAttrs(), "duration", run.duration)
		switch {
		case ok && failedRuns > 0:
			log.Info("track script succeeded again", "failed_runs", failedRuns, "duration", run.duration)
			failedRuns, warned = 0, ""
		case ok:
			log.Debug("track script succeeded", attrs...)
		default:
			failedRuns++
			line := firstLine(run.output, maxLoggedOutput)
			if kind := run.err.Error() + "\n" + line; kind != warned {
				warned = kind
				warn := []any{"err", run.err}
				if line != "" {
					warn = append(warn, "output", line, "output_bytes", int64(len(run.output))+run.dropped)
				}
				log.Warn("track script failed", append(warn, "duration", run.duration)...)
			} else {
				log.Debug("track script failed again", append(attrs, "err", run.err, "failed_runs", failedRuns)...)
			}
		}

		changed := false
		switch {
		case first:
			first, failing, changed = false, !ok, true
		case ok != failing:
			streak = 0
		default:
			streak++
			if (failing && streak >= rise) || (!failing && streak >= fall) {
				failing, streak, changed = !failing, 0, true
			}
		}
		if changed {
			r := TrackResult{Instance: instance, Kind: "script", Name: spec.Name, Failing: failing}
			if !ok {
				r.Err = run.err.Error()
			}
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

// runFileTracker reads the integer in spec.Path every poll and sends a
// TrackResult at start and whenever what it read changes: the value, or the
// error that made it 0. A missing, empty or unparsable file counts as 0; its
// error is logged once when it appears, not at every poll.
func runFileTracker(ctx context.Context, instance string, spec config.TrackFile, poll time.Duration, out chan<- TrackResult, log *slog.Logger) {
	if poll <= 0 {
		poll = time.Second
	}
	log = log.With("instance", instance, "file", spec.Path)
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	var (
		last  TrackResult
		first = true
	)
	for {
		r := TrackResult{Instance: instance, Kind: "file", Name: spec.Path}
		v, err := readTrackFile(spec.Path)
		if err != nil {
			r.Err = err.Error()
		} else {
			r.Value = v
		}
		if first || r != last {
			switch {
			case r.Err != "" && r.Err != last.Err:
				log.Warn("tracked file unusable; counting it as 0", "err", r.Err)
			case r.Err == "" && last.Err != "":
				log.Info("tracked file usable again", "value", r.Value)
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
			last, first = r, false
		}

		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// maxTrackFile bounds what is read of a tracked file: it holds one integer.
const maxTrackFile = 4096

// readTrackFile reads the integer in a tracked file. Values are limited to
// 32 bits so that value × weight cannot overflow the priority arithmetic.
func readTrackFile(path string) (int, error) {
	// The file is meant to be a small regular file that an operator or a
	// health checker writes. Anything else is refused on what was opened,
	// not on an earlier stat: the path may be swapped in between, and a
	// FIFO would block open(2) until a writer came, a FIFO or device
	// read(2) forever. O_NONBLOCK makes the open itself return at once.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s: not a regular file (%s)", path, fileType(fi.Mode()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTrackFile+1))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxTrackFile {
		return 0, fmt.Errorf("%s: longer than %d bytes", path, maxTrackFile)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return 0, fmt.Errorf("%s: empty", path)
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		shown := s
		if len(shown) > 32 {
			shown = shown[:32] + "..."
		}
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s: %q is out of range", path, shown)
		}
		return 0, fmt.Errorf("%s: %q is not an integer", path, shown)
	}
	return int(v), nil
}

// fileType names a non-regular file's type for an error.
func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}

// maxOutput caps the output of one script or hook run kept for the log.
const maxOutput = 4096

// pipeGrace bounds how long a finished or killed command's output pipes are
// read: a child that escaped the process group (or a background child of a
// command that exited) may hold them open indefinitely.
const pipeGrace = 500 * time.Millisecond

// commandRun is the outcome of one run of a tracker script or notify hook.
type commandRun struct {
	output   string // stdout and stderr as they interleaved, trimmed, at most maxOutput bytes
	dropped  int64  // output bytes past maxOutput
	started  bool
	timedOut bool
	err      error // nil if it exited with status 0
	duration time.Duration
}

// maxLoggedOutput bounds the output that a failing tracker's warning
// carries.
const maxLoggedOutput = 200

// firstLine returns the first line of s, cut to at most max bytes (on a
// UTF-8 boundary); "..." marks that more was cut.
func firstLine(s string, max int) string {
	line, rest, _ := strings.Cut(s, "\n")
	line = strings.TrimRight(line, "\r")
	cut := rest != ""
	if len(line) > max {
		line, cut = strings.ToValidUTF8(line[:max], ""), true
	}
	if cut {
		line += "..."
	}
	return line
}

// outputAttrs returns the log fields for the captured output.
func (r commandRun) outputAttrs() []any {
	var attrs []any
	if r.output != "" {
		attrs = append(attrs, "output", r.output)
	}
	if r.dropped > 0 {
		attrs = append(attrs, "output_dropped_bytes", r.dropped)
	}
	return attrs
}

// runCommand runs argv (never through a shell) in a process group of its
// own, as cred (nil: as vipd), with no capabilities (startUnprivileged)
// and only childEnv(vars...) for environment, and waits for it. When the timeout passes or ctx is
// done, the whole group is killed, so that children of a hung script die
// with it.
func runCommand(ctx context.Context, argv []string, vars []string, timeout time.Duration, cred *config.Credential) commandRun {
	if len(argv) == 0 {
		return commandRun{err: errors.New("empty command")}
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var out cappedBuffer
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Env = childEnv(vars...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: credentialFor(cred)}
	cmd.Cancel = func() error {
		// The group's ID is the leader's PID, which cannot be reused while
		// the leader is unreaped, and Wait has not reaped it yet.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = pipeGrace

	start := time.Now()
	err := startUnprivileged(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	r := commandRun{
		output:   strings.TrimSpace(string(out.buf)),
		dropped:  out.dropped,
		started:  cmd.Process != nil,
		duration: time.Since(start).Round(time.Millisecond),
	}
	switch {
	case cmd.ProcessState != nil && cmd.ProcessState.Success():
		// Exit status 0 counts even if a leftover child kept the output
		// open past pipeGrace (ErrWaitDelay) or the deadline raced the exit.
	case !r.started:
		r.err = err
	case errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		r.timedOut = true
		r.err = fmt.Errorf("timed out after %s; killed", timeout)
	case err != nil:
		r.err = err
	default:
		r.err = fmt.Errorf("exited with %s", cmd.ProcessState)
	}
	return r
}

// cappedBuffer keeps the first maxOutput bytes written to it and counts the
// rest. It never fails a write: a chatty script must not die of SIGPIPE.
// exec serializes writes when Stdout and Stderr are the same pointer.
type cappedBuffer struct {
	buf     []byte
	dropped int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), maxOutput-len(b.buf))
	b.buf = append(b.buf, p[:n]...)
	b.dropped += int64(len(p) - n)
	return len(p), nil
}
