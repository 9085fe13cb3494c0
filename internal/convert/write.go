package convert

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/kaconf"
)

type writer struct{ b strings.Builder }

func (w *writer) comment(ind int, lines ...string) {
	for _, l := range lines {
		w.b.WriteString(strings.Repeat(" ", ind) + "# " + oneLine(l) + "\n")
	}
}

func (w *writer) kv(ind int, key, val string) {
	w.b.WriteString(strings.Repeat(" ", ind) + key + ": " + val + "\n")
}

func (w *writer) key(ind int, key string) {
	w.b.WriteString(strings.Repeat(" ", ind) + key + ":\n")
}

// oneLine keeps a comment on its line whatever the original text held.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

var (
	plain   = regexp.MustCompile(`^[A-Za-z/_][A-Za-z0-9_./:@+-]*$`)
	address = regexp.MustCompile(`^[0-9]+(\.[0-9]+){3}(/[0-9]+)?$`)
)

// yamlWords are plain scalars YAML 1.1 would not read as strings.
var yamlWords = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true, "true": true, "false": true, "null": true, "~": true,
}

// str writes s as a YAML string: plain when that is unambiguous, else
// double-quoted.
func str(s string) string {
	if plain.MatchString(s) && !yamlWords[strings.ToLower(s)] || address.MatchString(s) {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = str(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (c *conv) write(t *kaconf.Tree) []byte {
	var w writer
	src := "standard input"
	if len(t.Files) > 0 && t.Files[0] != "-" {
		src = t.Files[0]
	}
	w.comment(0, "vipd configuration converted by vipd convert from "+src+".")
	if len(t.Files) > 1 {
		w.comment(0, "Also read: "+strings.Join(t.Files[1:], ", "))
	}
	w.comment(0, "Check it with vipd check, and see the stderr of vipd convert for what has no equivalent.")
	w.comment(0, c.header...)
	if c.scriptUser == "" {
		w.comment(0, "keepalived without script_user runs scripts and hooks as keepalived_script if that user exists, else root;",
			"vipd runs them as its own user. Add script_user: root if they need root (vipd must then run as root).")
	} else {
		w.kv(0, "script_user", str(c.scriptUser))
		if c.scriptGroup != "" {
			w.kv(0, "script_group", str(c.scriptGroup))
		}
	}
	writeEntries(&w, 0, "static_routes", c.staticRoutes)
	writeEntries(&w, 0, "static_rules", c.staticRules)
	if len(c.instances) > 0 {
		w.key(0, "instances")
	}
	for _, in := range c.instances {
		c.writeInstance(&w, in)
	}
	if len(c.groups) > 0 {
		w.key(0, "sync_groups")
		for _, g := range c.groups {
			w.b.WriteString("  - name: " + str(g.name))
			if g.name != g.orig {
				w.b.WriteString("   # keepalived: " + oneLine(g.orig))
			}
			w.b.WriteString("\n")
			w.kv(4, "instances", list(g.instances))
			if g.notify != nil {
				writeNotify(&w, 4, g.notify, "GROUP")
			}
		}
	}
	return []byte(w.b.String())
}

func (c *conv) writeInstance(w *writer, in *instance) {
	w.comment(2, "vrrp_instance "+in.orig+" ("+in.node.Pos()+")")
	w.comment(2, in.notes[""]...)
	w.b.WriteString("  - name: " + str(in.name))
	if in.name != in.orig {
		w.b.WriteString("   # keepalived: " + oneLine(in.orig))
	}
	w.b.WriteString("\n")
	w.kv(4, "interface", str(in.iface))
	w.kv(4, "vrid", strconv.Itoa(in.vrid))
	w.comment(4, in.notes["priority"]...)
	w.kv(4, "priority", strconv.Itoa(in.priority))
	w.comment(4, in.notes["version"]...)
	w.kv(4, "version", strconv.Itoa(in.version))
	w.comment(4, in.notes["advert_interval"]...)
	w.kv(4, "advert_interval", duration(in.advert))
	if !in.preempt {
		w.kv(4, "preempt", "false")
	}
	if in.preemptDelay > 0 {
		w.kv(4, "preempt_delay", duration(in.preemptDelay))
	}
	if in.authPass != "" {
		w.comment(4, in.notes["auth_pass"]...)
		w.kv(4, "auth_pass", str(in.authPass))
	}
	if in.v3MessageOnly {
		w.kv(4, "v3_checksum", "message-only")
	}
	if in.source != "" {
		w.kv(4, "source_address", str(in.source))
	}
	if len(in.peers) > 0 {
		w.comment(4, in.notes["unicast_peers"]...)
		w.kv(4, "unicast_peers", list(in.peers))
	}
	if in.vmac.on {
		w.comment(4, in.notes["virtual_mac"]...)
		w.kv(4, "virtual_mac", "true")
		if in.vmac.name != "" {
			w.kv(4, "virtual_mac_name", str(in.vmac.name))
		}
	}
	w.comment(4, in.notes["vips"]...)
	if len(in.vips) == 0 {
		w.kv(4, "vips", "[]")
	} else {
		w.key(4, "vips")
		for _, v := range in.vips {
			if v.iface == "" && v.label == "" && !v.excluded {
				w.b.WriteString("      - " + str(v.addr) + "\n")
				continue
			}
			w.b.WriteString("      - address: " + str(v.addr) + "\n")
			if v.iface != "" {
				w.kv(8, "interface", str(v.iface))
			}
			if v.label != "" {
				w.kv(8, "label", str(v.label))
			}
			if v.excluded {
				w.kv(8, "advertise", "false")
			}
		}
	}
	if in.garp.set {
		c.writeGARP(w, in)
	}
	if !in.ownInterface || len(in.ifaces)+len(in.scripts)+len(in.processes)+len(in.files) > 0 || len(in.notes["track"]) > 0 {
		w.comment(4, in.notes["track"]...)
		w.key(4, "track")
		if !in.ownInterface {
			w.comment(6, "dont_track_primary: carrier loss on "+in.iface+" does not put the instance in fault")
			w.kv(6, "own_interface", "false")
		}
		if len(in.ifaces) > 0 {
			w.key(6, "interfaces")
			for _, t := range in.ifaces {
				w.b.WriteString("        - name: " + str(t.name) + "\n")
				if t.weight != 0 {
					w.kv(10, "weight", strconv.Itoa(t.weight))
				}
			}
		}
		if len(in.scripts) > 0 {
			var nm names
			w.key(6, "scripts")
			for _, s := range in.scripts {
				name := nm.make(s.orig)
				notes := s.notes
				if name != s.orig {
					notes = append([]string{"vrrp_script " + s.orig}, notes...)
				}
				w.comment(8, notes...)
				w.b.WriteString("        - name: " + str(name) + "\n")
				w.kv(10, "command", list(s.command))
				w.kv(10, "interval", duration(s.interval))
				w.kv(10, "timeout", duration(s.timeout))
				if s.rise != 1 {
					w.kv(10, "rise", strconv.Itoa(s.rise))
				}
				if s.fall != 1 {
					w.kv(10, "fall", strconv.Itoa(s.fall))
				}
				if s.weight == 0 {
					w.comment(10, "weight 0: failing puts the instance in fault, as in keepalived")
				}
				w.kv(10, "weight", strconv.Itoa(s.weight))
				if s.user != "" {
					w.kv(10, "user", str(s.user))
				}
				if s.group != "" {
					w.kv(10, "group", str(s.group))
				}
			}
		}
		if len(in.processes) > 0 {
			var nm names
			w.key(6, "processes")
			for _, p := range in.processes {
				name := nm.make(p.orig)
				notes := p.notes
				if name != p.orig {
					notes = append([]string{"vrrp_track_process " + p.orig}, notes...)
				}
				w.comment(8, notes...)
				w.b.WriteString("        - name: " + str(name) + "\n")
				w.kv(10, "process", str(p.process))
				if p.hasArgs {
					w.kv(10, "args", list(p.args))
				}
				if p.quorum != 1 {
					w.kv(10, "quorum", strconv.Itoa(p.quorum))
				}
				if p.quorumMax != 0 {
					w.kv(10, "quorum_max", strconv.Itoa(p.quorumMax))
				}
				if p.delay > 0 {
					w.kv(10, "delay", duration(p.delay))
				}
				w.kv(10, "weight", strconv.Itoa(p.weight))
			}
		}
		if len(in.files) > 0 {
			w.key(6, "files")
			for _, f := range in.files {
				w.b.WriteString("        - path: " + str(f.path) + "\n")
				w.kv(10, "weight", strconv.Itoa(f.weight))
			}
		}
	}
	if in.notify != nil {
		writeNotify(w, 4, in.notify, "INSTANCE")
	}
	writeEntries(w, 4, "routes", in.routes)
	writeEntries(w, 4, "rules", in.rules)
}

// writeGARP maps keepalived's gratuitous ARP settings: a burst of
// garp_master_repeat at once and another after garp_master_delay, and a
// refresh every garp_master_refresh; vipd sends one announcement, then
// repeat more spaced by interval, and refreshes every refresh.
func (c *conv) writeGARP(w *writer, in *instance) {
	w.comment(4, "garp: keepalived sends garp_master_repeat ("+in.garp.repeat+") at once and again after garp_master_delay ("+in.garp.delay+"s);",
		"vipd sends one announcement, then repeat more spaced by interval")
	w.key(4, "garp")
	if r, err := strconv.Atoi(in.garp.repeat); err == nil {
		w.kv(6, "repeat", strconv.Itoa(min(max(r, 0), 100)))
	}
	if d, ok := seconds(in.garp.delay); ok && d >= 10*time.Millisecond {
		w.kv(6, "interval", duration(min(d, time.Hour)))
	}
	if d, ok := seconds(in.garp.refresh); ok && d > 0 {
		w.kv(6, "refresh", duration(max(d, time.Second)))
	}
}

func writeNotify(w *writer, ind int, n *notify, kind string) {
	w.comment(ind, n.notes...)
	if _, ok := n.hooks["keepalived"]; ok {
		w.comment(ind, "notify: keepalived: run with keepalived's arguments appended ("+kind+" name STATE priority)")
	}
	w.key(ind, "notify")
	for _, k := range []string{"master", "backup", "fault", "stop", "keepalived"} {
		if argv, ok := n.hooks[k]; ok {
			w.kv(ind+2, k, list(argv))
		}
	}
	if n.user != "" {
		w.kv(ind+2, "user", str(n.user))
	}
	if n.group != "" {
		w.kv(ind+2, "group", str(n.group))
	}
}
