package doctor

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/arp"
	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

// sharedSubnet warns about a VIP that is not a /32 but lies in the subnet
// of one of the interface's own addresses: added, it becomes a secondary
// of that subnet (or its primary, if the host's own address goes), the
// kernel may pick it as a source address, and removing it on a failover
// can take the subnet's route with it. A /32 avoids all of that.
func sharedSubnet(ifname string, addrs []vip.Addr, configured map[netip.Addr]bool, insts []config.Instance) []Verdict {
	var vs []Verdict
	for _, in := range insts {
		for _, v := range in.VIPs {
			if v.Address.IsSingleIP() || (v.Interface != "" && v.Interface != ifname) {
				continue
			}
			for _, a := range addrs {
				if configured[a.Prefix.Addr()] || !a.Prefix.Overlaps(v.Address) {
					continue
				}
				host := fmt.Sprintf("/%d", v.Address.Addr().BitLen())
				vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: VIP %s is not a %s and shares the subnet of %s's own address %s", in.Name, v.Address, host, ifname, a.Prefix),
					fmt.Sprintf("make it %s%s: the subnet's route is already there through %s", v.Address.Addr(), host, a.Prefix)})
				break
			}
		}
	}
	return vs
}

// arpAnswers is what an ARP probe heard: address → MACs that claimed it.
type arpAnswers map[netip.Addr][]string

// probeARP sends an ARP probe (sender 0.0.0.0) for each address twice,
// listening for dur, and returns who answered.
func probeARP(ifname string, targets []netip.Addr, dur time.Duration) (arpAnswers, error) {
	w, err := arp.NewWatcher(ifname)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	got := arpAnswers{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			s, err := w.Read()
			if err != nil {
				return
			}
			if slices.Contains(targets, s.IP) && !slices.Contains(got[s.IP], s.HardwareAddr().String()) {
				got[s.IP] = append(got[s.IP], s.HardwareAddr().String())
			}
		}
	}()
	for i := 0; i < 2; i++ {
		for _, t := range targets {
			if err := w.Probe(t); err != nil {
				w.Close()
				<-done
				return nil, err
			}
		}
		time.Sleep(dur / 2)
	}
	w.Close()
	<-done
	return got, nil
}

// reachability asks the segment, as a remote host would, who answers ARP
// for each VIP: the node that holds it (this one, or the master this
// backup hears) and nobody else.
func (d doctor) reachability(ifi *net.Interface, insts []config.Instance, addrs []vip.Addr, seen map[uint8]map[netip.Addr]*heard) []Verdict {
	held := map[netip.Addr]bool{}
	for _, a := range addrs {
		held[a.Prefix.Addr()] = true
	}
	var targets []netip.Addr
	masters := map[string]netip.Addr{}
	for _, in := range insts {
		if m, ok := soleMaster(seen[in.VRID]); ok && m.Is4() {
			masters[in.Name] = m
			targets = append(targets, m)
		}
		for _, v := range in.VIPs {
			if (v.Interface == "" || v.Interface == ifi.Name) && v.Address.Addr().Is4() {
				targets = append(targets, v.Address.Addr())
			}
		}
	}
	if len(targets) == 0 {
		return nil
	}
	got, err := probeARP(ifi.Name, targets, 600*time.Millisecond)
	if err != nil {
		return []Verdict{{Warn, fmt.Sprintf("cannot probe the VIPs with ARP on %s: %v", ifi.Name, err), "run vipd doctor as root (or with CAP_NET_RAW)"}}
	}
	var vs []Verdict
	for _, in := range insts {
		vs = append(vs, reachVerdicts(ifi.Name, in, ifi.HardwareAddr.String(), held, masters[in.Name], got)...)
	}
	return vs
}

// soleMaster is the one router heard advertising a VRID, if exactly one.
func soleMaster(hs map[netip.Addr]*heard) (netip.Addr, bool) {
	var m netip.Addr
	n := 0
	for _, h := range hs {
		if h.lastPrio > 0 {
			m, n = h.src, n+1
		}
	}
	return m, n == 1
}

// reachVerdicts judges the answers for one instance's VIPs on ifname. A VIP
// this host holds must be answered by no other MAC; one it does not hold
// must be answered by the master's MAC (the MAC that answers for the
// master's address, heard advertising) and no other.
func reachVerdicts(ifname string, in config.Instance, own string, held map[netip.Addr]bool, master netip.Addr, got arpAnswers) []Verdict {
	var vs []Verdict
	for _, v := range in.VIPs {
		if v.Interface != "" && v.Interface != ifname || !v.Address.Addr().Is4() {
			continue // IPv6 VIPs: neighbour discovery is not probed
		}
		a := v.Address.Addr()
		var others []string
		for _, m := range got[a] {
			if m != own {
				others = append(others, m)
			}
		}
		if held[a] && in.VirtualMAC {
			// The VIP is on this node's macvlan: only the virtual MAC may
			// answer for it.
			others = slices.DeleteFunc(others, func(m string) bool { return m == virtualMAC(in).String() })
		}
		if held[a] {
			if len(others) > 0 {
				vs = append(vs, conflictVerdict(in.Name, a, others, "this node holds it"))
			} else {
				vs = append(vs, Verdict{OK, fmt.Sprintf("instance %s: VIP %s is held here and no other host answers ARP for it", in.Name, a), ""})
			}
			continue
		}
		var masterMAC string
		if master.IsValid() && len(got[master]) == 1 {
			masterMAC = got[master][0]
		}
		if in.VirtualMAC {
			vs = append(vs, vmacReachVerdict(ifname, in, a, masterMAC, got[a]))
			continue
		}
		switch {
		case len(got[a]) == 0:
			vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: nobody answers ARP for VIP %s on %s: it is unreachable from other hosts", in.Name, a, ifname),
				"expected only while no node is master; otherwise check the master's arp_ignore/arp_filter and that it holds the VIP"})
		case masterMAC == "":
			vs = append(vs, Verdict{Warn, fmt.Sprintf("instance %s: VIP %s answers from %s, but the master's MAC is unknown (no single master heard, or it did not answer for %s)", in.Name, a, strings.Join(got[a], ", "), master), ""})
		case len(got[a]) == 1 && got[a][0] == masterMAC:
			vs = append(vs, Verdict{OK, fmt.Sprintf("instance %s: VIP %s answers from the master's MAC %s (master %s)", in.Name, a, masterMAC, master), ""})
		default:
			var foreign []string
			for _, m := range got[a] {
				if m != masterMAC {
					foreign = append(foreign, m)
				}
			}
			vs = append(vs, conflictVerdict(in.Name, a, foreign, fmt.Sprintf("the master %s is %s", master, masterMAC)))
		}
	}
	return vs
}

func conflictVerdict(inst string, a netip.Addr, macs []string, why string) Verdict {
	return Verdict{Fail, fmt.Sprintf("instance %s: address conflict: VIP %s is also answered for by %s (%s)", inst, a, strings.Join(macs, ", "), why),
		"find the host with that MAC (switch MAC table, ip neigh) and remove its copy of " + a.String() + "; vipd does not fight over the address"}
}

// vmacReachVerdict judges the answers for VIP a of a virtual-MAC instance
// this node does not hold: the virtual MAC, and nothing else. The master's
// real MAC answering is the trap of a parent without arp_ignore.
func vmacReachVerdict(ifname string, in config.Instance, a netip.Addr, masterMAC string, macs []string) Verdict {
	vmac := virtualMAC(in).String()
	var others []string
	for _, m := range macs {
		if m != vmac {
			others = append(others, m)
		}
	}
	switch {
	case len(macs) == 0:
		return Verdict{Warn, fmt.Sprintf("instance %s: nobody answers ARP for VIP %s on %s: it is unreachable from other hosts", in.Name, a, ifname),
			"expected only while no node is master; otherwise check that the master's macvlan " + in.VirtualMACName + " is up with the VIP"}
	case len(others) == 0:
		return Verdict{OK, fmt.Sprintf("instance %s: VIP %s answers from the virtual MAC %s", in.Name, a, vmac), ""}
	case masterMAC != "" && slices.Contains(others, masterMAC):
		return Verdict{Fail, fmt.Sprintf("instance %s: VIP %s is answered for by the master's own MAC %s as well as by the virtual MAC: clients that take it leave the virtual MAC", in.Name, a, masterMAC),
			"on the master, run vipd doctor: its interface needs arp_ignore=1 and arp_announce=2, which vipd sets while it runs (a keepalived master with use_vmac sets only arp_ignore)"}
	default:
		return conflictVerdict(in.Name, a, others, "the VIP's MAC is the virtual MAC "+vmac)
	}
}
