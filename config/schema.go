package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
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
	}
	fs, _ := p.fields(field{name: "top level", line: root.Line, node: root}, "at the top level",
		"control_socket", "metrics_listen", "instances")
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
	f, ok := fs["instances"]
	if !ok {
		p.errorf(0, "no instances; at least one is needed")
		return cfg
	}
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
	for _, in := range parsed {
		cfg.Instances = append(cfg.Instances, in.Instance)
	}
	return cfg
}

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
}

var instanceKeys = []string{
	"name", "interface", "vrid", "priority", "version", "advert_interval",
	"preempt", "preempt_delay", "auth_pass", "v3_checksum", "vips", "garp",
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
	for _, key := range []string{"name", "interface", "vrid", "vips"} {
		if _, ok := fs[key]; !ok {
			p.errorf(item.Line, "missing required key %q in instance", key)
		}
	}

	if f, ok := fs["name"]; ok {
		if s, ok := p.str(f); ok {
			if validName(s) {
				in.Name, pi.nameLine = s, f.line
			} else {
				p.errorf(f.line, "name: %q is not a valid instance name; use 1 to 32 characters from a-z, 0-9, _ and -", s)
			}
		}
	}
	if f, ok := fs["interface"]; ok {
		if s, ok := p.str(f); ok {
			if validIfname(s) {
				in.Interface = s
			} else {
				p.errorf(f.line, "interface: %q is not a valid interface name (1 to 15 bytes, no '/', ':' or whitespace, not \".\" or \"..\")", s)
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
			in.AuthPass = s
			if len(s) > 8 {
				p.errorf(f.line, "auth_pass: %d bytes is too long; VRRP version 2 carries at most 8", len(s))
			}
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
		in.VIPs = p.vips(f)
	}
	if f, ok := fs["garp"]; ok {
		p.garp(f, &in.GARP)
	}
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

// vips reads an instance's list of addresses. An address listed twice is
// reported at its second appearance.
func (p *parser) vips(f field) []VIP {
	items, ok := p.list(f)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(f.line, "vips: at least one VIP is needed")
		return nil
	}
	var out []VIP
	first := make(map[netip.Addr]int)
	for _, item := range items {
		v, ok := p.vip(item)
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
func (p *parser) vip(item *yaml.Node) (VIP, bool) {
	n := resolve(item)
	var v VIP
	var addr field
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		addr = field{name: "address", line: item.Line, node: n}
	case n.Kind == yaml.MappingNode:
		fs, _ := p.fields(field{name: "vip", line: item.Line, node: n}, "in vip", "address", "description", "owner")
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

// parseVIP reads "198.51.100.10" (a /32) or "198.51.100.10/24" and says what
// is wrong with it, if anything, as a phrase.
func parseVIP(s string) (netip.Prefix, string) {
	const invalid = "not an IPv4 address or address/prefix (e.g. 198.51.100.10 or 198.51.100.10/24)"
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
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	a := pfx.Addr()
	switch {
	case a.Is6():
		return pfx, "IPv6 VIPs are not supported yet"
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
}
