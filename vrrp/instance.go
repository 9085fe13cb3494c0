package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/config"
)

// Counters are an instance's running totals.
type Counters struct {
	AdvertsSent          uint64
	AdvertsReceived      uint64
	PriorityZeroSent     uint64
	PriorityZeroReceived uint64
	GARPSent             uint64
	AddressListMismatch  uint64
	VIPsRestored         uint64
	Dropped              [numDropReasons]uint64
	Transitions          map[[2]State]uint64
	ChecksumSeen         [2]uint64 // by ChecksumMode
}

// instance is one configured VRRP instance at run time. It is owned by the
// Node's loop goroutine.
type instance struct {
	cfg config.Instance
	// fam is cfg.Family() as vrrp's Family, and global6 fromGlobal6(),
	// kept with cfg (setConfig): the receive path asks for them with every
	// advert.
	fam     Family
	global6 bool
	m       *Machine
	ifc     *iface
	vips    []netip.Addr // addresses announced
	// advertised are the addresses the adverts list: vips but those with
	// advertise: false.
	advertised []netip.Addr
	auth       [8]byte
	buf        []byte // marshal buffer, reused
	count      Counters

	// vs is each VIP's place (family and link) and what vipd believes of
	// it (parallel to vips), kept by the reconciler from its own add and
	// remove results and the address events, so that status costs no
	// netlink dump.
	vs []vipState
	// orphans are VIPs a reload took out of the configuration while the
	// instance held them: the reconciler removes them.
	orphans []vipState
	// retryAt is when to try again to add the VIPs a master lacks;
	// retryWait the back-off, doubling from vipRetryMin to vipRetryMax.
	retryAt   time.Time
	retryWait time.Duration
	annBuf    []netip.Addr // the present VIPs, for announce
	// rs are the instance's routes and rules (routes.go), wanted with
	// its VIPs; their failed adds share the VIPs' retry.
	rs routeSet

	mismatchLogged time.Time
	// unicast6Hinted: when hintUnicast6 last logged each hint (hop
	// limit, link-local source).
	unicast6Hinted [2]time.Time
	// cwState and cwMaster are the state and master the conflict watcher
	// was last told of (noteConflictState).
	cwState  State
	cwMaster netip.Addr

	// lowerMasterOn: a lower-ranked router keeps advertising as master
	// (Machine.LowerMaster), last logged as lowerMaster.
	lowerMasterOn bool
	lowerMaster   LowerMaster

	track       trackState
	faultReason Reason
	maintenance bool
	group       *syncGroup
	notify      *notifier
	stopTrack   context.CancelFunc
	// up is the upstream check while master (upstream.go).
	up upstreamCheck
	// held is the advert whose repeats the kernel holds back while this
	// backup follows its master (holdback.go); msg nil: none.
	held heldAdvert
	// vmac is the instance's macvlan with virtual_mac (vmac.go).
	vmac *vmacState
	// heal is the announcement for the master it last yielded to
	// (heal.go).
	heal healState
}

func newInstance(c config.Instance, ifc *iface) *instance {
	in := &instance{ifc: ifc, buf: make([]byte, 0, 1500)}
	in.setConfig(c)
	in.count.Transitions = make(map[[2]State]uint64)
	in.track = newTrackState()
	in.setVIPs(nil)
	copy(in.auth[:], c.AuthPass)
	in.m = NewMachine(in.machineConfig())
	return in
}

// vipState is one VIP: where it goes (its family and link; the
// instance's own by default) and its presence there as vipd knows it.
type vipState struct {
	prefix   netip.Prefix
	family   Family
	link     *iface
	label    string // the address label; "" for the kernel's default
	present  bool
	addErr   string // the last add's error; "" once an add succeeded
	failures uint64 // adds that failed
	// conflicts: other hosts' MACs claiming the VIP, as the conflict
	// watcher last reported them.
	conflicts []VIPConflict
}

// setVIPs takes the VIP lists from the configuration; a VIP that stays on
// the same link with the same label keeps its state. linkOf finds the link
// of a VIP with an interface of its own (nil: every VIP on the instance's).
func (in *instance) setVIPs(linkOf func(name string) *iface) {
	oldVS := in.vs
	in.vips = in.vips[:0]
	in.advertised = in.advertised[:0]
	in.vs = make([]vipState, len(in.cfg.VIPs))
	for i, v := range in.cfg.VIPs {
		in.vips = append(in.vips, v.Address.Addr())
		if !v.NotAdvertised {
			in.advertised = append(in.advertised, v.Address.Addr())
		}
		link := in.ifc
		if name := vipIfname(in.cfg, v); name != in.ifc.name && linkOf != nil {
			if l := linkOf(name); l != nil {
				link = l
			}
		}
		in.vs[i] = vipState{prefix: v.Address, family: familyOf(v.Address.Addr()), link: link, label: v.Label}
		if j := slices.IndexFunc(oldVS, func(o vipState) bool {
			return o.prefix == v.Address && o.link == link && o.label == v.Label
		}); j >= 0 {
			in.vs[i] = oldVS[j]
		}
	}
}

// source is the address adverts go out from: source_address, else the
// interface's primary address: over IPv6 its link-local, but its first
// global address for unicast adverts to peers that are not all link-locals
// (fromGlobal6).
func (in *instance) source() netip.Addr {
	if in.cfg.SourceAddress.IsValid() {
		return in.cfg.SourceAddress
	}
	if in.fromGlobal6() {
		return in.ifc.global6
	}
	return in.ifc.primaryFor(in.family())
}

// setConfig takes c as the instance's configuration.
func (in *instance) setConfig(c config.Instance) {
	in.cfg = c
	in.fam = FamilyIPv4
	if c.Family() == config.FamilyIPv6 {
		in.fam = FamilyIPv6
	}
	in.global6 = c.SendsFromGlobal6()
}

// fromGlobal6 reports whether the instance's adverts come from the
// interface's first global IPv6 address (iface.global6,
// config.Instance.SendsFromGlobal6): a link-local source would be
// dropped at its peers as not_peer. (keepalived sends from the link-local
// unless unicast_src_ip is set, and checks the source only with
// check_unicast_src.)
func (in *instance) fromGlobal6() bool { return in.global6 }

// noSourceReason is the fault reason of an instance without an address to
// advertise from (source invalid).
func (in *instance) noSourceReason() Reason {
	if in.fromGlobal6() {
		return ReasonNoGlobalAddress
	}
	return ReasonNoLinkLocal
}

// family is the family the instance advertises in (config.Instance.Family).
func (in *instance) family() Family { return in.fam }

// mcastGroup is the multicast group the instance advertises to: 224.0.0.18,
// or ff02::12 over IPv6.
func (in *instance) mcastGroup() netip.Addr {
	if in.family() == FamilyIPv6 {
		return GroupV6
	}
	return GroupV4
}

func (in *instance) machineConfig() MachineConfig {
	return MachineConfig{
		Priority:       in.cfg.Priority,
		Version:        in.cfg.Version,
		AdvertInterval: in.cfg.AdvertInterval,
		Preempt:        in.cfg.Preempt,
		PreemptDelay:   in.cfg.PreemptDelay,
		Addr:           in.source(),

		AnnounceRepeat:   in.cfg.GARP.Repeat,
		AnnounceInterval: in.cfg.GARP.Interval,
		AnnounceRefresh:  in.cfg.GARP.Refresh,
		AnnounceEchoes:   in.announceEchoes(),
	}
}

// vmacEchoes are the takeover's echoes of an instance with a virtual MAC
// (MachineConfig.AnnounceEchoes): the old master lets go within a few
// milliseconds of our first advert, or tens on a loaded host.
var vmacEchoes = [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond}

// announceEchoes are the instance's takeover echoes: with a virtual MAC
// those of vmacEchoes that come before its next advert, which pulls the
// switches back as well.
func (in *instance) announceEchoes() [2]time.Duration {
	var es [2]time.Duration
	if !in.cfg.VirtualMAC {
		return es
	}
	n := 0
	for _, e := range vmacEchoes {
		if e < in.cfg.AdvertInterval {
			es[n] = e
			n++
		}
	}
	return es
}

func (in *instance) checksumMode() ChecksumMode { return in.cfg.V3Checksum }

// advert builds our advertisement with the given priority into in.buf.
func (in *instance) advert(prio uint8, dst netip.Addr) ([]byte, error) {
	a := Advert{
		Version:   uint8(in.cfg.Version),
		VRID:      in.cfg.VRID,
		Priority:  prio,
		Interval:  in.cfg.AdvertInterval,
		Addresses: in.advertised,
	}
	if in.cfg.Version == 2 && in.cfg.AuthPass != "" {
		a.AuthType = 1
		a.AuthData = in.auth
	}
	var b []byte
	var err error
	if in.family() == FamilyIPv6 {
		b, err = a.AppendMarshalIPv6(in.buf[:0], in.source(), dst)
	} else {
		b, err = a.AppendMarshal(in.buf[:0], in.checksumMode(), in.source(), dst)
	}
	if err == nil {
		in.buf = b
	}
	return b, err
}

// sameAddresses reports whether a peer advertises exactly our VIP list
// (order aside): a difference is configuration drift between the peers.
func (in *instance) sameAddresses(got []netip.Addr) bool {
	if len(got) != len(in.advertised) {
		return false
	}
outer:
	for _, g := range got {
		for _, v := range in.advertised {
			if g == v {
				continue outer
			}
		}
		return false
	}
	return true
}

// validate applies the checks that depend on the instance's configuration,
// after the codec accepted the message.
func (in *instance) validate(a *Advert) DropReason {
	if int(a.Version) != in.cfg.Version {
		return DropVersionMismatch
	}
	if a.Version == 2 {
		wantType := uint8(0)
		if in.cfg.AuthPass != "" {
			wantType = 1
		}
		if a.AuthType != wantType || (wantType == 1 && a.AuthData != in.auth) {
			return DropAuth
		}
		if a.Interval != in.cfg.AdvertInterval {
			return DropInterval
		}
	}
	return DropNone
}

// deadline is the earliest time the instance needs the loop's attention: a
// backup's Master_Down timer takeoverLead early if it may take over (see
// Node.awaitTakeover).
func (in *instance) deadline() time.Time {
	d := in.m.Deadline()
	if !d.IsZero() && in.mayTakeOver() {
		d = d.Add(-takeoverLead)
	}
	if a := in.m.AnnounceDue(); !a.IsZero() && (d.IsZero() || a.Before(d)) {
		d = a
	}
	if !in.retryAt.IsZero() && (d.IsZero() || in.retryAt.Before(d)) {
		d = in.retryAt
	}
	if u := in.up.next(); !u.IsZero() && (d.IsZero() || u.Before(d)) {
		d = u
	}
	return d
}

// mayTakeOver reports whether the instance is a backup whose Master_Down
// timer would make it master: not one held in backup (maintenance, or a
// sync-group member in fault), whose timer only starts again.
func (in *instance) mayTakeOver() bool {
	return in.m.State() == StateBackup && !in.m.Held()
}
