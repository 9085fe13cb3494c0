package vrrp

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// The simulated host's macvlans and sysctls (vmacDataplane).

type simVMAC struct {
	macvlans map[string]*simMacvlan // by name
	sysctls  map[string]string      // set by anyone; absent: the default
	nextIdx  int
	failAdd  error
	noIPv6   bool // the kernel has no IPv6: no net/ipv6 keys
}

type simMacvlan struct {
	index  int
	parent int
	alias  string
}

// simSysctlDefault is a sysctl's value on a link that nobody set: 0, as
// the kernel's defaults for the ones virtual_mac changes, but rp_filter,
// which distributions set to 2, and IPv6's accept_ra and autoconf (1).
func simSysctlDefault(key string) string {
	switch {
	case strings.HasSuffix(key, "/rp_filter"):
		return "2"
	case strings.HasPrefix(key, "net/ipv6/") && (strings.HasSuffix(key, "/accept_ra") || strings.HasSuffix(key, "/autoconf")):
		return "1"
	}
	return "0"
}

func (h *simNode) AddMacvlan(parent int, name string, mac net.HardwareAddr, alias string) (LinkInfo, error) {
	if h.vm.failAdd != nil {
		return LinkInfo{}, h.vm.failAdd
	}
	if _, ok := h.links[name]; ok {
		return LinkInfo{}, fmt.Errorf("adding macvlan %s: file exists", name)
	}
	if h.vm.macvlans == nil {
		h.vm.macvlans = map[string]*simMacvlan{}
	}
	h.vm.nextIdx++
	idx := 100 + h.vm.nextIdx
	h.links[name] = &LinkInfo{Name: name, Index: idx, MAC: slices.Clone(mac)}
	h.vm.macvlans[name] = &simMacvlan{index: idx, parent: parent, alias: alias}
	h.ops = append(h.ops, "macvlan+ "+name)
	return *h.links[name], nil
}

func (h *simNode) RemoveMacvlan(index int, alias string) error {
	for name, m := range h.vm.macvlans {
		if m.index != index {
			continue
		}
		if m.alias != alias {
			return fmt.Errorf("link %s is not vipd's macvlan (alias %q)", name, m.alias)
		}
		delete(h.vm.macvlans, name)
		delete(h.links, name)
		delete(h.addrs, index)
		for k := range h.vm.sysctls {
			if sysctlLink(k) == name {
				delete(h.vm.sysctls, k)
			}
		}
		h.ops = append(h.ops, "macvlan- "+name)
		return nil
	}
	return fmt.Errorf("link %d is not a macvlan", index)
}

func (h *simNode) ListMacvlans() ([]Macvlan, error) {
	var out []Macvlan
	for name, m := range h.vm.macvlans {
		if strings.HasPrefix(m.alias, vmacAliasPrefix) {
			out = append(out, Macvlan{LinkInfo: *h.links[name], Alias: m.alias, Parent: m.parent})
		}
	}
	return out, nil
}

func (h *simNode) SetLinkUp(index int, up bool) error {
	for _, l := range h.links {
		if l.Index == index {
			l.Up = up
			if up {
				h.ops = append(h.ops, "up "+l.Name)
			} else {
				h.ops = append(h.ops, "down "+l.Name)
			}
			return nil
		}
	}
	return errors.New("no such link")
}

// sysctlLink is the link a net/ipv4/conf/<link>/<name> or
// net/ipv6/conf/<link>/<name> key is about.
func sysctlLink(key string) string {
	rest, ok := strings.CutPrefix(key, "net/ipv4/conf/")
	if !ok {
		rest, _ = strings.CutPrefix(key, "net/ipv6/conf/")
	}
	link, _, _ := strings.Cut(rest, "/")
	return link
}

func (h *simNode) ReadSysctl(key string) (string, error) {
	if _, ok := h.links[sysctlLink(key)]; !ok || h.vm.noIPv6 && strings.HasPrefix(key, "net/ipv6/") {
		return "", fmt.Errorf("open /proc/sys/%s: no such file or directory", key)
	}
	if v, ok := h.vm.sysctls[key]; ok {
		return v, nil
	}
	return simSysctlDefault(key), nil
}

func (h *simNode) WriteSysctl(key, value string) error {
	if _, ok := h.links[sysctlLink(key)]; !ok || h.vm.noIPv6 && strings.HasPrefix(key, "net/ipv6/") {
		return fmt.Errorf("open /proc/sys/%s: no such file or directory", key)
	}
	if h.vm.sysctls == nil {
		h.vm.sysctls = map[string]string{}
	}
	h.vm.sysctls[key] = value
	return nil
}

// sysctl is the value of key on the host.
func (h *simNode) sysctl(key string) string {
	v, err := h.ReadSysctl(key)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return v
}
