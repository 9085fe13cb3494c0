package vrrp

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// The host's side of vmacDataplane: macvlans through netlink, sysctls
// through /proc/sys.

func (d *hostDataplane) AddMacvlan(parent int, name string, mac net.HardwareAddr, alias string) (LinkInfo, error) {
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.ParentIndex = parent
	la.HardwareAddr = mac
	mv := &netlink.Macvlan{LinkAttrs: la, Mode: netlink.MACVLAN_MODE_BRIDGE}
	if err := netlink.LinkAdd(mv); err != nil {
		return LinkInfo{}, fmt.Errorf("adding macvlan %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetAlias(l, alias)
	}
	if err != nil {
		// Unmarked, it would never be removed: remove it now.
		if l != nil {
			_ = netlink.LinkDel(l)
		} else {
			_ = netlink.LinkDel(mv)
		}
		return LinkInfo{}, fmt.Errorf("marking macvlan %s: %w", name, err)
	}
	a := l.Attrs()
	return LinkInfo{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr}, nil
}

func (d *hostDataplane) RemoveMacvlan(index int, alias string) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return err
	}
	if _, ok := l.(*netlink.Macvlan); !ok || l.Attrs().Alias != alias {
		return fmt.Errorf("link %s is not vipd's macvlan (type %s, alias %q, want %q)", l.Attrs().Name, l.Type(), l.Attrs().Alias, alias)
	}
	return netlink.LinkDel(l)
}

func (d *hostDataplane) ListMacvlans() ([]Macvlan, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []Macvlan
	for _, l := range ls {
		a := l.Attrs()
		if _, ok := l.(*netlink.Macvlan); !ok || !strings.HasPrefix(a.Alias, vmacAliasPrefix) {
			continue
		}
		out = append(out, Macvlan{
			LinkInfo: LinkInfo{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr},
			Alias:    a.Alias, Parent: a.ParentIndex,
		})
	}
	return out, nil
}

func (d *hostDataplane) SetLinkUp(index int, up bool) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return err
	}
	if up {
		return netlink.LinkSetUp(l)
	}
	return netlink.LinkSetDown(l)
}

// sysctlPath is key's file; a key naming a file outside /proc/sys is
// refused.
func sysctlPath(key string) (string, error) {
	p := filepath.Join("/proc/sys", key)
	if !strings.HasPrefix(p, "/proc/sys/") || strings.Contains(key, "..") {
		return "", fmt.Errorf("sysctl %q: not a sysctl key", key)
	}
	return p, nil
}

func (d *hostDataplane) ReadSysctl(key string) (string, error) {
	p, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (d *hostDataplane) WriteSysctl(key, value string) error {
	p, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return os.WriteFile(p, []byte(value+"\n"), 0o644)
}
