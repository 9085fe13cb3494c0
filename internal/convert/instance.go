package convert

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/kaconf"
)

// instance is a vrrp_instance as vipd will see it.
type instance struct {
	node          *kaconf.Node
	orig, name    string
	iface         string
	vrid          int
	priority      int
	version       int
	advert        time.Duration
	preempt       bool
	preemptDelay  time.Duration
	authPass      string
	v3MessageOnly bool
	source        string
	peers         []string
	vips          []vip
	hadVIPs       bool
	garp          garpSettings
	ownInterface  bool
	ifaces        []trackIface
	scripts       []trackScript
	processes     []trackProcess
	files         []trackFile
	notify        *notify
	routes, rules []entry
	vmac          vmacSettings
	// family is the instance's address family as keepalived decides it;
	// sourceAddr and sourceNode are unicast_src_ip/mcast_src_ip and its
	// line, nativeIPv6 the native_ipv6 line (see family.go).
	family     family
	sourceAddr netip.Addr
	sourceNode *kaconf.Node
	nativeIPv6 *kaconf.Node
	// notes are comments written above a key of the instance ("" for the
	// instance as a whole).
	notes map[string][]string
}

type vip struct {
	addr, iface, label string
	excluded           bool // virtual_ipaddress_excluded: advertise: false
}

type trackIface struct {
	name   string
	weight int
}

type trackScript struct {
	orig               string
	command            []string
	interval, timeout  time.Duration
	rise, fall, weight int
	user, group        string
	notes              []string
}

type trackProcess struct {
	orig, process     string
	args              []string
	hasArgs           bool
	quorum, quorumMax int
	delay             time.Duration
	weight            int
	notes             []string
}

type trackFile struct {
	path   string
	weight int
}

type notify struct {
	hooks       map[string][]string // master, backup, fault, stop, keepalived
	user, group string
	notes       []string
}

var notifyKeys = map[string]string{
	"notify_master": "master", "notify_backup": "backup", "notify_fault": "fault", "notify_stop": "stop", "notify": "keepalived",
}

func (in *instance) note(key, format string, args ...any) {
	in.notes[key] = append(in.notes[key], fmt.Sprintf(format, args...))
}

// weighted is one tracker's keepalived weight, for the priority mapping.
type weighted struct {
	weight  int
	reverse bool
	set     func(int) // stores the vipd weight
	what    string
}

func (c *conv) instance(n *kaconf.Node) *instance {
	in := &instance{
		node: n, version: c.version, priority: 100, advert: time.Second, preempt: true,
		garp: c.garp, ownInterface: true, notes: map[string][]string{},
	}
	if len(n.Args) == 0 {
		c.warn(n, "no name given; keepalived ignores the instance")
		return nil
	}
	in.orig = n.Args[0]
	var (
		state        string
		stateNode    *kaconf.Node
		nopreempt    *kaconf.Node
		delayNode    *kaconf.Node
		authType     string
		authNode     *kaconf.Node
		weights      []weighted
		vridOK, ifOK bool
		versionNode  *kaconf.Node
		notifyNodes  []*kaconf.Node
		checksumAsV2 *kaconf.Node
	)
	for _, k := range n.Block {
		switch k.Keyword {
		case "interface":
			if v, ok := c.arg(k, 0); ok {
				in.iface, ifOK = v, true
				c.extra(k, 1)
			}
		case "virtual_router_id":
			if v, ok := c.arg(k, 0); ok {
				id, err := strconv.Atoi(v)
				if err != nil || id < 1 || id > 255 {
					c.warn(k, "%q is not 1..255; keepalived refuses the instance", v)
				} else {
					in.vrid, vridOK = id, true
				}
				c.extra(k, 1)
			}
		case "priority":
			if v, ok := c.arg(k, 0); ok {
				p, err := strconv.Atoi(v)
				if err != nil || p < 1 || p > 255 {
					c.warn(k, "%q is not 1..255; keepalived keeps its default 100", v)
				} else {
					in.priority = p
				}
				c.extra(k, 1)
			}
		case "state":
			if v, ok := c.arg(k, 0); ok {
				switch {
				case v == "MASTER":
					state, stateNode = v, k
				case v == "BACKUP" && state != "MASTER":
					state, stateNode = v, k
				case v != "BACKUP":
					c.warn(k, "%q is neither MASTER nor BACKUP; keepalived takes BACKUP", v)
				}
				c.extra(k, 1)
			}
		case "advert_int":
			if v, ok := c.arg(k, 0); ok {
				if d, ok := seconds(v); ok && d > 0 {
					in.advert = d
				} else {
					c.warn(k, "%q is not a number of seconds; keepalived keeps 1s", v)
				}
				c.extra(k, 1)
			}
		case "version":
			if v, ok := c.arg(k, 0); ok {
				if v == "2" || v == "3" {
					in.version, _ = strconv.Atoi(v)
					versionNode = k
				} else {
					c.warn(k, "%q is not 2 or 3; keepalived ignores it", v)
				}
				c.extra(k, 1)
			}
		case "nopreempt":
			nopreempt = k
		case "preempt":
			nopreempt = nil
		case "preempt_delay":
			if v, ok := c.arg(k, 0); ok {
				if d, ok := seconds(v); ok && d <= 1000*time.Second {
					in.preemptDelay, delayNode = d, k
				} else {
					c.warn(k, "%q is not 0..1000 seconds; keepalived ignores it", v)
				}
			}
		case "authentication":
			for _, a := range k.Block {
				switch a.Keyword {
				case "auth_type":
					if v, ok := c.arg(a, 0); ok {
						authType, authNode = v, a
						c.extra(a, 1)
					}
				case "auth_pass":
					if v, ok := c.arg(a, 0); ok {
						in.authPass = v
						c.extra(a, 1)
					}
				default:
					c.warn(a, "unknown keyword in authentication")
				}
			}
		case "virtual_ipaddress":
			in.hadVIPs = true
			for _, a := range k.Block {
				v, ok := c.vipEntry(in, a)
				if !ok {
					continue
				}
				if addr, _ := parseAddr(stripLen(v.addr)); !c.claimFamily(in, a, addr, "VIP") {
					continue
				}
				if slices.ContainsFunc(in.vips, func(o vip) bool { return sameAddr(o.addr, v.addr) }) {
					c.warn(a, "address listed twice in the instance; keepalived keeps the first, and so does the converted file")
					continue
				}
				in.vips = append(in.vips, v)
			}
		case "no_virtual_ipaddress":
			in.hadVIPs = true
		case "virtual_ipaddress_excluded":
			// Added and announced with the VIPs, left out of the adverts:
			// vipd's advertise: false.
			for _, a := range k.Block {
				v, ok := c.vipEntry(in, a)
				if !ok {
					continue
				}
				if slices.ContainsFunc(in.vips, func(o vip) bool { return sameAddr(o.addr, v.addr) }) {
					c.warn(a, "address listed twice in the instance; keepalived keeps the first, and so does the converted file")
					continue
				}
				v.excluded = true
				in.vips = append(in.vips, v)
			}
		case "unicast_src_ip", "mcast_src_ip":
			if v, ok := c.arg(k, 0); ok {
				a, ok := parseAddr(v)
				switch {
				case !ok:
					c.warn(k, "%q is not an address; keepalived ignores it", v)
				default:
					in.source, in.sourceAddr, in.sourceNode = a.String(), a, k
				}
				c.extra(k, 1)
			}
		case "unicast_peer":
			for _, a := range k.Block {
				addr, ok := parseAddr(a.Keyword)
				switch {
				case !ok:
					c.warn(a, "not an address; keepalived ignores it")
				case !c.claimFamily(in, a, addr, "unicast peer"):
				case slices.Contains(in.peers, addr.String()):
					c.warn(a, "listed twice; once is enough")
				default:
					in.peers = append(in.peers, addr.String())
					if len(a.Args) > 0 {
						c.drop(a, "vipd has no per-peer TTL limits; %q is left out", strings.Join(a.Args, " "))
					}
				}
			}
		case "track_interface":
			for _, a := range k.Block {
				w, rev := c.entryWeight(a, -254, 254)
				t := trackIface{name: a.Keyword}
				in.ifaces = append(in.ifaces, t)
				i := len(in.ifaces) - 1
				weights = append(weights, weighted{weight: w, reverse: rev, what: "interface " + a.Keyword,
					set: func(v int) { in.ifaces[i].weight = v }})
			}
		case "track_script":
			for _, a := range k.Block {
				def, ok := c.scripts[a.Keyword]
				if !ok {
					c.warn(a, "no vrrp_script %s; keepalived ignores the entry", a.Keyword)
					continue
				}
				s, dw, drev := c.script(def)
				if s == nil {
					continue
				}
				in.scripts = append(in.scripts, *s)
				i := len(in.scripts) - 1
				weights = append(weights, c.refWeight(a, dw, drev, 253, "script", func(v int) { in.scripts[i].weight = v }))
			}
		case "track_process":
			for _, a := range k.Block {
				def, ok := c.processes[a.Keyword]
				if !ok {
					c.warn(a, "no vrrp_track_process %s; keepalived ignores the entry", a.Keyword)
					continue
				}
				p, dw, drev := c.process(def)
				if p == nil {
					continue
				}
				in.processes = append(in.processes, *p)
				i := len(in.processes) - 1
				weights = append(weights, c.refWeight(a, dw, drev, 254, "process", func(v int) { in.processes[i].weight = v }))
			}
		case "track_file":
			for _, a := range k.Block {
				if f, ok := c.trackFile(a); ok {
					in.files = append(in.files, f)
				}
			}
		case "dont_track_primary":
			in.ownInterface = false
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
			notifyNodes = append(notifyNodes, k)
		case "garp_master_delay":
			in.garp.delay, in.garp.set = firstArg(k, in.garp.delay), true
		case "garp_master_repeat":
			in.garp.repeat, in.garp.set = firstArg(k, in.garp.repeat), true
		case "garp_master_refresh":
			in.garp.refresh, in.garp.set = firstArg(k, in.garp.refresh), true
		case "garp_master_refresh_repeat", "garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_interval", "gna_interval", "vmac_garp_intvl":
			c.warn(k, "vipd's gratuitous ARP timing is garp.repeat, garp.interval and garp.refresh; this fine-tuning is not carried over")
		case "smtp_alert":
			c.drop(k, msgEmail)
		case "accept":
			in.note("", "accept: vipd never blocks traffic to its VIPs, as keepalived without vrrp_strict")
		case "no_accept":
			c.warn(k, "vipd never blocks traffic to its VIPs (keepalived does so only with vrrp_strict or its firewall rules)")
		case "higher_prio_send_advert":
			in.note("", "higher_prio_send_advert: always on in vipd")
		case "skip_check_adv_addr":
			c.warn(k, "vipd logs and counts an advert whose address list differs and does not drop it")
		case "check_unicast_src":
			c.warn(k, "vipd accepts unicast adverts from the listed unicast_peers only")
		case "debug", "kernel_rx_buf_size", "linkbeat_use_polling":
			in.note("", "%s: keepalived tuning with no vipd equivalent", k.Keyword)
		case "use_vmac":
			c.useVMAC(in, k)
		case "use_vmac_addr":
			in.vmac.addr = k
		case "vmac_xmit_base":
			c.warn(k, "vipd sends adverts from the virtual MAC, as RFC 5798 asks, and has no setting to send them with the interface's own MAC; peers accept them either way")
		case "use_ipvlan":
			c.useIPVLAN(in, k)
		case "native_ipv6":
			c.nativeIPv6(in, k)
		case "virtual_routes", "virtual_rules":
			c.routesAndRules(k, &in.routes, &in.rules)
		case "v3_checksum_as_v2":
			checksumAsV2 = k
		case "lvs_sync_daemon_interface":
			c.dropOnce("lvs", k, msgLVS)
		case "strict_mode":
			c.drop(k, "vipd has no strict mode: it accepts traffic to its VIPs, and adverts with authentication or another address list")
		case "promote_secondaries", "unicast_fault_no_peer", "lower_prio_no_advert", "old_unicast_checksum", "mcast_dst_ip",
			"unicast_ttl", "track_src_ip", "vrf", "notify_deleted", "notify_master_rx_lower_pri", "notify_priority_changes",
			"down_timer_adverts", "timer_expired_backup", "thread_timer_expired", "owner_ignore_adverts", "garp_extra_if", "track_bfd":
			c.drop(k, "no vipd equivalent")
		default:
			c.warn(k, "unknown keyword in vrrp_instance (keepalived reports and ignores it too)")
		}
	}
	if !ifOK || !vridOK {
		var missing []string
		if !ifOK {
			missing = append(missing, "interface")
		}
		if !vridOK {
			missing = append(missing, "virtual_router_id")
		}
		c.drop(n, "instance %s has no %s; keepalived refuses it and so it is left out", in.orig, strings.Join(missing, " or "))
		return nil
	}
	in.name = c.instNames.make(in.orig)
	c.finishFamily(in, c.versionSet || versionNode != nil)

	if state == "MASTER" {
		in.note("", "state MASTER: keepalived goes master at once; vipd starts as backup and becomes master after Master_Down_Interval (3 adverts plus skew) unless it hears a better master")
		if nopreempt != nil {
			c.warn(nopreempt, "keepalived ignores nopreempt with state MASTER; so does the converted file")
			nopreempt = nil
		}
		if delayNode != nil && in.preemptDelay > 0 {
			c.warn(delayNode, "keepalived ignores preempt_delay with state MASTER; so does the converted file")
			in.preemptDelay = 0
		}
	} else if stateNode != nil {
		in.note("", "state BACKUP: vipd always starts as backup")
	}
	if nopreempt != nil {
		if in.priority == 255 {
			c.warn(nopreempt, "keepalived ignores nopreempt at priority 255 (the address owner always preempts); so does the converted file")
		} else {
			in.preempt = false
			if delayNode != nil && in.preemptDelay > 0 {
				c.warn(delayNode, "keepalived ignores preempt_delay with nopreempt; so does the converted file")
				in.preemptDelay = 0
			}
		}
	}

	if in.version == 2 && in.advert%time.Second != 0 {
		r := (in.advert + time.Second/2) / time.Second * time.Second
		if r == 0 {
			r = time.Second
		}
		in.note("advert_interval", "advert_int %s: version 2 carries whole seconds; keepalived rounds it to %s", duration(in.advert), duration(r))
		in.advert = r
	}
	if in.version == 2 && in.advert > 255*time.Second {
		in.advert = 255 * time.Second
	}
	if in.version == 3 && in.advert%(10*time.Millisecond) != 0 {
		in.advert = in.advert.Round(10 * time.Millisecond)
	}
	if !c.versionSet && versionNode == nil && in.family != familyIPv6 {
		in.note("version", "keepalived's default; vipd's default is 3")
	}
	if in.family == familyIPv6 && len(in.peers) > 0 {
		in.note("unicast_peers", "keepalived nodes that stay its peers (a rolling migration) need unicast_ttl 255 and a global unicast_src_ip: "+
			"vipd takes IPv6 unicast adverts only with hop limit 255 from a listed peer, and keepalived sends hop limit 64 from its link-local by default")
	}

	if checksumAsV2 != nil {
		if in.version == 3 {
			in.v3MessageOnly = true
		} else {
			c.warn(checksumAsV2, "applies to version 3 only; ignored")
		}
	}

	switch {
	case authType == "" && in.authPass != "":
		c.warn(n, "auth_pass without auth_type; keepalived sends no authentication")
		in.authPass = ""
	case authType == "AH":
		c.drop(authNode, "vipd has no IPsec AH authentication; the converted instance sends none, and a keepalived peer using AH will not accept it")
		in.authPass = ""
	case authType == "PASS" && in.version == 3:
		c.warn(authNode, "keepalived ignores authentication with version 3; so does the converted file")
		in.authPass = ""
	case authType == "PASS" && in.authPass == "":
		c.warn(authNode, "auth_type PASS without auth_pass; keepalived sends no authentication")
	case authType == "PASS":
		if len(in.authPass) > 8 {
			in.note("auth_pass", "auth_pass was %d bytes; keepalived sends only the first 8, which are written here", len(in.authPass))
			in.authPass = in.authPass[:8]
		}
	case authType != "":
		c.warn(authNode, "%q is not PASS or AH; keepalived ignores it", authType)
		in.authPass = ""
	}

	if !in.hadVIPs || len(in.vips) == 0 {
		in.note("vips", "no virtual_ipaddress: the instance elects and runs its hooks, with no VIP of its own")
	}
	c.instanceTracking(in, weights)
	in.notify = c.notify(notifyNodes)
	c.finishVMAC(in)
	return in
}

// entryWeight reads "NAME weight W [reverse]" in a track_* block.
func (c *conv) entryWeight(a *kaconf.Node, lo, hi int) (int, bool) {
	if len(a.Args) == 0 {
		return 0, false
	}
	if a.Args[0] != "weight" || len(a.Args) < 2 {
		c.warn(a, "expected \"weight N\" after the name; keepalived ignores %q", strings.Join(a.Args, " "))
		return 0, false
	}
	w, err := strconv.Atoi(a.Args[1])
	if err != nil || w < lo || w > hi {
		c.warn(a, "weight %q is not %d..%d; keepalived uses 0", a.Args[1], lo, hi)
		return 0, false
	}
	rev := len(a.Args) > 2 && a.Args[2] == "reverse"
	return w, rev
}

// instanceTracking maps keepalived's weights onto vipd's: keepalived adds
// a positive weight while the tracker is up and a negative one while it is
// down ("reverse" swaps the two); vipd adds a weight while the tracker is
// down. A weight applied while up becomes part of the priority and its
// negation applies while down, so every combination gives the same
// effective priority (both clamp to 1..254).
func (c *conv) instanceTracking(in *instance, ws []weighted) {
	base := in.priority
	offset := 0
	var up []string
	for _, w := range ws {
		switch {
		case w.weight == 0:
			w.set(0)
		case (w.weight > 0) != w.reverse:
			offset += w.weight
			w.set(-w.weight)
			up = append(up, fmt.Sprintf("%s %+d", w.what, w.weight))
		default:
			w.set(w.weight)
		}
	}
	// The instance's own interface is tracked by vipd unless
	// own_interface is false; listing it again is refused.
	kept := in.ifaces[:0]
	for _, t := range in.ifaces {
		if t.name == in.iface && in.ownInterface && t.weight == 0 {
			in.note("track", "track_interface %s: the instance's own interface, which vipd always tracks (carrier loss is fault)", t.name)
			continue
		}
		if t.name == in.iface && in.ownInterface {
			in.ownInterface = false
			in.note("track", "track_interface %s with a weight: own_interface is false so that its weight applies instead of a fault", t.name)
		}
		kept = append(kept, t)
	}
	in.ifaces = kept
	if offset == 0 || base == 255 {
		return
	}
	want := base + offset
	in.priority = min(max(want, 1), 254)
	in.note("priority", "keepalived priority %d with %s added while up; vipd applies weights while down, so the priority includes them and their weights are negated", base, strings.Join(up, ", "))
	if in.priority != want && !sameEffective(base, in.priority, ws) {
		in.note("priority", "keepalived's sum %d is outside 1..254: some combinations of failing trackers give a different effective priority than keepalived's", want)
		c.warn(in.node, "instance %s: priority %d with the positive weights (%d) leaves 1..254; the effective priority differs from keepalived's in some combinations of failing trackers", in.orig, base, want)
	}
}

// sameEffective checks every combination of tracker states (up to 12
// trackers) for the same effective priority in keepalived and vipd.
func sameEffective(base, vbase int, ws []weighted) bool {
	var ts []weighted
	for _, w := range ws {
		if w.weight != 0 {
			ts = append(ts, w)
		}
	}
	if len(ts) > 12 {
		return false
	}
	clamp := func(p int) int { return min(max(p, 1), 254) }
	for mask := 0; mask < 1<<len(ts); mask++ {
		ka, vi := base, vbase
		for i, w := range ts {
			down := mask&(1<<i) != 0
			whileUp := (w.weight > 0) != w.reverse
			if down != whileUp {
				ka += w.weight
			}
			if down {
				if whileUp {
					vi -= w.weight
				} else {
					vi += w.weight
				}
			}
		}
		if clamp(ka) != clamp(vi) {
			return false
		}
	}
	return true
}

// vipEntry reads one virtual_ipaddress line:
// A[/len] [dev X] [label Y] [brd B] [scope S] ...
func (c *conv) vipEntry(in *instance, a *kaconf.Node) (vip, bool) {
	v := vip{addr: a.Keyword}
	addrText, _, _ := strings.Cut(a.Keyword, "/")
	addr, ok := parseAddr(addrText)
	if !ok {
		c.warn(a, "not an address; keepalived ignores the line")
		return v, false
	}
	pfx, err := netip.ParsePrefix(a.Keyword)
	if !strings.Contains(a.Keyword, "/") {
		pfx, err = addr.Prefix(addr.BitLen()) // /32, or /128 for IPv6
	}
	if err != nil {
		c.warn(a, "%q is not an address/prefix; keepalived ignores the line", a.Keyword)
		return v, false
	}
	if six := addr.Is6(); six {
		if p := c.ipv6VIP(a, pfx); p != pfx {
			pfx, v.addr = p, p.String()
		}
	} else if pfx.Bits() < 31 && (addr == broadcast(pfx) || addr == pfx.Masked().Addr()) {
		// The kernel takes it, but such an address is a subnet's broadcast
		// or network address as well: vipd refuses it as a VIP.
		which := "broadcast"
		if addr == pfx.Masked().Addr() {
			which = "network"
		}
		c.drop(a, "the %s address of %s, which vipd refuses as a VIP; written as %s/32, so the VIP brings no on-link route for %s", which, pfx.Masked(), addr, pfx.Masked())
		pfx = netip.PrefixFrom(addr, 32)
		v.addr = addr.String()
	}
	var brd, scope, label string
	for i := 0; i < len(a.Args); i++ {
		key := a.Args[i]
		val := ""
		switch key {
		case "dev", "label", "brd", "broadcast", "scope", "peer", "preferred_lft", "valid_lft", "metric", "table", "protocol":
			if i+1 >= len(a.Args) {
				c.warn(a, "%s without a value; keepalived refuses the address", key)
				return v, false
			}
			val = a.Args[i+1]
			i++
		}
		switch key {
		case "dev":
			if val != in.iface {
				v.iface = val
			}
		case "label":
			label = val
		case "brd", "broadcast":
			brd = val
		case "scope":
			scope = val
		case "use_vmac":
			in.vmac.vipVMAC = append(in.vmac.vipVMAC, a)
		case "no_track":
			in.note("vips", "%s no_track: vipd does not put the instance in fault when a VIP's interface goes down", a.Keyword)
		case "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "peer", "preferred_lft", "valid_lft", "metric", "table", "protocol":
			c.drop(a, "%s %s: vipd adds the address without this option", key, val)
		default:
			c.drop(a, "%q: unknown address option; left out", key)
		}
	}
	if brd != "" && addr.Is6() {
		c.drop(a, "brd %s: IPv6 has no broadcast address; left out", brd)
	} else if brd != "" && brd != "+" {
		if b, ok := parseAddr(brd); !ok || b != broadcast(pfx) {
			c.drop(a, "brd %s: vipd sets the usual broadcast address of the prefix (%s)", brd, broadcast(pfx))
		}
	}
	if scope != "" && scope != "global" && scope != "0" {
		c.drop(a, "scope %s: vipd adds addresses with scope global", scope)
	}
	if label != "" && addr.Is6() {
		c.drop(a, "label %s: Linux keeps no label on an IPv6 address; left out", label)
	} else if label != "" {
		dev := in.iface
		if v.iface != "" {
			dev = v.iface
		}
		if !strings.HasPrefix(label, dev+":") || len(label) > 15 || len(label) == len(dev)+1 {
			c.drop(a, "label %s: a label must be the interface's name, ':' and a suffix, at most 15 bytes; left out", label)
		} else {
			v.label = label
		}
	}
	return v, true
}

// broadcast is the directed broadcast address of p (shorter than /31).
func broadcast(p netip.Prefix) netip.Addr {
	if p.Bits() >= 31 {
		return netip.Addr{}
	}
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// sameAddr compares the addresses of two "A[/len]" entries.
func sameAddr(a, b string) bool {
	a, _, _ = strings.Cut(a, "/")
	b, _, _ = strings.Cut(b, "/")
	return a == b
}

// refWeight is the weight of a track_script or track_process entry a: the
// definition's own (dw, drev) unless the entry gives one, within ±limit.
// set writes the weight vipd ends up using.
func (c *conv) refWeight(a *kaconf.Node, dw int, drev bool, limit int, kind string, set func(int)) weighted {
	w, rev := dw, drev
	if len(a.Args) > 0 {
		w, rev = c.entryWeight(a, -limit, limit)
	}
	return weighted{weight: w, reverse: rev, what: kind + " " + a.Keyword, set: set}
}
