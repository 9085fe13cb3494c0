package vrrp

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// watchLinks sends carrier and hardware address changes of the current
// network namespace's links to out until ctx is done, subscribing again if the kernel subscription
// breaks (and then re-reading every link, since changes may have been lost).
func watchLinks(ctx context.Context, out chan<- LinkInfo) {
	for ctx.Err() == nil {
		watchLinksOnce(ctx, out)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func watchLinksOnce(ctx context.Context, out chan<- LinkInfo) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{ListExisting: true})
	if err != nil {
		return
	}
	defer func() {
		close(done)
		for range ch {
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			a := u.Attrs()
			up := u.Header.Type != unix.RTM_DELLINK &&
				a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
			select {
			case out <- LinkInfo{Name: a.Name, Index: a.Index, Up: up, MAC: a.HardwareAddr}:
			case <-ctx.Done():
				return
			}
		}
	}
}
