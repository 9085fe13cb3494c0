package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/vipd/vipd/config"
)

type reloadReq struct {
	cfg  *config.Config // nil: a reload that failed before reaching the node
	done chan error
}

// Reload applies a new, already validated configuration in place. It
// first checks what it needs from the host (interfaces, addresses, sockets
// for new interfaces); if anything fails, it changes nothing and returns
// the error. Otherwise it applies the difference: an unchanged instance
// keeps its state and timers (no transition, no announcement); a changed
// one is updated in place (a master adds and removes just the changed
// VIPs and advertises a new priority at once); a removed one resigns; a
// new one starts in backup. An instance whose interface, VRID or version
// changed is removed and added again.
func (n *Node) Reload(ctx context.Context, cfg *config.Config) error {
	return n.sendReload(ctx, reloadReq{cfg: cfg, done: make(chan error, 1)})
}

// ReloadFailed records a reload whose configuration did not load, for the
// status and the metrics.
func (n *Node) ReloadFailed(ctx context.Context) error {
	return n.sendReload(ctx, reloadReq{done: make(chan error, 1)})
}

func (n *Node) sendReload(ctx context.Context, req reloadReq) error {
	return ask(ctx, n, n.reloadQ, req, req.done)
}

// ask hands req to the loop on q and waits for the loop's answer on done.
func ask[T any](ctx context.Context, n *Node, q chan<- T, req T, done <-chan error) error {
	select {
	case q <- req:
	case <-n.loopDone:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sameInstance reports whether two configurations of an instance are the
// same but for where they stand in the file.
func sameInstance(a, b config.Instance) bool {
	a.Line, b.Line = 0, 0
	a.VIPs = slices.Clone(a.VIPs)
	b.VIPs = slices.Clone(b.VIPs)
	for i := range a.VIPs {
		a.VIPs[i].Line = 0
	}
	for i := range b.VIPs {
		b.VIPs[i].Line = 0
	}
	a.Routes, a.Rules = routesWithoutLines(a.Routes, a.Rules)
	b.Routes, b.Rules = routesWithoutLines(b.Routes, b.Rules)
	return reflect.DeepEqual(a, b)
}

// sameSlot reports whether the new configuration can update the running
// instance in place.
func sameSlot(a, b config.Instance) bool {
	return a.Interface == b.Interface && a.VRID == b.VRID && a.Version == b.Version
}

func (n *Node) reload(cfg *config.Config, now time.Time) error {
	n.takeHeld()
	if cfg == nil {
		n.reloadOK = false
		n.reloadErrors++
		return nil
	}
	n.freezeGroups()
	err := n.applyConfig(cfg, now)
	n.settleGroups()
	if err != nil {
		n.reloadOK = false
		n.reloadErrors++
		return err
	}
	n.reloadOK, n.reloadTime = true, now
	// What an advert means may have changed (authentication, addresses,
	// priorities): the next ones are read at once, and held back again
	// once accepted.
	for _, in := range n.insts {
		n.dropHeld(in)
	}
	for _, ifc := range n.ifaces {
		ifc.heldDirty = true
	}
	// The VIPs, their links, the instances and the probe interval may
	// have changed: the conflict watcher takes a snapshot.
	n.conflictEvery.Store(int64(cfg.ConflictProbes()))
	n.kickConflict()
	return nil
}

func (n *Node) applyConfig(cfg *config.Config, now time.Time) error {
	old := map[string]*instance{}
	for _, in := range n.insts {
		old[in.cfg.Name] = in
	}
	var (
		updates  []*instance // running instances to update, in cfg order
		upCfgs   []config.Instance
		adds     []config.Instance
		keep     = map[*instance]bool{}
		newIfcs  []*iface
		upgrades = map[*iface]Link{} // VIP-only links that instances now advertise on
		errs     []error
		ifByName = map[string]*iface{}
	)
	for _, ifc := range n.ifaces {
		ifByName[ifc.name] = ifc
	}
	// Check everything before changing anything.
	errs = append(errs, n.checkVMACReload(cfg)...)
	fams := ifaceFamilies(cfg)
	for _, c := range cfg.Instances {
		if ifc := ifByName[c.Interface]; ifc != nil && !ifc.vipOnly && ifc.family.orIPv4() != fams[c.Interface] && len(ifc.insts) > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: instance %s: adverts on %s would change from %s to %s; a reload cannot change an interface's advert family: restart vipd",
				cfg.File, c.Line, c.Name, c.Interface, ifc.family.orIPv4(), fams[c.Interface]))
		}
	}
	for _, c := range cfg.Instances {
		if in := old[c.Name]; in != nil && sameSlot(in.cfg, c) {
			updates, upCfgs = append(updates, in), append(upCfgs, c)
			keep[in] = true
		} else {
			adds = append(adds, c)
		}
		if ifc := ifByName[c.Interface]; ifc != nil && ifc.vipOnly {
			upgrades[ifc] = nil
		} else if ifc == nil {
			li, err := n.dp.LookupLink(c.Interface)
			if err != nil {
				errs = append(errs, fmt.Errorf("instance %s (%s:%d): interface %s: %w", c.Name, cfg.File, c.Line, c.Interface, err))
				continue
			}
			ifc := newIface(li)
			ifc.family = fams[c.Interface]
			ifByName[c.Interface] = ifc
			newIfcs = append(newIfcs, ifc)
		}
	}
	errs = append(errs, n.addVIPLinks(cfg, ifByName, func(ifc *iface) { newIfcs = append(newIfcs, ifc) })...)
	if len(errs) == 0 {
		var order []*iface
		for _, c := range cfg.Instances {
			if ifc := ifByName[c.Interface]; !slices.Contains(order, ifc) {
				order = append(order, ifc)
			}
			for _, v := range c.VIPs {
				if ifc := ifByName[vipIfname(c, v)]; !slices.Contains(order, ifc) {
					order = append(order, ifc)
				}
			}
		}
		for _, ifc := range order {
			if err := n.checkOwnAddresses(cfg.File, ifc, cfg.Instances); err != nil {
				errs = append(errs, err)
			}
		}
		sets, err := n.resolveAll(cfg)
		if err != nil {
			errs = append(errs, err)
		}
		n.resolved = sets
	}
	defer func() { n.resolved = nil }()
	if len(errs) == 0 {
		for _, ifc := range newIfcs {
			if !ifc.vipOnly {
				if err := n.refreshPrimaryWith(ifc, cfg); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if err := n.openLink(ifc); err != nil {
				errs = append(errs, err)
			}
		}
		for ifc := range upgrades {
			ifc.family = fams[ifc.name]
			l, err := n.upgradeLink(ifc, cfg)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			upgrades[ifc] = l
		}
	}
	if len(errs) > 0 {
		for _, ifc := range newIfcs {
			if ifc.link != nil {
				ifc.link.Close()
			}
		}
		for _, l := range upgrades {
			if l != nil {
				l.Close()
			}
		}
		return errors.Join(errs...)
	}
	linkOf := func(name string) *iface { return ifByName[name] }

	// Removed (or moved) instances resign first, so that their VIPs are
	// free before new instances claim them.
	for _, in := range n.insts {
		if !keep[in] {
			n.log.Info("instance removed by reload", "instance", in.cfg.Name, "interface", in.ifc.name, "vrid", in.cfg.VRID)
			in.stopTrackers()
			n.stepForced(in, Event{Kind: EventShutdown}, now)
			n.retireNotifier(in.notify)
			in.ifc.byVRID[in.cfg.VRID] = nil
			in.ifc.insts = slices.DeleteFunc(in.ifc.insts, func(x *instance) bool { return x == in })
		}
	}
	for _, ifc := range newIfcs {
		n.ifaces = append(n.ifaces, ifc)
		n.rcv.attach(n, ifc)
	}
	for ifc, l := range upgrades {
		ifc.link.Close()
		ifc.link, ifc.vipOnly = l, false
		n.rcv.attach(n, ifc)
	}
	for i, in := range updates {
		n.update(in, upCfgs[i], linkOf, now)
	}
	var added []*instance
	for _, c := range adds {
		ifc := ifByName[c.Interface]
		in := newInstance(c, ifc)
		in.setVIPs(linkOf)
		in.rs = n.resolved[c.Name]
		if o := old[c.Name]; o != nil {
			in.maintenance = o.maintenance // a moved instance stays in maintenance
		}
		ifc.byVRID[c.VRID] = in
		ifc.insts = append(ifc.insts, in)
		// Nothing that stays configured holds the new instance's VIPs:
		// any that are on its links are left over.
		var err error
		for _, l := range linksOf(in) {
			if err = n.observeFor(l, in); err != nil {
				break
			}
		}
		if err == nil {
			err = n.reconcile(in, reconcileStale, now)
		}
		if err != nil {
			n.log.Error("removing stale VIP failed", "instance", in.cfg.Name, "err", err)
		}
		added = append(added, in)
	}
	// The running order follows the file.
	n.insts = n.insts[:0]
	for _, c := range cfg.Instances {
		n.insts = append(n.insts, ifByName[c.Interface].byVRID[c.VRID])
	}
	// Interfaces without instances or VIPs close their sockets, once the
	// resignations queued on them are out.
	n.flush()
	n.indexGuests()
	n.ifaces = slices.DeleteFunc(n.ifaces, func(ifc *iface) bool {
		if len(ifc.insts) > 0 || len(ifc.guests) > 0 {
			return false
		}
		if ifc.link != nil {
			ifc.link.Close()
		}
		return true
	})
	n.cfg = cfg
	n.buildGroups()
	for _, in := range added {
		n.log.Info("instance added by reload", "instance", in.cfg.Name, "interface", in.ifc.name, "vrid", in.cfg.VRID)
		in.m = NewMachine(in.machineConfig())
		in.notify = n.newNotifierFor(in.cfg)
		n.startTrackers(in)
	}
	n.updateHolds(n.insts, now)
	for _, in := range added {
		n.startInstance(in, now)
	}
	n.static = replaceSet(&n.static, n.resolved[""], n.staticOn)
	if n.staticOn {
		n.reconcileStatic(true, reconcileReload, now)
	}
	return nil
}

// refreshPrimaryWith finds a new interface's primary address, skipping the
// VIPs of the new configuration.
func (n *Node) refreshPrimaryWith(ifc *iface, cfg *config.Config) error {
	for _, c := range cfg.Instances {
		if c.Interface == ifc.name {
			in := &instance{vips: vipAddrs(c)}
			in.setConfig(c)
			ifc.insts = append(ifc.insts, in)
		}
	}
	err := n.refreshPrimary(ifc)
	ifc.insts = nil
	return err
}

func vipAddrs(c config.Instance) []netip.Addr {
	var as []netip.Addr
	for _, v := range c.VIPs {
		as = append(as, v.Address.Addr())
	}
	return as
}

// upgradeLink opens a full link (adverts too) for a VIP-only link that an
// instance of cfg now advertises on; the caller puts it in place.
func (n *Node) upgradeLink(ifc *iface, cfg *config.Config) (Link, error) {
	if err := n.refreshPrimaryWith(ifc, cfg); err != nil {
		return nil, err
	}
	li, err := n.dp.LookupLink(ifc.name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	return n.dp.OpenLink(li, ifc.family)
}

// update applies a changed configuration to a running instance in place.
func (n *Node) update(in *instance, c config.Instance, linkOf func(string) *iface, now time.Time) {
	if sameInstance(in.cfg, c) {
		in.setConfig(c) // keep the new line numbers
		in.rs = replaceSet(&in.rs, n.resolved[c.Name], false)
		return
	}
	oldVS := slices.Clone(in.vs)
	oldCfg := in.cfg
	wasHolding := in.wantsVIPs()
	in.setConfig(c)
	if !reflect.DeepEqual(oldCfg.Track, c.Track) {
		in.stopTrackers()
		in.track = newTrackState()
		n.startTrackers(in)
	}
	if !reflect.DeepEqual(oldCfg.Notify, c.Notify) {
		n.retireNotifier(in.notify)
		in.notify = n.newNotifierFor(c)
	}
	oldVIPs := slices.Clone(in.vips)
	in.setVIPs(linkOf)
	in.rs = replaceSet(&in.rs, n.resolved[c.Name], wasHolding)
	in.auth = [8]byte{}
	copy(in.auth[:], c.AuthPass)
	n.log.Info("instance reconfigured by reload", "instance", c.Name, "interface", in.ifc.name, "vrid", c.VRID)
	if wasHolding {
		// The VIPs taken out go; the new ones come and are announced.
		for _, o := range oldVS {
			if !slices.ContainsFunc(in.vs, func(v vipState) bool { return v.prefix == o.prefix && v.link == o.link && v.label == o.label }) {
				in.orphans = append(in.orphans, o)
			}
		}
		_ = n.reconcile(in, reconcileReload, now)
	}
	if in.m.State() == StateMaster && (!slices.Equal(oldCfg.Upstreams, c.Upstreams) ||
		oldCfg.NoUpstreams != c.NoUpstreams || !slices.Equal(oldVIPs, in.vips)) {
		// Other upstreams, or other VIPs to tell them about.
		n.startUpstreams(in, now)
	}
	n.reevaluate(in, now)
}
