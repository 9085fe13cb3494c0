package pair

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/e2e/lab"
)

// FRR's vrrpd as a peer. Debian's frr package installs the daemons in
// frrDir; the lab runs zebra and vrrpd directly (no systemd, no
// watchfrr) in a node's namespace, each with -N <namespace>, FRR's
// pathspace: their pid files and sockets (zserv.api, *.vty) go to
// frrRunDir/<namespace>, apart from any other node's FRR and from the
// host's. The daemons drop privileges to the frr user, so that directory
// belongs to frr and holds a copy of the configuration the test wrote
// into the pair's directory; they log to stdout, into the node's log.
//
// vrrpd does not create the macvlan that carries the virtual MAC, nor
// does it add or remove the VIPs: StartFRR creates FRRLink on eth0 in
// bridge mode (a backup must still hear adverts) with VirtualMAC and
// the VIPs, and vrrpd finds it by its MAC and sets it protodown while
// backup, up while master.
const (
	frrDir    = "/usr/lib/frr"
	frrRunDir = "/var/run/frr"
	frrUser   = "frr"
)

// FRRLink is the macvlan that carries the VIPs of FRR's VRID 51 (IPv4).
const FRRLink = "vrrp4-51"

// VirtualMAC is RFC 5798's IPv4 virtual MAC of VRID 51, FRRLink's MAC.
var VirtualMAC = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 51}

// FRRLink6 is the macvlan that carries the IPv6 VIPs of FRR's VRID 51.
const FRRLink6 = "vrrp6-51"

// VirtualMAC6 is RFC 5798's IPv6 virtual MAC of VRID 51, FRRLink6's MAC.
var VirtualMAC6 = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, 51}

// FRRLinkLocal is the link-local address frrMacvlan gives FRRLink6 on n:
// fe80::5e:51:1 on A, fe80::5e:51:2 on B. vrrpd sends its IPv6 adverts
// from it, so the two nodes' must differ, and the one the kernel would
// derive from VirtualMAC6 is the same on both (FRR's documentation warns
// of it): FRRLink6 gets addrgenmode none and this address instead.
func (p *Pair) FRRLinkLocal(n *Node) netip.Addr {
	last := byte(1)
	if n == p.B {
		last = 2
	}
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 10: 0x00, 11: 0x5e, 12: 0x00, 13: 0x51, 14: 0x00, 15: last})
}

// FRRPath returns the directory holding FRR's zebra and vrrpd.
func FRRPath() (string, error) {
	for _, d := range []string{"zebra", "vrrpd"} {
		if _, err := os.Stat(filepath.Join(frrDir, d)); err != nil {
			return "", fmt.Errorf("FRR is not installed (apt-get install frr): %w", err)
		}
	}
	return frrDir, nil
}

// FRRConfig is what varies between the vrrpd.conf files of the pair's
// nodes. ConfigureFRR writes an instance that agrees with Configure's
// vipd instance on the wire: VRID 51 on eth0, VRRPv3.
type FRRConfig struct {
	Priority       uint8
	AdvertInterval time.Duration // multiples of 10ms; default 1s
	NoPreempt      bool          // no vrrp 51 preempt
	VIPs           []netip.Addr  // default: VIP
	Extra          string        // more lines of "interface eth0", indented by one space
}

// frrRun is what the pair knows of FRR running on a node: vrrpd is the
// node's Proc, zebra is here.
type frrRun struct {
	zebra *lab.Proc
}

// FRRConf returns the path of n's vrrpd.conf in the pair's directory.
func (p *Pair) FRRConf(n *Node) string {
	return filepath.Join(p.Dir, n.Host.Name+".vrrpd.conf")
}

// frrPathspace is FRR's pathspace directory for n's namespace.
func frrPathspace(n *Node) string { return filepath.Join(frrRunDir, n.Host.NS) }

// ConfigureFRR writes n's vrrpd.conf.
func (p *Pair) ConfigureFRR(n *Node, c FRRConfig) error {
	if c.AdvertInterval == 0 {
		c.AdvertInterval = time.Second
	}
	if len(c.VIPs) == 0 {
		c.VIPs = []netip.Addr{VIP}
	}
	if c.AdvertInterval%(10*time.Millisecond) != 0 {
		return fmt.Errorf("FRR on %s: adverts in centiseconds only, not %v", n.Host.Name, c.AdvertInterval)
	}
	n.Priority = c.Priority
	n.frrVIPs = c.VIPs
	var b strings.Builder
	// debug vrrp protocol logs the state machine, zebra the protodown
	// requests; packets and sockets would fill the log.
	fmt.Fprintf(&b, "hostname %s\ndebug vrrp protocol\ndebug vrrp zebra\n!\ninterface eth0\n", n.Host.NS)
	fmt.Fprintf(&b, " vrrp 51 version 3\n vrrp 51 priority %d\n vrrp 51 advertisement-interval %d\n",
		c.Priority, c.AdvertInterval.Milliseconds())
	if c.NoPreempt {
		b.WriteString(" no vrrp 51 preempt\n")
	}
	b.WriteString(c.Extra)
	// The first address line starts the virtual router: last.
	for _, v := range c.VIPs {
		kw := "ip"
		if v.Is6() {
			kw = "ipv6"
		}
		fmt.Fprintf(&b, " vrrp 51 %s %s\n", kw, v)
	}
	b.WriteString("!\n")
	return os.WriteFile(p.FRRConf(n), []byte(b.String()), 0o600)
}

// StartFRR runs FRR's zebra and vrrpd on n in the foreground, logging to
// n's log, and returns once vrrpd is up. The first start on n creates
// FRRLink. Stop and Kill then act on FRR instead of vipd.
func (p *Pair) StartFRR(n *Node) error {
	if n.Proc != nil && !n.Proc.Exited() {
		return fmt.Errorf("%s on %s is already running (pid %d)", n.Daemon(), n.Host.Name, n.Proc.PID)
	}
	dir, err := FRRPath()
	if err != nil {
		return err
	}
	conf, err := os.ReadFile(p.FRRConf(n))
	if err != nil {
		return fmt.Errorf("FRR on %s: %w", n.Host.Name, err)
	}
	if err := p.frrMacvlan(n); err != nil {
		return err
	}
	run := frrPathspace(n)
	if err := frrPrepare(run, map[string][]byte{
		"vrrpd.conf": conf,
		"zebra.conf": fmt.Appendf(nil, "hostname %s\n", n.Host.NS),
	}); err != nil {
		return fmt.Errorf("FRR on %s: %w", n.Host.Name, err)
	}
	p.frrDirs = append(p.frrDirs, run)
	if f, err := os.OpenFile(n.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "---- frr start %s\n%s", time.Now().Format(time.RFC3339Nano), conf)
		f.Close()
	}
	args := func(daemon string) []string {
		return []string{filepath.Join(dir, daemon), "-N", n.Host.NS, "-f", filepath.Join(run, daemon+".conf"),
			"-P", "0", "--log", "stdout", "--log-level", "debug"}
	}
	zebra, err := n.Host.Start(n.Log, args("zebra")...)
	if zebra != nil {
		n.frr = &frrRun{zebra: zebra}
		n.ka.release()
		n.ka = nil
	}
	if err != nil {
		return err
	}
	if err := frrAwait(n, zebra, "zebra", filepath.Join(run, "zserv.api")); err != nil {
		return err
	}
	vrrpd, err := n.Host.Start(n.Log, args("vrrpd")...)
	if vrrpd != nil {
		n.Proc = vrrpd
	}
	if err != nil {
		return err
	}
	return frrAwait(n, vrrpd, "vrrpd", filepath.Join(run, "vrrpd.vty"))
}

// frrAwait waits up to 5 s for path, which proc creates once it is up.
func frrAwait(n *Node, proc *lab.Proc, daemon, path string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if proc.Exited() {
			code, _ := proc.Wait(0)
			return fmt.Errorf("FRR's %s on %s exited %d at start-up; see %s", daemon, n.Host.Name, code, n.Log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FRR's %s on %s made no %s within 5s: %w", daemon, n.Host.Name, path, ErrTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// frrPrepare makes FRR's pathspace directory afresh (a killed run leaves
// pid files and sockets), owned by the frr user, with files in it.
func frrPrepare(dir string, files map[string][]byte) error {
	u, err := user.Lookup(frrUser)
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(frrRunDir, 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		return err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	for name, b := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o640); err != nil {
			return err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// frrMacvlan creates, once each, FRRLink on n's eth0 if n's FRR has IPv4
// VIPs and FRRLink6 if it has IPv6 ones: bridge mode, the family's
// virtual MAC, the VIPs, up. vrrpd sets them protodown until it is master.
//
// FRRLink: FRR's documentation adds addrgenmode random, for IPv6
// link-locals that differ between routers; an IPv4-only host has IPv6
// off, where the kernel refuses it, and FRRLink needs none. eth0 gets
// arp_ignore=1: the VIPs are local addresses of the node even while
// FRRLink is protodown, and eth0 would otherwise answer ARP for them
// with its own MAC. And arp_announce=2: the node's own ARP requests (for
// the client, as it answers a ping to the VIP) would otherwise leave eth0
// with the VIP as sender address and eth0's MAC, and move the client's
// entry for the VIP off the virtual MAC.
//
// FRRLink6 (the host must have IPv6 on, lab.Host.EnableIPv6, whose
// accept_dad=0 it inherits): addrgenmode none and FRRLinkLocal, the
// source of vrrpd's IPv6 adverts, nodad; the VIPs as /128, nodad (a /64
// there would route the node's own traffic to the segment through a link
// that is down while backup). Neighbour solicitations are answered per
// interface, so eth0 never answers for a VIP on FRRLink6.
func (p *Pair) frrMacvlan(n *Node) error {
	var v4, v6 []netip.Addr
	for _, v := range n.frrVIPs {
		if v.Is6() {
			v6 = append(v6, v)
		} else {
			v4 = append(v4, v)
		}
	}
	var cmds [][]string
	if _, err := n.Host.Run("ip", "link", "show", "dev", FRRLink); err != nil && len(v4) > 0 {
		cmds = append(cmds,
			[]string{"sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2"},
			[]string{"ip", "link", "add", FRRLink, "link", "eth0", "type", "macvlan", "mode", "bridge"},
			[]string{"ip", "link", "set", "dev", FRRLink, "address", VirtualMAC.String()})
		for _, v := range v4 {
			cmds = append(cmds, []string{"ip", "addr", "add", v.String() + "/32", "dev", FRRLink})
		}
		cmds = append(cmds, []string{"ip", "link", "set", "dev", FRRLink, "up"})
	}
	if _, err := n.Host.Run("ip", "link", "show", "dev", FRRLink6); err != nil && len(v6) > 0 {
		cmds = append(cmds,
			[]string{"ip", "link", "add", FRRLink6, "link", "eth0", "type", "macvlan", "mode", "bridge"},
			[]string{"ip", "link", "set", "dev", FRRLink6, "address", VirtualMAC6.String(), "addrgenmode", "none"},
			[]string{"ip", "-6", "addr", "add", p.FRRLinkLocal(n).String() + "/64", "dev", FRRLink6, "nodad"})
		for _, v := range v6 {
			cmds = append(cmds, []string{"ip", "-6", "addr", "add", v.String() + "/128", "dev", FRRLink6, "nodad"})
		}
		cmds = append(cmds, []string{"ip", "link", "set", "dev", FRRLink6, "up"})
	}
	for _, c := range cmds {
		if _, err := n.Host.Run(c...); err != nil {
			return fmt.Errorf("FRR's macvlan on %s: %w", n.Host.Name, err)
		}
	}
	return nil
}

// FRRStatus returns what FRR's `show vrrp` says of VRID 51's IPv4
// router on n: "Master", "Backup" or "Initialize".
func (p *Pair) FRRStatus(n *Node) (string, error) { return p.frrStatus(n, "v4") }

// FRRStatus6 is FRRStatus for VRID 51's IPv6 router.
func (p *Pair) FRRStatus6(n *Node) (string, error) { return p.frrStatus(n, "v6") }

func (p *Pair) frrStatus(n *Node, fam string) (string, error) {
	out, err := n.Host.Run("vtysh", "-N", n.Host.NS, "-c", "show vrrp 51")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "Status" && f[1] == "("+fam+")" {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("FRR on %s: no %s status in `show vrrp 51`:\n%s", n.Host.Name, fam, out)
}

// stopFRR is Stop for FRR: SIGTERM to vrrpd, which shuts its virtual
// router down (as master, a priority-0 advert), then to zebra.
func (p *Pair) stopFRR(n *Node) error {
	var errs []error
	for _, s := range []struct {
		daemon string
		proc   *lab.Proc
	}{{"vrrpd", n.Proc}, {"zebra", n.frr.zebra}} {
		if err := s.proc.Signal(syscall.SIGTERM); err != nil {
			errs = append(errs, fmt.Errorf("stop FRR's %s on %s: %w", s.daemon, n.Host.Name, err))
			continue
		}
		code, err := s.proc.Wait(5 * time.Second)
		if err == nil && code != 0 {
			err = fmt.Errorf("FRR's %s on %s exited %d after SIGTERM", s.daemon, n.Host.Name, code)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killFRR is Kill for FRR: SIGKILL to vrrpd and zebra. FRRLink stays as
// vrrpd left it, up with the VIPs if it was master.
func (p *Pair) killFRR(n *Node) error {
	return errors.Join(n.Proc.Kill(), n.frr.zebra.Kill())
}

// VMACLink is the macvlan of vipd's instance with virtual_mac (VRID 51,
// the default virtual_mac_name), and of keepalived's with
// KeepalivedConfig.VirtualMAC.
const VMACLink = "vrrp4.51"

// VMACLink6 is the macvlan of vipd's IPv6 instance with virtual_mac (VRID
// 51), with VirtualMAC6 (the MAC of FRRLink6 too); see Node.UseVirtualMAC.
const VMACLink6 = "vrrp6.51"

// UseVirtualMAC tells Holders and ServiceMAC that n's daemon, configured
// by the test itself, keeps its VIPs on the macvlan link (VMACLink or
// VMACLink6); "" is without the virtual MAC.
func (n *Node) UseVirtualMAC(link string) { n.vmac, n.vmacLink = link != "", link }

// VirtualMACLink is the macvlan n's vipd or keepalived keeps its VIPs on
// (the configuration last written, or UseVirtualMAC), "" without the
// virtual MAC.
func (n *Node) VirtualMACLink() string {
	if !n.vmac {
		return ""
	}
	return n.macvlan()
}

// macvlan is the macvlan n's VIPs live on with the virtual MAC.
func (n *Node) macvlan() string {
	if n.vmacLink != "" {
		return n.vmacLink
	}
	return VMACLink
}

// holds reports whether n serves addr now: with FRR, addr on FRRLink (or
// FRRLink6 for an IPv6 addr) and that link up (not protodown, with
// carrier); with vipd's virtual_mac (or keepalived's use_vmac,
// KeepalivedConfig.VirtualMAC), addr on VMACLink and VMACLink up;
// otherwise addr on eth0.
func (n *Node) holds(addr netip.Addr) (bool, error) {
	switch {
	case n.frr != nil:
		link := FRRLink
		if addr.Is6() {
			link = FRRLink6
		}
		present, up, err := n.Host.LinkAddr(link, addr)
		return present && up, err
	case n.vmac:
		present, up, err := n.Host.LinkAddr(n.macvlan(), addr)
		// No macvlan: the daemon is not running, or (a restart) has
		// not made it again yet; it may appear between the two looks.
		var nf netlink.LinkNotFoundError
		if err != nil && (errors.As(err, &nf) || !n.Host.LinkExists(n.macvlan())) {
			return false, nil
		}
		return present && up, err
	}
	return n.Host.HasAddr(addr)
}

// ServiceMAC is the MAC the client should have for the VIP while n is
// master: VirtualMAC with FRR, with vipd's virtual_mac and keepalived's
// use_vmac (the configuration last written), eth0's otherwise.
func (n *Node) ServiceMAC() (net.HardwareAddr, error) {
	if n.vmac && n.macvlan() == VMACLink6 {
		return VirtualMAC6, nil
	}
	if n.frr != nil || n.vmac {
		return VirtualMAC, nil
	}
	return n.Host.MAC()
}
