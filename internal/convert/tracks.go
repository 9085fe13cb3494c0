package convert

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/kaconf"
)

// shellChars make a command line need a shell.
const shellChars = "|;&<>$`()"

var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "zsh": true}

// command turns a script or notify line into vipd's argv. keepalived 2
// runs the program itself, looked up on its PATH; vipd needs an absolute
// path. A line with shell syntax (which keepalived 1 ran through /bin/sh)
// or a program not found on this host is run through /bin/sh -c.
func (c *conv) command(n *kaconf.Node) (argv, rest []string, note string, ok bool) {
	line, argv, rest, err := kaconf.Command(n)
	if err != nil {
		c.drop(n, "cannot read the command: %v", err)
		return nil, nil, "", false
	}
	prog := argv[0]
	if !shells[path.Base(prog)] && strings.ContainsAny(line, shellChars) {
		return []string{"/bin/sh", "-c", line}, rest, "run through /bin/sh -c: the command line uses shell syntax (keepalived 1 ran it through a shell)", true
	}
	if path.IsAbs(prog) {
		return argv, rest, "", true
	}
	if !strings.Contains(prog, "/") {
		if p, found := c.opt.LookPath(prog); found {
			argv[0] = p
			return argv, rest, fmt.Sprintf("%s found at %s on the converting host; check that it is there on this node", prog, p), true
		}
	}
	return []string{"/bin/sh", "-c", line}, rest, fmt.Sprintf("%s is not an absolute path and was not found in %s on the converting host: run through /bin/sh -c, which looks it up when it runs", prog, strings.Join(DefaultPath, ":")), true
}

// script converts a vrrp_script definition; it returns the script's own
// weight, which a track_script entry may override.
func (c *conv) script(def *kaconf.Node) (*trackScript, int, bool) {
	s := &trackScript{orig: def.Args[0], interval: time.Second, rise: 1, fall: 1}
	var timeout time.Duration
	weight, reverse := 0, false
	var cmdNode *kaconf.Node
	for _, k := range def.Block {
		switch k.Keyword {
		case "script":
			cmdNode = k
		case "interval", "timeout":
			v, ok := c.arg(k, 0)
			if !ok {
				continue
			}
			d, ok := seconds(v)
			if !ok || d == 0 && k.Keyword == "interval" {
				c.warn(k, "%q is not a number of seconds; keepalived keeps its default", v)
				continue
			}
			if k.Keyword == "interval" {
				s.interval = d
			} else {
				timeout = d
			}
		case "rise", "fall":
			v, ok := c.arg(k, 0)
			if !ok {
				continue
			}
			x, err := strconv.Atoi(v)
			if err != nil || x < 1 {
				c.warn(k, "%q is not a positive count; keepalived uses 1", v)
				continue
			}
			if x > 100 {
				s.notes = append(s.notes, fmt.Sprintf("%s %d: vipd's maximum is 100", k.Keyword, x))
				c.warn(k, "%d is more than vipd's maximum of 100; 100 is written", x)
				x = 100
			}
			if k.Keyword == "rise" {
				s.rise = x
			} else {
				s.fall = x
			}
		case "weight":
			if w, err := strconv.Atoi(firstArg(k, "")); err == nil && w >= -253 && w <= 253 {
				weight = w
				reverse = len(k.Args) > 1 && k.Args[1] == "reverse"
			} else {
				c.warn(k, "%q is not -253..253; keepalived uses 0", firstArg(k, ""))
			}
		case "user":
			if u, ok := c.arg(k, 0); ok {
				s.user = u
				if len(k.Args) > 1 {
					s.group = k.Args[1]
				}
			}
		case "init_fail":
			c.warn(k, "vipd counts a tracker as up until it has failed fall times in a row; it does not start as failed")
		default:
			c.warn(k, "unknown keyword in vrrp_script")
		}
	}
	if cmdNode == nil {
		c.warn(def, "vrrp_script %s has no script; keepalived removes it", s.orig)
		return nil, 0, false
	}
	argv, _, note, ok := c.command(cmdNode)
	if !ok {
		return nil, 0, false
	}
	s.command = argv
	if note != "" {
		s.notes = append(s.notes, note)
	}
	if s.interval < 100*time.Millisecond {
		s.interval = 100 * time.Millisecond
	}
	switch {
	case timeout == 0:
		s.timeout = s.interval
	case timeout > s.interval:
		s.notes = append(s.notes, fmt.Sprintf("keepalived timeout %s is longer than the interval; vipd ends a run before the next is due", duration(timeout)))
		s.timeout = s.interval
	default:
		s.timeout = timeout
	}
	if s.user == c.scriptUser && s.group == c.scriptGroup {
		s.user, s.group = "", ""
	}
	return s, weight, reverse
}

// process converts a vrrp_track_process definition.
func (c *conv) process(def *kaconf.Node) (*trackProcess, int, bool) {
	p := &trackProcess{orig: def.Args[0], quorum: 1}
	weight, reverse := 0, false
	full := false
	var procNode *kaconf.Node
	for _, k := range def.Block {
		switch k.Keyword {
		case "process":
			if v, ok := c.arg(k, 0); ok {
				procNode = k
				p.process = v
				p.args = k.Args[1:]
				p.hasArgs = len(p.args) > 0
			}
		case "param_match":
			if v := firstArg(k, ""); v != "" && v != "exact" {
				c.drop(k, "vipd compares the arguments exactly; %q matching is not supported", v)
			}
		case "weight":
			if w, err := strconv.Atoi(firstArg(k, "")); err == nil && w >= -254 && w <= 254 {
				weight = w
				reverse = len(k.Args) > 1 && k.Args[1] == "reverse"
			} else {
				c.warn(k, "%q is not -254..254; keepalived uses 0", firstArg(k, ""))
			}
		case "quorum", "quorum_max":
			v, err := strconv.Atoi(firstArg(k, ""))
			if err != nil || v < 0 || v > 1000 {
				c.warn(k, "%q is not 0..1000; keepalived keeps its default", firstArg(k, ""))
				continue
			}
			if k.Keyword == "quorum" {
				p.quorum = max(v, 1)
			} else {
				p.quorumMax = v
			}
		case "delay", "terminate_delay", "fork_delay":
			d, ok := seconds(firstArg(k, ""))
			if !ok || d > time.Hour {
				c.warn(k, "%q is not 0..3600 seconds; keepalived ignores it", firstArg(k, ""))
				continue
			}
			if k.Keyword != "delay" {
				p.notes = append(p.notes, fmt.Sprintf("%s %s: vipd has one delay for both directions", k.Keyword, duration(d)))
			}
			p.delay = max(p.delay, d)
		case "full_command":
			full = true
		default:
			c.warn(k, "unknown keyword in vrrp_track_process")
		}
	}
	if procNode == nil {
		c.warn(def, "vrrp_track_process %s has no process; keepalived removes it", p.orig)
		return nil, 0, false
	}
	if !full && len(p.process) > 15 {
		p.notes = append(p.notes, fmt.Sprintf("keepalived compares the first 15 bytes of %s with the process name", p.process))
		p.process = p.process[:15]
	}
	if full && !path.IsAbs(p.process) {
		c.drop(procNode, "full_command with a relative program: vipd matches a process name (15 bytes) or an absolute path")
		if len(p.process) > 15 {
			p.process = p.process[:15]
		}
	}
	p.notes = append(p.notes, "keepalived learns of process changes at once (netlink); vipd scans /proc every interval (default 1s)")
	return p, weight, reverse
}

// trackFile converts one entry of an instance's track_file block.
func (c *conv) trackFile(a *kaconf.Node) (trackFile, bool) {
	def, ok := c.files[a.Keyword]
	if !ok {
		c.warn(a, "no track_file %s; keepalived ignores the entry", a.Keyword)
		return trackFile{}, false
	}
	t := trackFile{}
	weight := 1
	for _, k := range def.Block {
		switch k.Keyword {
		case "file":
			t.path = firstArg(k, "")
		case "weight":
			w, err := strconv.Atoi(firstArg(k, ""))
			if err != nil || w < -254 || w > 254 {
				c.warn(k, "%q is not -254..254", firstArg(k, ""))
				continue
			}
			weight = w
			if len(k.Args) > 1 && k.Args[1] == "reverse" {
				c.drop(k, "reverse: vipd multiplies the file's value by the weight and has no reverse")
			}
		case "init_file":
			c.drop(k, "vipd does not create the file; a missing file counts as 0")
		default:
			c.warn(k, "unknown keyword in track_file")
		}
	}
	if len(a.Args) > 0 {
		w, rev := c.entryWeight(a, -254, 254)
		weight = w
		if rev {
			c.drop(a, "reverse: vipd multiplies the file's value by the weight and has no reverse")
		}
	}
	if !path.IsAbs(t.path) {
		c.drop(def, "track_file %s: no absolute file path; left out", a.Keyword)
		return t, false
	}
	t.weight = weight
	return t, true
}

// notify converts the notify_* lines of an instance or a sync group.
func (c *conv) notify(nodes []*kaconf.Node) *notify {
	if len(nodes) == 0 {
		return nil
	}
	nt := &notify{hooks: map[string][]string{}}
	userSet := false
	for _, k := range nodes {
		key := notifyKeys[k.Keyword]
		argv, rest, note, ok := c.command(k)
		if !ok {
			continue
		}
		if _, dup := nt.hooks[key]; dup {
			c.warn(k, "given twice; keepalived and the converted file keep the last")
		}
		nt.hooks[key] = argv
		if note != "" {
			nt.notes = append(nt.notes, key+": "+note)
		}
		user, group := c.scriptUser, c.scriptGroup
		if len(rest) > 0 {
			user, group = rest[0], ""
			if len(rest) > 1 {
				group = rest[1]
			}
		}
		if userSet && (user != nt.user || group != nt.group) {
			c.drop(k, "vipd runs every hook of an instance as one user; this one runs as %s like the first", nt.user)
			continue
		}
		nt.user, nt.group, userSet = user, group, true
	}
	if len(nt.hooks) == 0 {
		return nil
	}
	if nt.user == c.scriptUser && nt.group == c.scriptGroup {
		nt.user, nt.group = "", ""
	}
	return nt
}

// syncGroup is a vrrp_sync_group as vipd sees it.
type syncGroup struct {
	node       *kaconf.Node
	orig, name string
	instances  []string
	notify     *notify
}

func (c *conv) syncGroup(n *kaconf.Node) *syncGroup {
	if len(n.Args) == 0 {
		c.warn(n, "no name given; keepalived ignores the group")
		return nil
	}
	g := &syncGroup{node: n, orig: n.Args[0]}
	var notifyNodes []*kaconf.Node
	byOrig := map[string]*instance{}
	for _, in := range c.instances {
		byOrig[in.orig] = in
	}
	for _, k := range n.Block {
		switch k.Keyword {
		case "group":
			for _, m := range k.Block {
				for _, name := range append([]string{m.Keyword}, m.Args...) {
					in, ok := byOrig[name]
					switch {
					case !ok:
						c.warn(m, "no vrrp_instance %s; keepalived leaves it out of the group", name)
					case containsStr(g.instances, in.name):
						c.warn(m, "%s is listed twice", name)
					default:
						g.instances = append(g.instances, in.name)
					}
				}
			}
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
			notifyNodes = append(notifyNodes, k)
		case "smtp_alert":
			c.drop(k, msgEmail)
		case "global_tracking", "sync_group_tracking_weight":
			c.drop(k, "vipd applies each instance's own tracking only; a sync group moves when one member must leave master")
		case "track_interface", "track_script", "track_file", "track_process", "track_bfd":
			c.drop(k, "vipd tracks per instance: move this to the member instances")
		case "notify_priority_changes":
			c.drop(k, "no vipd equivalent")
		default:
			c.warn(k, "unknown keyword in vrrp_sync_group")
		}
	}
	if len(g.instances) < 2 {
		if len(notifyNodes) == 0 {
			// A group of one moves as its member does: leaving it out
			// changes nothing.
			c.warn(n, "sync group %s has fewer than 2 instances; it moves as its member does, so it is left out", g.orig)
			return nil
		}
		c.drop(n, "sync group %s has fewer than 2 instances (vipd needs 2), so it and its notify scripts are left out; put them on the member instance", g.orig)
		return nil
	}
	g.name = c.groupNames.make(g.orig)
	g.notify = c.notify(notifyNodes)
	return g
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
