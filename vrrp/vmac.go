package vrrp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/vipd/vipd/config"
)

// The virtual MAC (virtual_mac): an instance's VIPs live on a macvlan of
// its interface whose MAC is RFC 5798's 00:00:5e:00:01:<VRID>, so clients'
// neighbour entries never change across a failover. The macvlan is made
// at start, in bridge mode (a backup's parent still hears the adverts),
// marked as vipd's by its alias (IFLA_IFALIAS "vipd:<instance>"), and kept
// administratively down while the instance does not want its VIPs: a
// backup's macvlan neither answers ARP for a VIP nor takes its traffic
// (frames to the virtual MAC are not delivered to a down macvlan). The
// reconciler brings it up before adding the VIPs and down after removing
// them. Gratuitous ARP goes out of the macvlan, from the virtual MAC. The
// adverts go out of the parent, on the instance's advert socket, as
// Ethernet frames whose source is the virtual MAC (advertMAC): the
// macvlan is down whenever the instance is not master, and the backup
// must still hear them on the parent (bridge mode passes frames from the
// virtual MAC, its own macvlan's, up to the parent).
//
// Sysctls, so that clients stay on the virtual MAC:
//   - on the parent, recorded and restored: arp_ignore=1 (the parent does
//     not answer for the VIPs, which are not its addresses), arp_filter=1,
//     arp_announce=2 (the host's own ARP requests do not name a VIP as
//     sender with the parent's MAC: keepalived's use_vmac trap). Each is
//     raised only if it is below that value.
//   - on the macvlan, not recorded (they go with it): arp_ignore=1 (it does
//     not answer for the parent's addresses with the virtual MAC),
//     arp_announce=2, accept_local=1, rp_filter=0.
//
// What vipd changed is recorded in state_dir (vmacStateFile) before it
// changes it; at the next start, after a crash, the record's sysctls are
// put back (if nobody changed them since) and its macvlans, and any other
// macvlan with the alias of a configured instance, removed.

// vmacAliasPrefix marks the macvlans vipd made.
const vmacAliasPrefix = "vipd:"

// vmacStateFile is the record of what vipd changed, in state_dir.
const vmacStateFile = "virtual-mac.json"

// virtualMAC is RFC 5798's virtual router MAC for vrid over fam:
// 00:00:5e:00:01:<VRID> for IPv4, 00:00:5e:00:02:<VRID> for IPv6.
func virtualMAC(vrid uint8, fam Family) net.HardwareAddr {
	if fam == FamilyIPv6 {
		return config.VirtualMAC(vrid, config.FamilyIPv6)
	}
	return config.VirtualMAC(vrid, config.FamilyIPv4)
}

// vmacAlias is the alias that marks instance name's macvlan.
func vmacAlias(name string) string { return vmacAliasPrefix + name }

// Macvlan is a macvlan link as the dataplane reports it.
type Macvlan struct {
	LinkInfo
	Alias  string
	Parent int // the parent link's index
}

// vmacDataplane makes and removes macvlans and reads and writes sysctls.
// Only the reconciler and the start-up and stop code that belongs to it
// (this file) call it.
type vmacDataplane interface {
	// AddMacvlan creates a macvlan called name on link parent, in bridge
	// mode, with hardware address mac and alias alias, down.
	AddMacvlan(parent int, name string, mac net.HardwareAddr, alias string) (LinkInfo, error)
	// RemoveMacvlan deletes the link with index if it is a macvlan with
	// alias alias, and refuses otherwise.
	RemoveMacvlan(index int, alias string) error
	// ListMacvlans lists the macvlans whose alias starts with
	// vmacAliasPrefix.
	ListMacvlans() ([]Macvlan, error)
	// SetLinkUp sets the link administratively up or down.
	SetLinkUp(index int, up bool) error
	// ReadSysctl and WriteSysctl read and write the sysctl key (a path
	// under /proc/sys, e.g. "net/ipv4/conf/eth0/arp_ignore").
	ReadSysctl(key string) (string, error)
	WriteSysctl(key, value string) error
}

// vmac6Sysctls are the macvlan's IPv6 settings, in the order they are
// written, before it first comes up. Every node's macvlan of a VRID has
// the same MAC, so nothing may be derived from it: addr_gen_mode=1 (none:
// no EUI-64 link-local fe80::200:5eff:fe00:2<VRID>, which every router's
// macvlan would share; a master would fail duplicate address detection on
// it after a split brain, and with accept_dad=2 lose IPv6 on the link),
// accept_ra=0 and autoconf=0 (no SLAAC address from a router's prefix,
// the same on every node, and no default route through the macvlan).
// The adverts do not need an address there: they leave from the parent's
// link-local (advertMAC), which is each router's own, so the tie-break on
// the source address and the dropping of one's own adverts work as
// without the virtual MAC.
var vmac6Sysctls = []struct {
	key   string
	value int
}{{"addr_gen_mode", 1}, {"accept_ra", 0}, {"autoconf", 0}}

// vmacFamilies reports whether the macvlan of c carries IPv4 and IPv6
// VIPs (those without an interface of their own).
func vmacFamilies(c config.Instance) (has4, has6 bool) {
	for _, v := range c.VIPs {
		if vipIfname(c, v) != c.VirtualMACName {
			continue
		}
		if v.Address.Addr().Unmap().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	return has4, has6
}

// vmacState is an instance's macvlan.
type vmacState struct {
	name  string
	alias string
	mac   net.HardwareAddr // the virtual MAC, the adverts' Ethernet source
	ifc   *iface           // the macvlan, a VIP-only link
	up    bool             // as vipd last set it
}

// advertMAC is the Ethernet source of in's multicast adverts: with
// virtual_mac, while the macvlan is up (the instance holds its VIPs), the
// virtual MAC, as RFC 5798 (7.3) has the master send them, so that the
// switches learn the master's port from every advert (and from the first
// one after a failover or a heal); the priority-0 advert of a resigning
// master, which keeps its VIPs until the new master is heard, too.
// Otherwise nil, the link's own address: in particular the advert a
// yielding master sends on its way out (Machine.becomeBackup), after its
// VIPs are gone; from the virtual MAC it would draw the switches, and the
// clients' traffic, back to a port that no longer answers, until the
// winner's next advert.
func (in *instance) advertMAC() net.HardwareAddr {
	if in.vmac == nil || !in.vmac.up {
		return nil
	}
	return in.vmac.mac
}

// sysctlChange is a sysctl vipd changed: its value before, and what vipd
// set.
type sysctlChange struct {
	Key string `json:"key"`
	Old string `json:"old"`
	Set string `json:"set"`
}

// vmacRecord is what vmacStateFile holds.
type vmacRecord struct {
	Macvlans []vmacRecordLink `json:"macvlans"`
	Sysctls  []sysctlChange   `json:"sysctls"`
}

type vmacRecordLink struct {
	Name  string `json:"name"`
	Alias string `json:"alias"`
}

// vmacFor is where a VIP without an interface of its own lives: the
// instance's macvlan with virtual_mac, else its interface.
func vmacIfname(c config.Instance) string {
	if c.VirtualMAC {
		return c.VirtualMACName
	}
	return c.Interface
}

// anyVMAC reports whether an instance of cfg has virtual_mac.
func anyVMAC(cfg *config.Config) bool {
	return slices.ContainsFunc(cfg.Instances, func(c config.Instance) bool { return c.VirtualMAC })
}

func (n *Node) vmacPath() string { return filepath.Join(n.cfg.StateDir, vmacStateFile) }

// cleanStaleVMACs undoes what a run that did not stop left: the sysctls
// and macvlans of the record, and the macvlans carrying the alias of an
// instance of the configuration. It runs at every start, virtual_mac or
// not, so that turning it off and restarting leaves nothing either.
func (n *Node) cleanStaleVMACs() error {
	var rec vmacRecord
	b, err := os.ReadFile(n.vmacPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("virtual_mac: reading %s: %w", n.vmacPath(), err)
	default:
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("virtual_mac: %s: %w (remove the file after checking the sysctls it lists by hand)", n.vmacPath(), err)
		}
	}
	aliases := map[string]bool{}
	for _, c := range n.cfg.Instances {
		aliases[vmacAlias(c.Name)] = true
	}
	for _, l := range rec.Macvlans {
		aliases[l.Alias] = true
	}
	ls, err := n.dp.ListMacvlans()
	if err != nil {
		return fmt.Errorf("virtual_mac: listing macvlans: %w", err)
	}
	var errs []error
	for _, l := range ls {
		if !aliases[l.Alias] {
			continue
		}
		n.log.Warn("removing stale virtual MAC macvlan", "interface", l.Name, "alias", l.Alias)
		if err := n.dp.RemoveMacvlan(l.Index, l.Alias); err != nil {
			errs = append(errs, fmt.Errorf("virtual_mac: removing stale macvlan %s: %w", l.Name, err))
		}
	}
	errs = append(errs, n.restoreSysctls(rec.Sysctls)...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(n.vmacPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("virtual_mac: %w", err)
	}
	return nil
}

// restoreSysctls puts back each sysctl vipd changed, newest first, unless
// someone changed it since.
func (n *Node) restoreSysctls(cs []sysctlChange) []error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		cur, err := n.dp.ReadSysctl(c.Key)
		if err != nil {
			// The link went, and its settings with it.
			n.log.Info("sysctl to restore is gone", "sysctl", c.Key, "err", err)
			continue
		}
		if cur != c.Set {
			n.log.Warn("sysctl vipd set was changed since; leaving it", "sysctl", c.Key, "vipd_set", c.Set, "now", cur, "before_vipd", c.Old)
			continue
		}
		if err := n.dp.WriteSysctl(c.Key, c.Old); err != nil {
			errs = append(errs, fmt.Errorf("virtual_mac: restoring %s to %s: %w", c.Key, c.Old, err))
		}
	}
	return errs
}

// setupVMACs makes the macvlan of every instance with virtual_mac, after
// the stale clean-up, records them and the parent sysctls it is about to
// change in state_dir, and sets the sysctls. Instances' interfaces must
// have been looked up. On error it undoes what it did.
func (n *Node) setupVMACs() error {
	if err := n.cleanStaleVMACs(); err != nil {
		return err
	}
	// From here on teardownVMACs owns the record.
	n.vmacOwned = true
	if !anyVMAC(n.cfg) {
		return nil
	}
	var rec vmacRecord
	for _, in := range n.insts {
		c := in.cfg
		if !c.VirtualMAC {
			continue
		}
		if li, err := n.dp.LookupLink(c.VirtualMACName); err == nil {
			n.teardownVMACs()
			return fmt.Errorf("%s: virtual_mac: interface %s exists and is not vipd's (no alias %q); remove it or set another virtual_mac_name", n.where(c), li.Name, vmacAlias(c.Name))
		}
		alias := vmacAlias(c.Name)
		mac := virtualMAC(c.VRID, in.family())
		if _, err := n.dp.AddMacvlan(in.ifc.index, c.VirtualMACName, mac, alias); err != nil {
			n.teardownVMACs()
			return fmt.Errorf("%s: virtual_mac: making macvlan %s on %s: %w", n.where(c), c.VirtualMACName, c.Interface, err)
		}
		in.vmac = &vmacState{name: c.VirtualMACName, alias: alias, mac: mac}
		rec.Macvlans = append(rec.Macvlans, vmacRecordLink{Name: c.VirtualMACName, Alias: alias})
	}
	// The parents' sysctls, each once; then the macvlans' own.
	type want struct {
		key   string
		value int
		// optional: a key that may be missing (IPv6 off in the kernel)
		// on a macvlan that carries no IPv6 address.
		optional bool
	}
	var parents, own []want
	seen := map[string]bool{}
	for _, in := range n.insts {
		if in.vmac == nil {
			continue
		}
		has4, has6 := vmacFamilies(in.cfg)
		// The parent's ARP settings matter only where the macvlan
		// carries IPv4 addresses: neighbour discovery answers only for
		// the interface's own addresses, so an IPv6 VIP on the macvlan
		// needs nothing of the parent.
		if p := in.ifc.name; has4 && !seen[p] {
			seen[p] = true
			for _, s := range []want{{key: "arp_ignore", value: 1}, {key: "arp_filter", value: 1}, {key: "arp_announce", value: 2}} {
				parents = append(parents, want{key: "net/ipv4/conf/" + p + "/" + s.key, value: s.value})
			}
		}
		// arp_ignore on the macvlan whatever it carries: up, it would
		// otherwise answer ARP for the parent's addresses with the
		// virtual MAC.
		for _, s := range []want{{key: "arp_ignore", value: 1}, {key: "arp_announce", value: 2}, {key: "accept_local", value: 1}, {key: "rp_filter", value: 0}} {
			own = append(own, want{key: "net/ipv4/conf/" + in.vmac.name + "/" + s.key, value: s.value})
		}
		// No link-local nor autoconfigured address on the macvlan
		// (vmac6Sysctls), set before it first comes up.
		for _, s := range vmac6Sysctls {
			own = append(own, want{key: "net/ipv6/conf/" + in.vmac.name + "/" + s.key, value: s.value, optional: !has6})
		}
		if has6 {
			own = append(own, want{key: "net/ipv6/conf/" + in.vmac.name + "/disable_ipv6", value: 0})
		}
	}
	for _, w := range parents {
		cur, err := n.dp.ReadSysctl(w.key)
		if err != nil {
			n.teardownVMACs()
			return fmt.Errorf("virtual_mac: reading %s: %w", w.key, err)
		}
		if c, err := strconv.Atoi(cur); err == nil && c >= w.value {
			continue // already as strict
		}
		rec.Sysctls = append(rec.Sysctls, sysctlChange{Key: w.key, Old: cur, Set: strconv.Itoa(w.value)})
	}
	n.vmacRec = rec
	if err := writeFileSync(n.vmacPath(), rec); err != nil {
		n.teardownVMACs()
		return fmt.Errorf("virtual_mac: recording what vipd changes: %w", err)
	}
	for _, c := range rec.Sysctls {
		if err := n.dp.WriteSysctl(c.Key, c.Set); err != nil {
			n.teardownVMACs()
			return fmt.Errorf("virtual_mac: setting %s to %s: %w", c.Key, c.Set, err)
		}
	}
	for _, w := range own {
		if err := n.dp.WriteSysctl(w.key, strconv.Itoa(w.value)); err != nil {
			if w.optional {
				n.log.Debug("virtual_mac: IPv6 setting of a macvlan without IPv6 addresses not set", "sysctl", w.key, "err", err)
				continue
			}
			n.teardownVMACs()
			return fmt.Errorf("virtual_mac: setting %s to %d: %w", w.key, w.value, err)
		}
	}
	return nil
}

// teardownVMACs removes the macvlans vipd made and puts back the sysctls
// it changed, then drops the record; what fails stays in the record for
// the next start. It runs once the loop has stopped.
func (n *Node) teardownVMACs() {
	if !n.vmacOwned {
		return // a record of a run before stays for the next start
	}
	keep := n.vmacRec
	keep.Macvlans = nil
	for _, in := range n.insts {
		v := in.vmac
		if v == nil {
			continue
		}
		li, err := n.dp.LookupLink(v.name)
		if err == nil {
			err = n.dp.RemoveMacvlan(li.Index, v.alias)
		}
		if err != nil {
			n.log.Error("removing virtual MAC macvlan failed; the next start removes it", "interface", v.name, "err", err)
			keep.Macvlans = append(keep.Macvlans, vmacRecordLink{Name: v.name, Alias: v.alias})
			continue
		}
		in.vmac = nil
	}
	errs := n.restoreSysctls(n.vmacRec.Sysctls)
	for _, err := range errs {
		n.log.Error("restoring sysctl failed; the next start tries again", "err", err)
	}
	if len(errs) > 0 || len(keep.Macvlans) > 0 {
		if len(errs) == 0 {
			keep.Sysctls = nil
		}
		if err := writeFileSync(n.vmacPath(), keep); err != nil {
			n.log.Error("recording what is left failed", "file", n.vmacPath(), "err", err)
		}
		return
	}
	n.vmacRec = vmacRecord{}
	if err := os.Remove(n.vmacPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.log.Error("removing the virtual MAC record failed", "file", n.vmacPath(), "err", err)
	}
}

// setVMACUp brings in's macvlan up or down, as the reconciler wants its
// VIPs or not. The iface follows at once, so that the link event that
// comes later is not taken for a carrier change.
func (n *Node) setVMACUp(in *instance, up bool) {
	v := in.vmac
	if v == nil || v.ifc == nil || v.up == up {
		return
	}
	if err := n.dp.SetLinkUp(v.ifc.index, up); err != nil {
		n.log.Error("setting virtual MAC macvlan up or down failed", "instance", in.cfg.Name, "interface", v.name, "up", up, "err", err)
		return
	}
	v.up = up
	v.ifc.up = up
}

// writeFileSync writes v as JSON to path, atomically and durably.
func writeFileSync(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// checkVMACReload refuses a configuration that changes what virtual_mac
// made at start: the macvlans are made and removed with the daemon.
func (n *Node) checkVMACReload(cfg *config.Config) []error {
	old := map[string]config.Instance{}
	for _, in := range n.insts {
		old[in.cfg.Name] = in.cfg
	}
	var errs []error
	for _, c := range cfg.Instances {
		o, ok := old[c.Name]
		if !ok && c.VirtualMAC || ok && (o.VirtualMAC != c.VirtualMAC || o.VirtualMACName != c.VirtualMACName || c.VirtualMAC && (o.Interface != c.Interface || o.VRID != c.VRID)) {
			errs = append(errs, fmt.Errorf("instance %s (%s:%d): virtual_mac changes (on, off, its name, interface or VRID) need a restart: the macvlan is made at start", c.Name, cfg.File, c.Line))
		}
	}
	for _, o := range old {
		if o.VirtualMAC && !slices.ContainsFunc(cfg.Instances, func(c config.Instance) bool { return c.Name == o.Name }) {
			errs = append(errs, fmt.Errorf("instance %s: removing an instance with virtual_mac needs a restart: its macvlan is removed at stop", o.Name))
		}
	}
	return errs
}

// vmacName is the name of in's macvlan with virtual_mac, "" without.
func (in *instance) vmacName() string {
	if in.vmac == nil {
		return ""
	}
	return in.vmac.name
}
