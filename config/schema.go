package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// parse reads the single YAML document in data and walks it. It returns nil
// when the YAML itself cannot be read.
func (p *parser) parse(data []byte) *Config {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(0, "the file is empty; at least one instance is needed")
		} else {
			p.syntaxError(err)
		}
		return nil
	}
	// More documents are refused rather than ignored: settings after a
	// stray "---" would otherwise be dropped without a word.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A syntax error stands alone, as for the first document.
			p.errs = nil
			p.syntaxError(err)
			return nil
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			p.errorf(next.Line, "a second YAML document is not allowed; put the whole configuration in one")
		}
	}
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = resolve(doc.Content[0])
	}
	if isNull(root) {
		p.errorf(0, "the file is empty; at least one instance is needed")
		return nil
	}
	return p.config(root)
}

func (p *parser) config(root *yaml.Node) *Config {
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "expected a mapping of settings at the top level, got %s", describe(root))
		return nil
	}
	cfg := &Config{
		File:          p.file,
		ControlSocket: defaultControlSocket,
		MetricsListen: defaultMetricsListen,
		StateDir:      defaultStateDir,
	}
	fs, _ := p.fields(field{name: "top level", line: root.Line, node: root}, "at the top level",
		"control_socket", "metrics_listen", "state_dir", "instances", "sync_groups",
		"script_user", "script_group", "static_routes", "static_rules", "conflict_probe_interval")
	cfg.ScriptUser, cfg.ScriptGroup = p.runAs(fs, "script_user", "script_group")
	if f, ok := fs["control_socket"]; ok {
		if s, ok := p.str(f); ok && p.checkSocket(f, s) {
			cfg.ControlSocket = s
		}
	}
	if f, ok := fs["metrics_listen"]; ok {
		if s, ok := p.str(f); ok && p.checkListen(f, s) {
			cfg.MetricsListen = s
		}
	}
	p.conflictProbeInterval(fs, cfg)
	if f, ok := fs["state_dir"]; ok {
		if s, ok := p.str(f); ok && p.absPath(f, s) {
			cfg.StateDir = s
		}
	}
	// known holds the instance names sync groups may refer to; it stays nil
	// when the instances could not be read, and then references are not
	// checked rather than all reported as unknown.
	var known map[string]bool
	if f, ok := fs["instances"]; !ok {
		p.errorf(0, "no instances; at least one is needed")
	} else {
		items, ok := p.list(f)
		if ok && len(items) == 0 {
			p.errorf(f.line, "instances: at least one instance is needed")
		}
		var parsed []parsedInstance
		for _, item := range items {
			if in, ok := p.instance(item); ok {
				parsed = append(parsed, in)
			}
		}
		p.crossCheck(parsed)
		p.crossCheckSources(parsed)
		p.crossCheckUpstreams(parsed)
		p.crossCheckVirtualMAC(parsed)
		if len(items) > 0 {
			known = make(map[string]bool)
		}
		for _, in := range parsed {
			cfg.Instances = append(cfg.Instances, in.Instance)
			if in.rawName != "" {
				known[in.rawName] = true
			}
		}
	}
	if f, ok := fs["sync_groups"]; ok {
		cfg.SyncGroups = p.syncGroups(f, known)
	}
	if f, ok := fs["static_routes"]; ok {
		f.name = "static_routes"
		cfg.StaticRoutes = p.routes(f)
	}
	if f, ok := fs["static_rules"]; ok {
		f.name = "static_rules"
		cfg.StaticRules = p.rules(f)
	}
	p.crossCheckRoutes(cfg)
	return cfg
}

const defaultStateDir = "/var/lib/vipd"

// unixPathMax is the size of sun_path in a Linux sockaddr_un, which also
// holds the terminating NUL.
const unixPathMax = 108

func (p *parser) checkSocket(f field, s string) bool {
	switch {
	case s == "":
		p.errorf(f.line, "control_socket: must not be empty")
	case len(s) >= unixPathMax:
		p.errorf(f.line, "control_socket: path is %d bytes; a Unix socket path holds at most %d", len(s), unixPathMax-1)
	case strings.IndexByte(s, 0) >= 0:
		p.errorf(f.line, "control_socket: path contains a NUL byte")
	default:
		return true
	}
	return false
}

// checkListen accepts "" (listener off) or host:port with a numeric port;
// the host is not resolved here.
func (p *parser) checkListen(f field, s string) bool {
	if s == "" {
		return true
	}
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err == nil && n > 0 {
			return true
		}
	}
	p.errorf(f.line, "metrics_listen: %q is not host:port with a port of 1..65535 (use \"\" to turn metrics off)", s)
	return false
}

// parsedInstance carries, beside the Instance, the lines that cross-instance
// errors point at.
type parsedInstance struct {
	Instance
	nameLine, vridLine int
	peerLines          []int // of each of UnicastPeers
	sourceLine         int   // of SourceAddress
	upstreamLines      []int // of each of Upstreams
	vmacLine           int   // of virtual_mac_name, else virtual_mac
	// rawName is the name as written, even when it is not a valid one, so
	// that a sync group naming it is not reported as well.
	rawName string
}

var instanceKeys = []string{
	"name", "interface", "vrid", "priority", "version", "advert_interval",
	"preempt", "preempt_delay", "auth_pass", "v3_checksum", "vips", "garp",
	"unicast_peers", "track", "notify", "source_address", "routes", "rules",
	"upstreams", "virtual_mac", "virtual_mac_name",
}

// instance reads one item of the instances list. Fields with errors keep
// their zero value, which the cross-instance checks skip.
func (p *parser) instance(item *yaml.Node) (parsedInstance, bool) {
	pi := parsedInstance{Instance: Instance{
		Line:           item.Line,
		Priority:       100,
		Version:        3,
		AdvertInterval: time.Second,
		Preempt:        true,
		V3Checksum:     ChecksumPseudoHeader,
		GARP:           GARP{Repeat: 5, Interval: time.Second},
	}}
	in := &pi.Instance
	fs, ok := p.fields(field{name: "instance", line: item.Line, node: resolve(item)}, "in instance", instanceKeys...)
	if !ok {
		return pi, false
	}
	for _, key := range []string{"name", "interface", "vrid"} {
		if _, ok := fs[key]; !ok {
			p.errorf(item.Line, "missing required key %q in instance", key)
		}
	}

	if f, ok := fs["name"]; ok {
		if s, ok := p.str(f); ok {
			pi.rawName = s
			if validName(s) {
				in.Name, pi.nameLine = s, f.line
			} else {
				p.errorf(f.line, "name: %q is not a valid instance name; %s", s, nameRule)
			}
		}
	}
	if f, ok := fs["interface"]; ok {
		if s, ok := p.str(f); ok {
			if validIfname(s) {
				in.Interface = s
			} else {
				p.errorf(f.line, "interface: %q is %s", s, notIfname)
			}
		}
	}
	if f, ok := fs["vrid"]; ok {
		if v, ok := p.integer(f); ok && p.inRange(f, v, 1, 255) {
			in.VRID, pi.vridLine = uint8(v), f.line
		}
	}
	if f, ok := fs["priority"]; ok {
		if v, ok := p.integer(f); ok {
			if v == 0 {
				p.errorf(f.line, "priority: 0 is reserved for a master resigning; use 1..255 (255 for the address owner)")
			} else if p.inRange(f, v, 1, 255) {
				in.Priority = uint8(v)
			}
		}
	}

	// The version decides what the interval, authentication and checksum
	// may be; when it is itself wrong those checks are skipped.
	versionOK := true
	if f, ok := fs["version"]; ok {
		v, ok := p.integer(f)
		switch {
		case !ok:
			versionOK = false
		case v != 2 && v != 3:
			p.errorf(f.line, "version: %s is not supported; use 2 or 3", f.node.Value)
			versionOK = false
		default:
			in.Version = int(v)
		}
	}
	if f, ok := fs["advert_interval"]; ok {
		if d, ok := p.duration(f); ok {
			in.AdvertInterval = d
			if versionOK {
				p.checkAdvert(f, in.Version, d)
			}
		}
	}
	if f, ok := fs["auth_pass"]; ok {
		if s, ok := p.str(f); ok {
			in.AuthPass = p.authPass(f, s)
			if s != "" && versionOK && in.Version == 3 {
				p.errorf(f.line, "auth_pass: only version 2 has authentication; this instance is version 3")
			}
		}
	}
	if f, ok := fs["v3_checksum"]; ok {
		if versionOK && in.Version == 2 {
			p.errorf(f.line, "v3_checksum: applies to version 3 only; this instance is version 2")
		}
		if s, ok := p.str(f); ok {
			switch s {
			case ChecksumPseudoHeader.String():
				in.V3Checksum = ChecksumPseudoHeader
			case ChecksumMessageOnly.String():
				in.V3Checksum = ChecksumMessageOnly
			default:
				p.errorf(f.line, "v3_checksum: %q is not a checksum mode; use pseudo-header or message-only", s)
			}
		}
	}

	if f, ok := fs["preempt"]; ok {
		if b, ok := p.boolean(f); ok {
			in.Preempt = b
			if !b && in.Priority == 255 {
				// RFC 5798 §6.4.2: the address owner always preempts;
				// without it an owner back from maintenance would stay
				// backup for good. keepalived resets nopreempt likewise.
				// A warning, not an error: such files loaded before.
				p.warnf(f.line, "preempt: false has no effect with priority 255: the address owner always preempts")
				in.Preempt = true
			}
		}
	}
	if f, ok := fs["preempt_delay"]; ok {
		if d, ok := p.duration(f); ok {
			switch {
			case d < 0:
				p.errorf(f.line, "preempt_delay: %s must not be negative", f.node.Value)
			case d > time.Hour:
				p.errorf(f.line, "preempt_delay: %s is more than the maximum of 1h", f.node.Value)
			default:
				in.PreemptDelay = d
			}
		}
	}
	if f, ok := fs["vips"]; ok {
		in.VIPs = p.vips(f, in.Interface)
	}
	if f, ok := fs["source_address"]; ok {
		in.SourceAddress, pi.sourceLine = p.sourceAddress(f)
	}
	if f, ok := fs["garp"]; ok {
		p.garp(f, &in.GARP)
	}
	if f, ok := fs["upstreams"]; ok {
		pi.upstreamLines = p.upstreams(f, in)
	}
	if f, ok := fs["unicast_peers"]; ok {
		in.UnicastPeers, pi.peerLines = p.unicastPeers(f)
	}
	if f, ok := fs["track"]; ok {
		p.track(f, in)
	}
	if f, ok := fs["notify"]; ok {
		in.Notify = p.notify(f)
	}
	if f, ok := fs["routes"]; ok {
		in.Routes = p.routes(f)
	}
	if f, ok := fs["rules"]; ok {
		in.Rules = p.rules(f)
	}
	p.virtualMAC(fs, &pi)
	p.family(&pi, fs)
	return pi, true
}

// checkAdvert applies the interval limits of the VRRP version: v3 carries
// centiseconds in 12 bits, v2 whole seconds in 8.
func (p *parser) checkAdvert(f field, version int, d time.Duration) {
	switch version {
	case 3:
		switch {
		case d < 10*time.Millisecond || d > 4095*10*time.Millisecond:
			p.errorf(f.line, "advert_interval: %s is out of range for version 3 (10ms..40.95s)", f.node.Value)
		case d%(10*time.Millisecond) != 0:
			p.errorf(f.line, "advert_interval: %s is not a multiple of 10ms, the unit of version 3", f.node.Value)
		}
	case 2:
		if d%time.Second != 0 || d < time.Second || d > 255*time.Second {
			p.errorf(f.line, "advert_interval: %s does not fit version 2, which needs whole seconds from 1s to 255s", f.node.Value)
		}
	}
}

const nameRule = "use 1 to 32 characters from a-z, 0-9, _ and -"

// validName accepts what is safe in a metric label, a log field and a
// file name: [a-z0-9_-]{1,32}.
func validName(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

const notIfname = `not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not "." or "..")`

// validIfname mirrors the kernel's dev_valid_name: shorter than IFNAMSIZ
// (16), not "." or "..", and no '/', ':' or whitespace. NUL cannot be
// passed to the kernel either.
func validIfname(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		switch c {
		case '/', ':', ' ', '\t', '\n', '\v', '\f', '\r', 0:
			return false
		}
	}
	return true
}

// vips reads an instance's list of addresses; own is the instance's
// interface ("" when it is itself wrong). The list may be empty: such an
// instance elects and runs its hooks with no address of its own. An
// address listed twice is reported at its second appearance.
func (p *parser) vips(f field, own string) []VIP {
	items, ok := p.list(f)
	if !ok {
		return nil
	}
	var out []VIP
	first := make(map[netip.Addr]int)
	for _, item := range items {
		v, ok := p.vip(item, own)
		if !ok {
			continue
		}
		a := v.Address.Addr()
		if line, dup := first[a]; dup {
			p.errorf(v.Line, "VIP %s is listed twice in this instance (first at line %d)", a, line)
			continue
		}
		first[a] = v.Line
		out = append(out, v)
	}
	return out
}

// vip reads one item of vips: a mapping, or an address alone as shorthand.
// VIP.Line is the line of the address.
func (p *parser) vip(item *yaml.Node, own string) (VIP, bool) {
	n := resolve(item)
	var v VIP
	var addr field
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		addr = field{name: "address", line: item.Line, node: n}
	case n.Kind == yaml.MappingNode:
		fs, _ := p.fields(field{name: "vip", line: item.Line, node: n}, "in vip", "address", "description", "owner", "interface", "label", "advertise")
		p.vipPlace(fs, own, &v)
		if f, ok := fs["advertise"]; ok {
			f.name = "vips.advertise"
			if b, ok := p.boolean(f); ok {
				v.NotAdvertised = !b
				if a, ok := fs["address"]; ok && b {
					p.markAdvertised(a.line) // VIP.Line is the address's
				}
			}
		}
		if f, ok := fs["description"]; ok {
			v.Description, _ = p.str(f)
		}
		if f, ok := fs["owner"]; ok {
			v.Owner, _ = p.str(f)
		}
		a, ok := fs["address"]
		if !ok {
			p.errorf(item.Line, "missing required key \"address\" in vip")
			return v, false
		}
		addr = a
	default:
		p.errorf(item.Line, "vips: expected an address or a mapping, got %s", describe(n))
		return v, false
	}
	s, ok := p.str(addr)
	if !ok {
		return v, false
	}
	pfx, problem := parseVIP(s)
	if problem != "" {
		p.errorf(addr.line, "address %q: %s", s, problem)
		return v, false
	}
	v.Address, v.Line = pfx, addr.line
	return v, true
}

// parseVIP reads "198.51.100.10" (a /32), "198.51.100.10/24", "2001:db8::10"
// (a /128) or "2001:db8::10/64" and says what
// is wrong with it, if anything, as a phrase.
func parseVIP(s string) (netip.Prefix, string) {
	const invalid = "not an IP address or address/prefix (e.g. 198.51.100.10, 198.51.100.10/24 or 2001:db8::10/64)"
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		pp, err := netip.ParsePrefix(s)
		if err != nil {
			return pfx, invalid
		}
		pfx = pp
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return pfx, invalid
		}
		if a.Zone() != "" { // PrefixFrom would drop it silently
			return pfx, addr6Problem(a, "a VIP")
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	a := pfx.Addr()
	switch {
	case a.Is6():
		return pfx, vip6Problem(pfx)
	case a.IsUnspecified():
		return pfx, "the unspecified address cannot be a VIP"
	case a.IsLoopback():
		return pfx, "a loopback address cannot be a VIP"
	case a.IsMulticast():
		return pfx, "a multicast address cannot be a VIP"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return pfx, "the broadcast address cannot be a VIP"
	case pfx.Bits() == 0:
		return pfx, "a /0 prefix would cover every address"
	}
	if pfx.Bits() < 31 {
		b := a.As4()
		ip := binary.BigEndian.Uint32(b[:])
		host := uint32(1)<<(32-pfx.Bits()) - 1
		switch ip & host {
		case 0:
			return pfx, "this is the network address of " + pfx.Masked().String()
		case host:
			return pfx, "this is the broadcast address of " + pfx.Masked().String()
		}
	}
	return pfx, ""
}

// garp reads the announcement settings into g, which holds the defaults.
func (p *parser) garp(f field, g *GARP) {
	fs, _ := p.fields(f, "in garp", "repeat", "interval", "refresh")
	get := func(key string) (field, bool) {
		x, ok := fs[key]
		x.name = "garp." + key
		return x, ok
	}
	if f, ok := get("repeat"); ok {
		if v, ok := p.integer(f); ok && p.inRange(f, v, 0, 100) {
			g.Repeat = int(v)
		}
	}
	if f, ok := get("interval"); ok {
		if d, ok := p.duration(f); ok {
			if d < 10*time.Millisecond || d > time.Hour {
				p.errorf(f.line, "garp.interval: %s is out of range 10ms..1h", f.node.Value)
			} else {
				g.Interval = d
			}
		}
	}
	if f, ok := get("refresh"); ok {
		if d, ok := p.duration(f); ok {
			if d != 0 && d < time.Second {
				p.errorf(f.line, "garp.refresh: %s must be 0 (off) or at least 1s", f.node.Value)
			} else {
				g.Refresh = d
			}
		}
	}
}

// crossCheck reports what no single instance shows: reused names, a VRID
// used twice on one interface, and a VIP claimed by two instances.
func (p *parser) crossCheck(ins []parsedInstance) {
	type vrid struct {
		ifname string
		id     uint8
	}
	type vipAt struct {
		inst int
		line int
	}
	names := make(map[string]int)
	vrids := make(map[vrid]int)
	vips := make(map[netip.Addr]vipAt)
	label := func(i int) string {
		if ins[i].Name == "" {
			return "(unnamed)"
		}
		return ins[i].Name
	}
	for i, in := range ins {
		if in.Name != "" {
			if j, dup := names[in.Name]; dup {
				p.errorf(in.nameLine, "duplicate instance name %q: also at line %d", in.Name, ins[j].Line)
			} else {
				names[in.Name] = i
			}
		}
		if in.Interface != "" && in.VRID != 0 {
			k := vrid{in.Interface, in.VRID}
			if j, dup := vrids[k]; dup {
				p.errorf(in.vridLine, "duplicate VRID %d on %s: also instance %s at line %d", in.VRID, in.Interface, label(j), ins[j].Line)
			} else {
				vrids[k] = i
			}
		}
		for _, v := range in.VIPs {
			a := v.Address.Addr()
			if o, dup := vips[a]; dup && o.inst != i {
				p.errorf(v.Line, "VIP %s is also in instance %s at line %d", a, label(o.inst), o.line)
			} else if !dup {
				vips[a] = vipAt{i, v.Line}
			}
		}
	}
	// A VIP moves between the nodes, so adverts sent to one could come back
	// to their sender; a peer must be the other node's own address.
	for _, in := range ins {
		for k, a := range in.UnicastPeers {
			if o, ok := vips[a]; ok {
				p.errorf(in.peerLines[k], "unicast peer %s is a VIP (instance %s at line %d); list the peer's own address", a, label(o.inst), o.line)
			}
		}
	}
}

// unicastPeers reads an instance's peer addresses, with the line of each.
// An empty list is refused: it would mean an instance that talks to no one.
func (p *parser) unicastPeers(f field) ([]netip.Addr, []int) {
	items, ok := p.list(f)
	if !ok {
		return nil, nil
	}
	if len(items) == 0 {
		p.errorf(f.line, "unicast_peers: the list is empty; omit the key for multicast")
		return nil, nil
	}
	var peers []netip.Addr
	var lines []int
	first := make(map[netip.Addr]int)
	for _, item := range items {
		s, ok := p.str(field{name: "unicast_peers", line: item.Line, node: resolve(item)})
		if !ok {
			continue
		}
		a, problem := parsePeer(s)
		if problem != "" {
			p.errorf(item.Line, "unicast peer %q: %s", s, problem)
			continue
		}
		if line, dup := first[a]; dup {
			p.errorf(item.Line, "unicast peer %s is listed twice in this instance (first at line %d)", a, line)
			continue
		}
		first[a] = item.Line
		peers = append(peers, a)
		lines = append(lines, item.Line)
	}
	return peers, lines
}

// parsePeer reads a peer's unicast address and says what is wrong with
// it, if anything, as a phrase.
func parsePeer(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, "not an IP address (e.g. 198.18.0.12 or fe80::12)"
	case a.Is6():
		return a, addr6Problem(a, "a peer")
	case a.IsUnspecified():
		return a, "the unspecified address cannot be a peer"
	case a.IsLoopback():
		return a, "a loopback address cannot be a peer"
	case a.IsMulticast():
		return a, "a multicast address cannot be a unicast peer; omit unicast_peers for multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return a, "the broadcast address cannot be a peer"
	}
	return a, ""
}

// track reads what the instance's priority depends on into in.Track.
func (p *parser) track(f field, in *Instance) {
	fs, _ := p.fields(f, "in track", "interfaces", "scripts", "files", "processes", "own_interface")
	qualify(fs, "track.")
	own := in.Interface
	if f, ok := fs["own_interface"]; ok {
		if b, ok := p.boolean(f); ok && !b {
			in.Track.IgnoreOwnInterface = true
			own = "" // it may then be listed, with a weight
		}
	}
	if f, ok := fs["interfaces"]; ok {
		in.Track.Interfaces = p.trackInterfaces(f, own)
	}
	if f, ok := fs["scripts"]; ok {
		in.Track.Scripts = p.trackScripts(f)
	}
	if f, ok := fs["files"]; ok {
		in.Track.Files = p.trackFiles(f)
	}
	if f, ok := fs["processes"]; ok {
		in.Track.Processes = p.trackProcesses(f)
	}
}

// items returns the mappings listed in f, each with its entries (named
// after f) and its line. Items that are not mappings are reported and left
// out.
func (p *parser) items(f field, where string, known ...string) []item {
	list, _ := p.list(f)
	var out []item
	for _, n := range list {
		fs, ok := p.fields(field{name: f.name, line: n.Line, node: resolve(n)}, where, known...)
		if !ok {
			continue
		}
		qualify(fs, f.name+".")
		out = append(out, item{fs: fs, line: n.Line})
	}
	return out
}

// item is one mapping of a list.
type item struct {
	fs   map[string]field
	line int
}

// required reports the keys of it that are missing.
func (p *parser) required(it item, where string, keys ...string) {
	for _, key := range keys {
		if _, ok := it.fs[key]; !ok {
			p.errorf(it.line, "missing required key %q %s", key, where)
		}
	}
}

// weight reads a tracker's weight; out of range it is reported and 0.
func (p *parser) weight(it item) int {
	f, ok := it.fs["weight"]
	if !ok {
		return 0
	}
	if v, ok := p.integer(f); ok && p.inRange(f, v, -254, 254) {
		return int(v)
	}
	return 0
}

// trackInterfaces reads track.interfaces. own is the instance's interface
// ("" when it is itself wrong, or not tracked by track.own_interface:
// false), which is always tracked and so may not be listed.
func (p *parser) trackInterfaces(f field, own string) []TrackInterface {
	const where = "in tracked interface"
	var out []TrackInterface
	first := make(map[string]int)
	for _, it := range p.items(f, where, "name", "weight") {
		p.required(it, where, "name")
		t := TrackInterface{Weight: p.weight(it), Line: it.line}
		if nf, ok := it.fs["name"]; ok {
			if s, ok := p.str(nf); ok {
				line, dup := first[s]
				switch {
				case !validIfname(s):
					p.errorf(nf.line, "%s: %q is %s", nf.name, s, notIfname)
				case s == own:
					p.errorf(nf.line, "%s: %s need not be listed: the instance's own interface is always tracked (carrier loss is fault; set track.own_interface: false to track it with a weight instead)", nf.name, s)
				case dup:
					p.errorf(nf.line, "interface %s is tracked twice in this instance (first at line %d)", s, line)
				default:
					first[s] = nf.line
					t.Name = s
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// trackScripts reads track.scripts.
func (p *parser) trackScripts(f field) []TrackScript {
	const where = "in track script"
	var out []TrackScript
	first := make(map[string]int)
	for _, it := range p.items(f, where, "name", "command", "interval", "timeout", "rise", "fall", "weight", "user", "group") {
		p.required(it, where, "name", "command")
		t := TrackScript{
			Interval: 2 * time.Second,
			Timeout:  time.Second,
			Rise:     1,
			Fall:     1,
			Weight:   p.weight(it),
			Line:     it.line,
		}
		t.User, t.Group = p.runAs(it.fs, "user", "group")
		t.Name = p.trackerName(it, first, "script", "track script")
		if cf, ok := it.fs["command"]; ok {
			t.Command = p.command(cf)
		}
		intervalOK := true
		if df, ok := it.fs["interval"]; ok {
			d, ok := p.durationIn(df, 100*time.Millisecond, time.Hour)
			if ok {
				t.Interval = d
			}
			intervalOK = ok
		}
		if df, ok := it.fs["timeout"]; ok {
			if d, ok := p.duration(df); ok {
				switch {
				case d < 10*time.Millisecond:
					p.errorf(df.line, "%s: %s is less than the minimum of 10ms", df.name, df.node.Value)
				case intervalOK && d > t.Interval:
					p.errorf(df.line, "%s: %s is longer than the interval (%s); a run must end before the next one is due", df.name, df.node.Value, shortDuration(t.Interval))
				case d > time.Hour:
					p.errorf(df.line, "%s: %s is more than the maximum of 1h", df.name, df.node.Value)
				default:
					t.Timeout = d
				}
			}
		} else if t.Timeout > t.Interval {
			// A short interval shortens the default timeout with it.
			t.Timeout = t.Interval
		}
		for _, key := range []string{"rise", "fall"} {
			cf, ok := it.fs[key]
			if !ok {
				continue
			}
			if v, ok := p.integer(cf); ok && p.inRange(cf, v, 1, 100) {
				if key == "rise" {
					t.Rise = int(v)
				} else {
					t.Fall = int(v)
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// trackFiles reads track.files. The same file listed twice is caught even
// when spelled differently ("/run//x", "/run/x").
func (p *parser) trackFiles(f field) []TrackFile {
	const where = "in tracked file"
	var out []TrackFile
	first := make(map[string]int)
	for _, it := range p.items(f, where, "path", "weight") {
		p.required(it, where, "path")
		t := TrackFile{Weight: p.weight(it), Line: it.line}
		if pf, ok := it.fs["path"]; ok {
			if s, ok := p.str(pf); ok && p.absPath(pf, s) {
				clean := path.Clean(s)
				if line, dup := first[clean]; dup {
					p.errorf(pf.line, "file %s is tracked twice in this instance (first at line %d)", s, line)
				} else {
					first[clean] = pf.line
					t.Path = s
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// command reads an argv list. A plain string is refused rather than split:
// splitting it would take a shell's quoting rules, and no shell is involved.
func (p *parser) command(f field) []string {
	if f.node.Kind == yaml.ScalarNode && !isNull(f.node) {
		p.errorf(f.line, `%s: expected a list, got %s; the command is argv and never goes through a shell, so give each argument as its own item, e.g. ["/usr/bin/pgrep", "-x", "haproxy"]`, f.name, describe(f.node))
		return nil
	}
	items, ok := p.list(f)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(f.line, "%s: must not be empty; give the program's absolute path, then its arguments", f.name)
		return nil
	}
	argv, ok := p.argStrings(f, items, 0)
	if n := resolve(items[0]); n != nil && n.Kind == yaml.ScalarNode && !path.IsAbs(argv[0]) {
		p.errorf(items[0].Line, "%s: %q is not an absolute path; the program is run directly, with no shell and no $PATH search", f.name, argv[0])
		ok = false
	}
	if !ok {
		return nil
	}
	return argv
}

// argStrings reads the items of an argument list: strings without NUL.
// first is the argument number of the first item, for messages (0 for a
// command's program, 1 for arguments after it).
func (p *parser) argStrings(f field, items []*yaml.Node, first int) ([]string, bool) {
	args := make([]string, 0, len(items))
	good := true
	for i, item := range items {
		s, ok := p.str(field{name: f.name, line: item.Line, node: resolve(item)})
		switch {
		case !ok:
			good = false
		case strings.IndexByte(s, 0) >= 0:
			p.errorf(item.Line, "%s: argument %d contains a NUL byte", f.name, first+i)
			good = false
		}
		args = append(args, s)
	}
	return args, good
}

// syncGroups reads the top-level sync_groups. known holds the instance
// names (nil: the instances could not be read, so references go unchecked).
func (p *parser) syncGroups(f field, known map[string]bool) []SyncGroup {
	const where = "in sync group"
	type member struct {
		group string
		line  int
	}
	var out []SyncGroup
	groups := make(map[string]int)
	members := make(map[string]member)
	for _, it := range p.items(f, where, "name", "instances", "notify") {
		p.required(it, where, "name", "instances")
		g := SyncGroup{Line: it.line}
		if nf, ok := it.fs["notify"]; ok {
			g.Notify = p.notify(nf)
		}
		label := "(unnamed)"
		if nf, ok := it.fs["name"]; ok {
			if s, ok := p.str(nf); ok {
				if s != "" {
					label = s
				}
				line, dup := groups[s]
				switch {
				case !validName(s):
					p.errorf(nf.line, "%s: %q is not a valid sync group name; %s", nf.name, s, nameRule)
				case dup:
					p.errorf(nf.line, "duplicate sync group name %q: also at line %d", s, line)
				default:
					groups[s] = it.line
					g.Name = s
				}
			}
		}
		inf, ok := it.fs["instances"]
		if !ok {
			out = append(out, g)
			continue
		}
		list, ok := p.list(inf)
		if ok && len(list) < 2 {
			p.errorf(inf.line, "sync group %s: needs at least 2 instances to move together", label)
		}
		seen := make(map[string]int)
		for _, n := range list {
			s, ok := p.str(field{name: inf.name, line: n.Line, node: resolve(n)})
			if !ok {
				continue
			}
			if line, dup := seen[s]; dup {
				p.errorf(n.Line, "sync group %s: instance %s is listed twice (first at line %d)", label, s, line)
				continue
			}
			seen[s] = n.Line
			if known != nil && !known[s] {
				p.errorf(n.Line, "sync group %s: no instance named %q", label, s)
				continue
			}
			if m, dup := members[s]; dup {
				p.errorf(n.Line, "instance %s is already in sync group %s at line %d; an instance can be in one sync group only", s, m.group, m.line)
				continue
			}
			members[s] = member{label, n.Line}
			g.Instances = append(g.Instances, s)
		}
		out = append(out, g)
	}
	return out
}

// trackerName reads the name of a tracker list item: valid, and not used
// before in the list (first holds the names seen, with their lines). kind
// names it in "not a valid <kind> name", what in "<what> X is defined
// twice". It returns "" when the name is missing or wrong.
func (p *parser) trackerName(it item, first map[string]int, kind, what string) string {
	nf, ok := it.fs["name"]
	if !ok {
		return ""
	}
	s, ok := p.str(nf)
	if !ok {
		return ""
	}
	line, dup := first[s]
	switch {
	case !validName(s):
		p.errorf(nf.line, "%s: %q is not a valid %s name; %s", nf.name, s, kind, nameRule)
	case dup:
		p.errorf(nf.line, "%s %s is defined twice in this instance (first at line %d)", what, s, line)
	default:
		first[s] = nf.line
		return s
	}
	return ""
}
