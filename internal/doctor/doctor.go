package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
	"github.com/vipd/vipd/vrrp"
)

// The levels of a Verdict.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "FAIL" // vipd cannot work as configured here
)

// Verdict is one finding.
type Verdict struct {
	Level string // OK, Warn or Fail
	What  string // what was found, naming the instance or interface
	Fix   string // what to do about it; empty when nothing
}

// String is the verdict as vipd doctor prints it: the level, the finding,
// and an indented "fix:" line if there is one.
func (v Verdict) String() string {
	s := fmt.Sprintf("%-4s  %s", v.Level, v.What)
	if v.Fix != "" {
		s += "\n      fix: " + v.Fix
	}
	return s
}

// Run checks this host for cfg's instances and returns the findings in
// order: each VIP documented, then per interface its link, its addresses,
// the kernel settings that matter to VRRP and ARP, and who advertises the
// instances' VRIDs while it listens for listenFor (0: three advert
// intervals and 0.5 s, at most 10 s). It needs CAP_NET_ADMIN and
// CAP_NET_RAW to read addresses and hear adverts, and says so when it
// lacks them.
func Run(cfg *config.Config, listenFor time.Duration) []Verdict {
	return doctor{cfg: cfg, sysctl: readSysctl, lookupLink: lookupVMAC, listenFor: listenFor}.run()
}

type doctor struct {
	cfg        *config.Config
	sysctl     func(name string) (int, error)
	lookupLink func(name string) (*vmacLink, error) // nil, nil: no such link
	listenFor  time.Duration
}

func readSysctl(name string) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	if errors.Is(err, fs.ErrNotExist) {
		// An interface name with a dot (vrrp4.51): net.ipv4.conf.<name>.<key>
		// is net/ipv4/conf/<name>/<key>.
		for _, pre := range []string{"net.ipv4.conf.", "net.ipv6.conf."} {
			if rest, ok := strings.CutPrefix(name, pre); ok {
				if i := strings.LastIndexByte(rest, '.'); i > 0 {
					b, err = os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(pre, ".", "/"), rest[:i], rest[i+1:]))
				}
			}
		}
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func (d doctor) run() []Verdict {
	var vs []Verdict
	ifaces := map[string][]config.Instance{}
	var order []string
	for _, in := range d.cfg.Instances {
		if _, ok := ifaces[in.Interface]; !ok {
			order = append(order, in.Interface)
		}
		ifaces[in.Interface] = append(ifaces[in.Interface], in)
		vs = append(vs, documented(in, d.cfg.File)...)
	}
	mgr, err := vip.NewManager()
	if err != nil {
		return append(vs, Verdict{Fail, "netlink: " + err.Error(), "run vipd doctor as root (or with CAP_NET_ADMIN)"})
	}
	defer mgr.Close()
	for _, name := range order {
		vs = append(vs, d.checkInterface(mgr, name, ifaces[name])...)
	}
	return vs
}

// documented asks for a description and an owner on every VIP: an alias
// nobody can explain is how a decommissioned service keeps taking traffic.
func documented(in config.Instance, file string) []Verdict {
	var vs []Verdict
	for _, v := range in.VIPs {
		if v.Description == "" || v.Owner == "" {
			vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: VIP %s has no description or owner", in.Name, v.Address),
				fmt.Sprintf("add description: and owner: to it (%s:%d)", file, v.Line)})
		}
	}
	return vs
}

func (d doctor) checkInterface(mgr *vip.Manager, name string, insts []config.Instance) []Verdict {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return []Verdict{{Fail, fmt.Sprintf("interface %s: %v", name, err), "fix the interface: name in the config, or create the interface"}}
	}
	var vs []Verdict
	switch {
	case ifi.Flags&net.FlagUp == 0:
		vs = append(vs, Verdict{Fail, fmt.Sprintf("interface %s is down", name), "ip link set " + name + " up"})
	case ifi.Flags&net.FlagRunning == 0:
		vs = append(vs, Verdict{Fail, fmt.Sprintf("interface %s has no carrier (instances stay in fault)", name), "check the cable, switch port or virtual link"})
	default:
		vs = append(vs, Verdict{OK, fmt.Sprintf("interface %s is up with carrier", name), ""})
	}
	addrs, err := mgr.List(ifi.Index)
	if err != nil {
		return append(vs, Verdict{Fail, err.Error(), ""})
	}
	configured := map[netip.Addr]bool{}
	for _, in := range insts {
		for _, v := range in.VIPs {
			configured[v.Address.Addr()] = true
		}
	}
	fams := advertFamilies(insts)
	sources := map[netip.Addr]bool{}
	for _, fam := range fams {
		if fam == config.FamilyIPv6 && !slices.ContainsFunc(insts, func(in config.Instance) bool {
			return in.Family() == config.FamilyIPv6 && !in.SendsFromGlobal6()
		}) {
			continue // every IPv6 instance here sends from a global address (below): no link-local needed
		}
		src, sv := sourceVerdict(name, fam, addrs, configured)
		vs = append(vs, sv)
		if src.IsValid() {
			sources[src] = true
		}
	}
	if slices.ContainsFunc(insts, func(in config.Instance) bool { return in.SendsFromGlobal6() }) {
		src, sv := global6Verdict(name, addrs, configured)
		vs = append(vs, sv)
		if src.IsValid() {
			sources[src] = true
		}
	}
	for _, a := range addrs {
		if !unowned(a.Prefix.Addr(), sources, fams, configured) {
			continue
		}
		vs = append(vs, Verdict{Warn, fmt.Sprintf("interface %s carries %s, which no vipd instance owns", name, a.Prefix),
			"if it belongs to a decommissioned service, remove it (ip addr del " + a.Prefix.String() + " dev " + name + "); else document it"})
	}
	vmacParent := slices.ContainsFunc(insts, func(in config.Instance) bool { return in.VirtualMAC })
	vs = append(vs, d.kernelSettings(name, vmacParent)...)
	if slices.Contains(fams, config.FamilyIPv6) || carriesIPv6(insts) {
		vs = append(vs, d.ipv6Settings(name)...)
	}
	vv, macvlans := d.virtualMACChecks(name, ifi.Index, insts)
	vs = append(vs, vv...)
	// The VIPs of a virtual-MAC instance are on its macvlan.
	held := slices.Clone(addrs)
	for _, idx := range macvlans {
		if as, err := mgr.List(idx); err == nil {
			held = append(held, as...)
		}
	}
	vs = append(vs, sharedSubnet(name, addrs, configured, insts)...)
	lv, seen := d.listenAll(ifi, fams, insts)
	vs = append(vs, lv...)
	return append(vs, d.reachability(ifi, insts, held, seen)...)
}

// kernelSettings reports the sysctls that decide whether adverts and ARP
// behave as vipd expects. On the parent of a virtual MAC (vmacParent) the
// ARP ones are judged by vmacSysctls instead, against what vipd sets.
func (d doctor) kernelSettings(ifname string, vmacParent bool) []Verdict {
	get := func(key string) (int, bool) {
		all, err1 := d.sysctl("net.ipv4.conf.all." + key)
		dev, err2 := d.sysctl("net.ipv4.conf." + ifname + "." + key)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return max(all, dev), true
	}
	var vs []Verdict
	if rp, ok := get("rp_filter"); ok {
		if rp == 1 {
			vs = append(vs, Verdict{Warn, fmt.Sprintf("rp_filter is strict (1) on %s: adverts or client traffic arriving on an unexpected interface are dropped", ifname),
				"sysctl -w net.ipv4.conf." + ifname + ".rp_filter=2 (loose), and the same for all"})
		} else {
			vs = append(vs, Verdict{OK, fmt.Sprintf("rp_filter is %d on %s", rp, ifname), ""})
		}
	}
	if ai, ok := get("arp_ignore"); ok && !vmacParent {
		if ai > 1 {
			vs = append(vs, Verdict{Warn, fmt.Sprintf("arp_ignore is %d on %s: the kernel may not answer ARP for a VIP", ai, ifname),
				"sysctl -w net.ipv4.conf." + ifname + ".arp_ignore=0 (or 1 for LVS-style setups)"})
		} else {
			vs = append(vs, Verdict{OK, fmt.Sprintf("arp_ignore is %d on %s", ai, ifname), ""})
		}
	}
	if aa, ok := get("arp_announce"); ok && !vmacParent {
		if aa == 0 {
			vs = append(vs, Verdict{Warn, fmt.Sprintf("arp_announce is 0 on %s: the host may send its own ARP requests from a VIP, which peers then cache", ifname),
				"sysctl -w net.ipv4.conf." + ifname + ".arp_announce=2"})
		} else {
			vs = append(vs, Verdict{OK, fmt.Sprintf("arp_announce is %d on %s", aa, ifname), ""})
		}
	}
	if af, ok := get("arp_filter"); ok && !vmacParent {
		if af == 1 {
			vs = append(vs, Verdict{Warn, fmt.Sprintf("arp_filter is 1 on %s: the kernel answers ARP here only when its route back to the asker leaves through %s, so a VIP can go unanswered for clients routed another way", ifname, ifname),
				"sysctl -w net.ipv4.conf." + ifname + ".arp_filter=0 and net.ipv4.conf.all.arp_filter=0, unless several interfaces share the subnet on purpose (then check reachability from a remote host)"})
		} else {
			vs = append(vs, Verdict{OK, fmt.Sprintf("arp_filter is %d on %s", af, ifname), ""})
		}
	}
	if nb, err := d.sysctl("net.ipv4.ip_nonlocal_bind"); err == nil {
		if nb == 0 {
			vs = append(vs, Verdict{Warn, "ip_nonlocal_bind is 0: services on a backup cannot bind a VIP before it arrives",
				"sysctl -w net.ipv4.ip_nonlocal_bind=1, if a service must listen on the VIP"})
		} else {
			vs = append(vs, Verdict{OK, "ip_nonlocal_bind is 1", ""})
		}
	}
	return vs
}

type heard struct {
	src      netip.Addr
	addrs    []netip.Addr
	lastPrio uint8
}

// listen hears the segment for a while and reports who advertises our
// VRIDs: nobody (multicast blocked, or no peer), one master, or more than
// one (a split brain, or a foreign router using our VRID).
func (d doctor) listen(ifi *net.Interface, fam config.Family, insts []config.Instance) ([]Verdict, map[uint8]map[netip.Addr]*heard) {
	dur := d.listenFor
	if dur == 0 {
		var longest time.Duration
		for _, in := range insts {
			longest = max(longest, in.AdvertInterval)
		}
		dur = min(3*longest+500*time.Millisecond, 10*time.Second)
	}
	listen := vrrp.ListenConn
	if fam == config.FamilyIPv6 {
		listen = vrrp.ListenConn6
	}
	conn, err := listen(ifi)
	if err != nil {
		return []Verdict{{Fail, fmt.Sprintf("cannot listen for adverts on %s: %v", ifi.Name, err), "run vipd doctor as root (or with CAP_NET_RAW)"}}, nil
	}
	done := make(chan struct{})
	seen := map[uint8]map[netip.Addr]*heard{}
	go func() {
		defer close(done)
		rb := vrrp.NewRecvBatch()
		var a vrrp.Advert
		for {
			if err := conn.ReadBatch(rb); err != nil {
				return
			}
			for i := 0; i < rb.N; i++ {
				if fam == config.FamilyIPv6 {
					hear6(seen, &a, rb.Datagram(i), rb.Source(i), rb.Control(i))
				} else {
					hear(seen, &a, rb.Datagram(i))
				}
			}
		}
	}()
	time.Sleep(dur)
	conn.Close()
	<-done
	return heardVerdicts(ifi.Name, fam, insts, seen, dur), seen
}

// hear records one datagram if it is a valid advert with TTL 255.
func hear(seen map[uint8]map[netip.Addr]*heard, a *vrrp.Advert, dgram []byte) {
	b, src, dst, ttl, ok := vrrp.ParseIPv4(dgram)
	if !ok || ttl != vrrp.TTL {
		return
	}
	if _, err := a.Unmarshal(b, src, dst); err != nil {
		return
	}
	record(seen, a, src)
}

// record notes advert a from src.
func record(seen map[uint8]map[netip.Addr]*heard, a *vrrp.Advert, src netip.Addr) {
	byVRID := seen[a.VRID]
	if byVRID == nil {
		byVRID = map[netip.Addr]*heard{}
		seen[a.VRID] = byVRID
	}
	h := byVRID[src]
	if h == nil {
		h = &heard{src: src, addrs: slices.Clone(a.Addresses)}
		byVRID[src] = h
	}
	h.lastPrio = a.Priority
}

// heardVerdicts judges what a listen heard for each instance.
func heardVerdicts(ifname string, fam config.Family, insts []config.Instance, seen map[uint8]map[netip.Addr]*heard, dur time.Duration) []Verdict {
	var vs []Verdict
	group := "224.0.0.18"
	if fam == config.FamilyIPv6 {
		group = "ff02::12"
	}
	for _, in := range insts {
		hs := seen[in.VRID]
		var srcs []string
		for _, h := range hs {
			if h.lastPrio > 0 {
				srcs = append(srcs, fmt.Sprintf("%s (priority %d)", h.src, h.lastPrio))
			}
		}
		slices.Sort(srcs)
		switch {
		case len(srcs) == 0:
			vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: no advert for VRID %d heard on %s in %v", in.Name, in.VRID, ifname, dur),
				"expected only if this node is master with no peer running; otherwise let IP protocol 112 to " + group + " through firewalls and turn off multicast snooping without a querier"})
		case len(srcs) == 1:
			vs = append(vs, Verdict{OK, fmt.Sprintf("instance %s: VRID %d advertised by %s", in.Name, in.VRID, srcs[0]), ""})
		default:
			vs = append(vs, Verdict{Fail, fmt.Sprintf("instance %s: VRID %d advertised by %d routers at once: %s", in.Name, in.VRID, len(srcs), strings.Join(srcs, ", ")),
				"two masters: a split brain (peers cannot hear each other) or a foreign router using this VRID; pick a free VRID or fix the path between the peers"})
		}
		want := map[netip.Addr]bool{}
		for _, v := range in.VIPs {
			if !v.NotAdvertised {
				want[v.Address.Addr()] = true
			}
		}
		for _, h := range hs {
			if !sameSet(want, h.addrs) {
				vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: %s advertises VRID %d with addresses %v, ours are %v", in.Name, h.src, in.VRID, h.addrs, keys(want)),
					"make the VIP lists of the peers' configs identical (or this is a foreign router on our VRID)"})
			}
		}
	}
	return vs
}

func sameSet(want map[netip.Addr]bool, got []netip.Addr) bool {
	if len(got) != len(want) {
		return false
	}
	for _, a := range got {
		if !want[a] {
			return false
		}
	}
	return true
}

func keys(m map[netip.Addr]bool) []netip.Addr {
	var ks []netip.Addr
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b netip.Addr) int { return a.Compare(b) })
	return ks
}
