package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Manager adds and removes addresses on interfaces of the network namespace
// it was created in.
type Manager struct {
	h *netlink.Handle // listing
	s *addrSocket     // adding and removing, on a takeover's critical path
}

// NewManager opens its netlink sockets in the current network namespace.
func NewManager() (*Manager, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vip: open netlink: %w", err)
	}
	s, err := newAddrSocket()
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Manager{h: h, s: s}, nil
}

// Close releases the netlink sockets.
func (m *Manager) Close() {
	m.h.Close()
	m.s.close()
}

func link(index int) netlink.Link {
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

// Add puts p on the interface with the given index. It is idempotent: an
// address already present is replaced, not an error.
func (m *Manager) Add(index int, p netip.Prefix) error {
	if err := m.s.add(index, p); err != nil {
		return fmt.Errorf("vip: add %s on interface %d: %w", p, index, err)
	}
	return nil
}

// Remove takes p off the interface. An address that is not there is not an
// error.
func (m *Manager) Remove(index int, p netip.Prefix) error {
	err := m.s.del(index, p)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("vip: remove %s from interface %d: %w", p, index, err)
	}
	return nil
}

// Addr is an IPv4 address on an interface.
type Addr struct {
	Prefix    netip.Prefix
	Secondary bool
}

// List returns the IPv4 addresses on the interface, in the kernel's order.
func (m *Manager) List(index int) ([]Addr, error) {
	as, err := m.h.AddrList(link(index), netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("vip: list addresses of interface %d: %w", index, err)
	}
	out := make([]Addr, 0, len(as))
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, Addr{
			Prefix:    netip.PrefixFrom(ip.Unmap(), ones),
			Secondary: a.Flags&unix.IFA_F_SECONDARY != 0,
		})
	}
	return out, nil
}

// Has reports whether address a (any prefix length) is on the interface.
func (m *Manager) Has(index int, a netip.Addr) (bool, error) {
	as, err := m.List(index)
	if err != nil {
		return false, err
	}
	for _, x := range as {
		if x.Prefix.Addr() == a {
			return true, nil
		}
	}
	return false, nil
}

// Primary returns the interface's primary IPv4 address: the first one that
// is not a secondary and for which skip returns false. VRRP adverts carry it
// as their source, and equal priorities are broken on it.
func Primary(as []Addr, skip func(netip.Addr) bool) (netip.Addr, bool) {
	for _, a := range as {
		if a.Secondary || (skip != nil && skip(a.Prefix.Addr())) {
			continue
		}
		return a.Prefix.Addr(), true
	}
	return netip.Addr{}, false
}

// Change is one address added to or removed from an interface.
type Change struct {
	Index int
	Addr  netip.Addr
	Added bool
	// Resync is set on a synthetic change sent after the subscription was
	// re-established: events may have been lost, so re-check everything.
	Resync bool
}

// Watch sends IPv4 address changes of the current network namespace to out
// until ctx is done. If the kernel subscription breaks (a closed channel,
// an overrun socket) it subscribes again and sends a Resync change. Watch
// returns once every goroutine it started has finished.
func Watch(ctx context.Context, out chan<- Change) error {
	first := true
	for {
		if err := watchOnce(ctx, out, !first); err != nil && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		first = false
	}
}

func watchOnce(ctx context.Context, out chan<- Change, resync bool) error {
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	var subErr error
	err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) { subErr = err },
	})
	if err != nil {
		return fmt.Errorf("vip: subscribe to address changes: %w", err)
	}
	// The subscription's goroutine closes ch after done is closed; drain
	// until then so it never blocks and is never left behind.
	defer func() {
		close(done)
		for range ch {
		}
	}()
	if resync {
		select {
		case out <- Change{Resync: true}:
		case <-ctx.Done():
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-ch:
			if !ok {
				if subErr == nil {
					subErr = errors.New("vip: address subscription closed")
				}
				return subErr
			}
			ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok || !ip.Unmap().Is4() {
				continue
			}
			select {
			case out <- Change{Index: u.LinkIndex, Addr: ip.Unmap(), Added: u.NewAddr}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}
