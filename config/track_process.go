package config

import (
	"path"
	"strings"
	"time"
)

// TrackProcess counts the running processes that match Process (and Args):
// the tracker is up while Quorum <= count and, when QuorumMax is not 0,
// count <= QuorumMax. While it is down, Weight is added to the priority;
// 0 means fault. keepalived's vrrp_track_process.
type TrackProcess struct {
	Name string
	// Process is a name compared with /proc/PID/comm (no '/', at most 15
	// bytes: the kernel keeps no more), or an absolute path compared with
	// the program the process runs (/proc/PID/exe, else argv[0]).
	Process string
	// Args, when MatchArgs, must equal the process's arguments after
	// argv[0] exactly (an empty Args: no arguments at all).
	Args      []string
	MatchArgs bool
	Quorum    int           // default 1
	QuorumMax int           // 0: no maximum
	Delay     time.Duration // a change counts once it has lasted this long
	Interval  time.Duration // default 1s: how often /proc is read
	Weight    int           // -254..254
	Line      int
}

// maxComm is the longest process name the kernel keeps in
// /proc/PID/comm (TASK_COMM_LEN less its NUL).
const maxComm = 15

// trackProcesses reads track.processes.
func (p *parser) trackProcesses(f field) []TrackProcess {
	const where = "in tracked process"
	var out []TrackProcess
	first := make(map[string]int)
	for _, it := range p.items(f, where, "name", "process", "args", "quorum", "quorum_max", "delay", "interval", "weight") {
		p.required(it, where, "name", "process")
		t := TrackProcess{Quorum: 1, Interval: time.Second, Weight: p.weight(it), Line: it.line}
		t.Name = p.trackerName(it, first, "process tracker", "tracked process")
		if pf, ok := it.fs["process"]; ok {
			if s, ok := p.str(pf); ok && p.processName(pf, s) {
				t.Process = s
			}
		}
		if af, ok := it.fs["args"]; ok {
			t.Args, t.MatchArgs = p.processArgs(af)
		}
		quorumOK := true
		if qf, ok := it.fs["quorum"]; ok {
			v, ok := p.integer(qf)
			quorumOK = ok && p.inRange(qf, v, 1, 1000)
			if quorumOK {
				t.Quorum = int(v)
			}
		}
		if qf, ok := it.fs["quorum_max"]; ok {
			if v, ok := p.integer(qf); ok && p.inRange(qf, v, 0, 1000) {
				if v != 0 && quorumOK && int(v) < t.Quorum {
					p.errorf(qf.line, "%s: %d is less than quorum (%d); the tracker could never be up", qf.name, v, t.Quorum)
				} else {
					t.QuorumMax = int(v)
				}
			}
		}
		if df, ok := it.fs["delay"]; ok {
			if d, ok := p.durationIn(df, 0, time.Hour); ok {
				t.Delay = d
			}
		}
		if df, ok := it.fs["interval"]; ok {
			if d, ok := p.durationIn(df, 100*time.Millisecond, time.Hour); ok {
				t.Interval = d
			}
		}
		out = append(out, t)
	}
	return out
}

// processName reports s, read from f, unless it is a process name the
// kernel can show in /proc/PID/comm or an absolute path.
func (p *parser) processName(f field, s string) bool {
	switch {
	case s == "":
		p.errorf(f.line, "%s: must not be empty; give a process name as ps shows it (e.g. haproxy) or the program's absolute path", f.name)
	case strings.IndexByte(s, 0) >= 0 || strings.IndexByte(s, '\n') >= 0:
		p.errorf(f.line, "%s: contains a NUL byte or a newline", f.name)
	case strings.Contains(s, "/"):
		if !path.IsAbs(s) {
			p.errorf(f.line, "%s: %q contains '/' but is not an absolute path; give a process name without '/' or the program's absolute path", f.name, s)
			return false
		}
		return true
	case len(s) > maxComm:
		p.errorf(f.line, "%s: %q is %d bytes; the kernel keeps at most %d of a process name (use %q, or the program's absolute path)", f.name, s, len(s), maxComm, s[:maxComm])
	default:
		return true
	}
	return false
}

// processArgs reads an args list: each item a string without NUL.
func (p *parser) processArgs(f field) ([]string, bool) {
	items, ok := p.list(f)
	if !ok {
		return nil, false
	}
	return p.argStrings(f, items, 1)
}
