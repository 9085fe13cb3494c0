package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// protocolVRRP is the IP protocol number of VRRP (IPv4 protocol, IPv6
// next header).
const protocolVRRP = 112

// ICMPv6 as an IPv6 next header, and its neighbour advertisement type.
const (
	nextHeaderICMPv6   = 58
	icmpv6NeighbourAdv = 136
)

// Advert is one VRRP advert seen on a host's eth0.
type Advert struct {
	Time     time.Time // the kernel's timestamp: arrival, or departure if Outgoing
	Src      netip.Addr
	Dst      netip.Addr       // 224.0.0.18, ff02::12, or a unicast peer
	HopLimit uint8            // the IPv4 TTL or IPv6 hop limit
	MAC      net.HardwareAddr // the frame's source
	VRID     uint8
	Priority uint8
	Outgoing bool // sent by this host
}

// Announce is one gratuitous ARP (a request or a reply whose sender and
// target address are the same) or unsolicited neighbour advertisement
// (Solicited flag clear) seen on a host's eth0.
type Announce struct {
	Time time.Time // the kernel's timestamp of its arrival
	Addr netip.Addr
	// MAC is the one the announcement names: ARP's sender hardware
	// address, a neighbour advertisement's target link-layer address
	// (its Ethernet source without that option).
	MAC net.HardwareAddr
}

// AdvertWatch records the VRRP adverts a host's eth0 sends and receives,
// and the gratuitous ARP it receives, with the kernel's timestamps. A
// packet socket sees them whether or not the host joined the VRRP group.
type AdvertWatch struct {
	fd   int
	ns   string
	lab  *Lab
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu        sync.Mutex
	adverts   []Advert
	announces []Announce
	err       error
	changed   chan struct{} // closed and replaced on every new advert
}

// WatchAdverts starts recording the VRRP adverts (over IPv4 and IPv6) on the host's eth0 until
// Stop or Lab.Close.
func (h *Host) WatchAdverts() (*AdvertWatch, error) {
	if h.isBridge() {
		return nil, fmt.Errorf("watch adverts: %s is the bridge namespace, not a host", h.NS)
	}
	var fd int
	err := inNamespace(h.NS, func() error {
		ifc, err := net.InterfaceByName(hostLink)
		if err != nil {
			return err
		}
		proto := htons(unix.ETH_P_ALL)
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifc.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind to %s: %w", hostLink, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watch adverts on %s: %w", h.NS, err)
	}
	// Receive timestamps, and a timeout so that the reader notices Stop.
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := errors.Join(
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
	); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch adverts on %s: socket options: %w", h.NS, err)
	}
	w := &AdvertWatch{fd: fd, ns: h.NS, lab: h.lab, quit: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
	if err := h.lab.register(w); err != nil {
		unix.Close(fd)
		return nil, err
	}
	go w.run()
	return w, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *AdvertWatch) run() {
	defer close(w.done)
	buf := make([]byte, 2048)
	oob := make([]byte, 128)
	for {
		select {
		case <-w.quit:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(w.fd, buf, oob, 0)
		now := time.Now()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			w.mu.Lock()
			w.err = fmt.Errorf("watch adverts on %s: receive: %w", w.ns, err)
			w.mu.Unlock()
			return
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		if ll == nil {
			continue
		}
		switch ll.Protocol {
		case htons(unix.ETH_P_IPV6):
			if an, ok := parseNA(buf[:n], ll); ok {
				if ll.Pkttype != unix.PACKET_OUTGOING {
					an.Time = receiveTime(oob[:oobn], now)
					w.mu.Lock()
					w.announces = append(w.announces, an)
					w.mu.Unlock()
				}
				continue
			}
			fallthrough
		case htons(unix.ETH_P_IP):
			a, ok := parseAdvert(buf[:n])
			if !ok {
				continue
			}
			a.Time = receiveTime(oob[:oobn], now)
			a.Outgoing = ll.Pkttype == unix.PACKET_OUTGOING
			a.MAC = net.HardwareAddr(append([]byte(nil), ll.Addr[:min(int(ll.Halen), len(ll.Addr))]...))
			w.mu.Lock()
			w.adverts = append(w.adverts, a)
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		case htons(unix.ETH_P_ARP):
			a, ok := parseAnnounce(buf[:n])
			if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			a.Time = receiveTime(oob[:oobn], now)
			w.mu.Lock()
			w.announces = append(w.announces, a)
			w.mu.Unlock()
		}
	}
}

// parseAnnounce reads an Ethernet/IPv4 ARP packet and keeps it if it is
// gratuitous.
func parseAnnounce(b []byte) (Announce, bool) {
	if len(b) < 28 || binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != unix.ETH_P_IP ||
		b[4] != 6 || b[5] != 4 {
		return Announce{}, false
	}
	if op := binary.BigEndian.Uint16(b[6:8]); op != 1 && op != 2 {
		return Announce{}, false
	}
	sender, target := netip.AddrFrom4([4]byte(b[14:18])), netip.AddrFrom4([4]byte(b[24:28]))
	if sender != target {
		return Announce{}, false
	}
	return Announce{Addr: sender, MAC: net.HardwareAddr(append([]byte(nil), b[8:14]...))}, true
}

// parseNA reads an IPv6 packet (no extension header) and keeps it if it
// is an unsolicited neighbour advertisement: its target, and the target
// link-layer address option's MAC, else the frame's source (ll).
func parseNA(b []byte, ll *unix.SockaddrLinklayer) (Announce, bool) {
	if len(b) < 64 || b[0]>>4 != 6 || b[6] != nextHeaderICMPv6 || b[40] != icmpv6NeighbourAdv || b[44]&0x40 != 0 {
		return Announce{}, false
	}
	end := 40 + int(binary.BigEndian.Uint16(b[4:6]))
	if end > len(b) || end < 64 {
		return Announce{}, false
	}
	an := Announce{Addr: netip.AddrFrom16([16]byte(b[48:64]))}
	for o := 64; o+8 <= end; {
		size := int(b[o+1]) * 8
		if size == 0 || o+size > end {
			break
		}
		if b[o] == 2 && size == 8 { // target link-layer address
			an.MAC = net.HardwareAddr(append([]byte(nil), b[o+2:o+8]...))
			break
		}
		o += size
	}
	if an.MAC == nil {
		an.MAC = net.HardwareAddr(append([]byte(nil), ll.Addr[:min(int(ll.Halen), len(ll.Addr))]...))
	}
	return an, true
}

// parseAdvert reads the IPv4 or IPv6 header (with no extension header:
// VRRP sends none) and the first bytes of a VRRP advert.
func parseAdvert(b []byte) (Advert, bool) {
	if len(b) >= 48 && b[0]>>4 == 6 && b[6] == protocolVRRP {
		if int(binary.BigEndian.Uint16(b[4:6])) > len(b)-40 {
			return Advert{}, false
		}
		return Advert{Src: netip.AddrFrom16([16]byte(b[8:24])), Dst: netip.AddrFrom16([16]byte(b[24:40])), HopLimit: b[7], VRID: b[41], Priority: b[42]}, true
	}
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != protocolVRRP {
		return Advert{}, false
	}
	hl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if hl < 20 || total > len(b) || total < hl+8 {
		return Advert{}, false
	}
	v := b[hl:total]
	return Advert{
		Src:      netip.AddrFrom4([4]byte(b[12:16])),
		Dst:      netip.AddrFrom4([4]byte(b[16:20])),
		HopLimit: b[8],
		VRID:     v[1],
		Priority: v[2],
	}, true
}

// Adverts returns the adverts seen so far, oldest first.
func (w *AdvertWatch) Adverts() []Advert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Advert(nil), w.adverts...)
}

// Announces returns the gratuitous ARP received so far, oldest first.
func (w *AdvertWatch) Announces() []Announce {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Announce(nil), w.announces...)
}

// Wait returns the first advert after the first skip ones that match
// reports true for, waiting up to timeout for it.
func (w *AdvertWatch) Wait(match func(Advert) bool, skip int, timeout time.Duration) (Advert, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := skip
	for i := 0; ; {
		w.mu.Lock()
		for ; i < len(w.adverts); i++ {
			if a := w.adverts[i]; match(a) {
				if seen == 0 {
					w.mu.Unlock()
					return a, nil
				}
				seen--
			}
		}
		changed, err := w.changed, w.err
		w.mu.Unlock()
		if err != nil {
			return Advert{}, err
		}
		select {
		case <-changed:
		case <-deadline.C:
			return Advert{}, fmt.Errorf("watch adverts on %s: no matching advert within %v: %w", w.ns, timeout, ErrTimeout)
		}
	}
}

// Stop ends the watch and closes its socket.
func (w *AdvertWatch) Stop() {
	w.once.Do(func() {
		close(w.quit)
		<-w.done
		unix.Close(w.fd)
		w.lab.unregister(w)
	})
}

func (w *AdvertWatch) stop() { w.Stop() }
