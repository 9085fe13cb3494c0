package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// drop counts a refused datagram and logs it at a bounded rate.
func (n *Node) drop(ifc *iface, in *instance, r DropReason, src netip.Addr, now time.Time) {
	if in != nil {
		in.count.Dropped[r]++
	} else {
		ifc.unattributed[r]++
	}
	if r == DropVRID {
		return // other routers' VRIDs on a shared segment are normal
	}
	if ok, suppressed := ifc.dropLog[r].allow(now, 10*time.Second); ok {
		n.log.Warn("dropped VRRP packet", "interface", ifc.name, "from", src, "reason", r.String(), "detail", r.Error(), "suppressed_since_last", suppressed)
	}
}

// onDatagram handles one received datagram, IP header included, that
// arrived at now.
func (n *Node) onDatagram(ifc *iface, dgram []byte, now time.Time) {
	b, src, dst, ttl, ok := ParseIPv4(dgram)
	if !ok {
		n.drop(ifc, nil, DropTooShort, src, now)
		return
	}
	// The held-back filter matches a 20-byte header only.
	n.onMessage(ifc, b, src, dst, ttl, dgram[0] == 0x45, now)
}

// onDatagram6 handles one datagram received on a raw IPv6 socket: the
// VRRP message, msg_name and the control messages. Adverts over IPv6 are
// never held back (holdback.go is IPv4 only).
func (n *Node) onDatagram6(ifc *iface, payload, name, oob []byte, now time.Time) {
	src, _, _ := SourceIPv6(name)
	b, src, dst, hops, ok := ParseIPv6(payload, src, oob)
	if !ok {
		n.drop(ifc, nil, DropTooShort, src, now)
		return
	}
	n.onMessage(ifc, b, src, dst, hops, false, now)
}

// onMessage handles one VRRP message from src to dst that arrived with
// TTL (IPv4) or hop limit (IPv6) ttl; holdable says whether the held-back
// adverts may take its repeats.
func (n *Node) onMessage(ifc *iface, b []byte, src, dst netip.Addr, ttl int, holdable bool, now time.Time) {
	six := familyOf(src) == FamilyIPv6
	var in *instance
	if len(b) >= 2 {
		in = ifc.byVRID[b[1]]
	}
	if in != nil && (in.family() == FamilyIPv6) != six {
		in = nil // that VRID runs in the other family here
	}
	a := &n.rxAd
	var mode ChecksumMode
	var err error
	if six {
		mode, err = ChecksumPseudoHeader, a.UnmarshalIPv6(b, src, dst)
	} else {
		mode, err = a.Unmarshal(b, src, dst)
	}
	if err != nil {
		r, ok := err.(DropReason)
		if !ok {
			r = DropTooShort
		}
		n.drop(ifc, in, r, src, now)
		return
	}
	if ttl != TTL {
		n.drop(ifc, in, DropTTL, src, now)
		if six && in != nil && slices.Contains(in.cfg.UnicastPeers, src) {
			n.hintUnicast6(in, &in.unicast6Hinted[0], src, "a unicast peer's IPv6 adverts arrive with a hop limit other than 255 and are dropped: vipd accepts adverts sent on the link with hop limit 255 only; keepalived sends IPv6 unicast adverts with the system's default hop limit (64) unless its instance sets unicast_ttl 255", "hop_limit", ttl, now)
		}
		return
	}
	if in == nil {
		n.drop(ifc, nil, DropVRID, src, now)
		return
	}
	if src == ifc.primary || src == ifc.primary6 || src == in.source() {
		n.drop(ifc, in, DropOwnAddress, src, now)
		return
	}
	if len(in.cfg.UnicastPeers) > 0 && !slices.Contains(in.cfg.UnicastPeers, src) {
		n.drop(ifc, in, DropNotPeer, src, now)
		if in.fromGlobal6() && src.IsLinkLocalUnicast() && dst.IsValid() && !dst.IsMulticast() {
			n.hintUnicast6(in, &in.unicast6Hinted[1], src, "a router sends IPv6 unicast adverts to this node from its link-local, which unicast_peers does not list, and they are dropped: list its link-local, or have it send from the address listed; keepalived sends IPv6 unicast adverts from the link-local unless its instance sets unicast_src_ip", "to", dst, now)
		}
		return
	}
	if r := in.validate(a); r != DropNone {
		n.drop(ifc, in, r, src, now)
		return
	}
	in.count.AdvertsReceived++
	in.count.ChecksumSeen[mode]++
	if a.Priority == 0 {
		in.count.PriorityZeroReceived++
	}
	if !in.sameAddresses(a.Addresses) {
		in.count.AddressListMismatch++
		if now.Sub(in.mismatchLogged) > time.Minute {
			in.mismatchLogged = now
			n.log.Warn("peer advertises a different VIP list: the peers' configurations disagree",
				"instance", in.cfg.Name, "peer", src, "peer_addresses", fmt.Sprint(a.Addresses), "ours", fmt.Sprint(in.advertised))
		}
	}
	wasMaster := in.m.State() == StateMaster
	n.step(in, Event{Kind: EventAdvert, From: src, Priority: a.Priority, Interval: a.Interval}, now)
	if wasMaster && in.m.State() == StateBackup {
		n.yielded(in, src, a.Addresses)
	}
	if holdable {
		n.noteHeld(in, src, dst, b, a.Priority)
	} else {
		n.dropHeld(in)
	}
	n.noteLowerMaster(in, now)
}

// hintUnicast6 logs, at most once a minute per instance and hint (last
// is when it was logged), why a peer's IPv6 unicast adverts are dropped
// when the likely cause is a peer configured as keepalived is by default.
func (n *Node) hintUnicast6(in *instance, last *time.Time, src netip.Addr, msg, key string, val any, now time.Time) {
	if now.Sub(*last) <= time.Minute {
		return
	}
	*last = now
	n.log.Warn(msg, "instance", in.cfg.Name, "interface", in.ifc.name, "peer", src, key, val)
}

// noteLowerMaster logs, once each time, that a lower-ranked router starts
// or stops being one that keeps advertising as master (Machine.LowerMaster);
// status shows it meanwhile.
func (n *Node) noteLowerMaster(in *instance, now time.Time) {
	lm, ok := in.m.LowerMaster(now)
	if ok == in.lowerMasterOn {
		return
	}
	in.lowerMasterOn = ok
	if ok {
		in.lowerMaster = lm
		n.log.Warn("a peer keeps advertising as master at a lower priority: it does not accept our adverts (do version, v3_checksum, auth_pass and advert_interval match?); re-announcing the VIPs with backoff",
			"instance", in.cfg.Name, "interface", in.ifc.name, "vrid", in.cfg.VRID, "peer", lm.Addr, "peer_priority", lm.Priority,
			"priority", in.m.Config().Priority, "since", lm.Since.Format(time.RFC3339Nano))
		return
	}
	n.log.Info("the lower-priority peer no longer advertises as master",
		"instance", in.cfg.Name, "peer", in.lowerMaster.Addr, "last_seen", in.lowerMaster.LastSeen.Format(time.RFC3339Nano))
}
