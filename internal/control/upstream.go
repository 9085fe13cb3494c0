package control

import (
	"time"

	"github.com/vipd/vipd/vrrp"
)

// Upstream is one upstream of a master's upstream check: a neighbour sent
// a targeted ARP request from each VIP, then an ICMP echo that proves it
// sends the VIPs' traffic to this node.
type Upstream struct {
	Address string `json:"address"` // "" while the default gateway is looked up
	Default bool   `json:"default"` // the default gateway of the instance's interface
	// State is checking (no result yet), moved or not-moved (the last
	// attempt's result).
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"` // since this takeover
	LastCheck *time.Time `json:"last_check,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// UpstreamCheck counts the attempts that asked one upstream since vipd
// started, by result.
type UpstreamCheck struct {
	Address  string `json:"address"`
	Moved    uint64 `json:"moved"`
	NotMoved uint64 `json:"not_moved"`
	Errors   uint64 `json:"errors"`
}

func toUpstreams(in vrrp.InstanceStatus) ([]Upstream, []UpstreamCheck) {
	var ups []Upstream
	for _, u := range in.Upstreams {
		au := Upstream{Address: addrString(u.Address), Default: u.Default, State: u.State.String(), Attempts: u.Attempts, Error: u.Error}
		if !u.LastCheck.IsZero() {
			t := u.LastCheck
			au.LastCheck = &t
		}
		ups = append(ups, au)
	}
	var counts []UpstreamCheck
	for _, c := range in.UpstreamCounts {
		counts = append(counts, UpstreamCheck{Address: c.Upstream.String(), Moved: c.Moved, NotMoved: c.NotMoved, Errors: c.Errors})
	}
	return ups, counts
}
