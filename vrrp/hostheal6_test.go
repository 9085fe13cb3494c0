package vrrp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/vipd/vipd/e2e/netnstest"
)

// Over IPv6 the learner's packet socket, bound to IPv6 on the link with
// its filter, ignores the master's priority-0 adverts and its adverts for
// another VRID (it times out on those), and returns the Ethernet source of
// the master's next advert for the VRID.
func TestReadSenderMAC6(t *testing.T) {
	netnstest.Run(t, func(netns.NsHandle) {
		ia, ib, lla, _ := veth6(t)
		ca, err := ListenConn6(ia)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		send := func(vrid, prio uint8) {
			ad := Advert{Version: 3, VRID: vrid, Priority: prio, Interval: 100 * time.Millisecond,
				Addresses: []netip.Addr{netip.MustParseAddr("fd00:18::100")}}
			msg, err := ad.AppendMarshalIPv6(nil, lla, GroupV6)
			if err != nil {
				t.Error(err)
				return
			}
			if err := ca.Queue(msg, lla, GroupV6, nil); err != nil {
				t.Error(err)
				return
			}
			if err := ca.Flush(); err != nil {
				t.Error(err)
			}
		}
		// The socket is made on this goroutine, whose thread is in the
		// test's namespace; the adverts go out from another one.
		learn := func(timeout time.Duration, adverts ...[2]uint8) (net.HardwareAddr, error) {
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						for _, a := range adverts {
							send(a[0], a[1])
						}
					}
				}
			}()
			defer func() { close(stop); <-done }()
			return readSenderMAC(context.Background(), senderReq{Instance: "web", Index: ib.Index, Link: ib.Name,
				From: lla, VRID: 18, Timeout: timeout})
		}
		if mac, err := learn(300*time.Millisecond, [2]uint8{18, 0}, [2]uint8{19, 150}); err == nil || !strings.Contains(err.Error(), "no advert from") {
			t.Fatalf("with only priority-0 adverts and another VRID's: MAC %v, err %v; want a timeout", mac, err)
		}
		mac, err := learn(2*time.Second, [2]uint8{18, 150})
		if err != nil || mac.String() != ia.HardwareAddr.String() {
			t.Fatalf("learned %v, %v; want the master's MAC %v", mac, err, ia.HardwareAddr)
		}
	})
}
