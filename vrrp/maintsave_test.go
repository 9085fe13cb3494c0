package vrrp

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vipd/vipd/config"
	"github.com/vipd/vipd/vip"
)

// The state file is renamed into place and then its directory is synced:
// without that, a crash can lose the rename and bring an instance back
// into service.
func TestSaveMaintenanceFileSyncsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "maintenance.json")
	var synced []string
	syncDir := func(d *os.File) error {
		b, err := os.ReadFile(path)
		if err != nil || string(b) != `{"maintenance":["web","db"]}`+"\n" {
			t.Errorf("directory synced before the rename: file %q, %v", b, err)
		}
		synced = append(synced, d.Name())
		return d.Sync()
	}
	if err := saveMaintenanceFile(path, []string{"web", "db"}, syncDir); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{dir}) {
		t.Errorf("directories synced: %q, want %q once", synced, dir)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".maintenance-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
	// A failed directory sync is a failed save.
	err := saveMaintenanceFile(path, nil, func(*os.File) error { return errors.New("EIO") })
	if err == nil {
		t.Error("a failed directory sync was not reported")
	}
}

// mntLoopNode returns a Node whose loop can Run without privileges: one
// instance, web, on an interface without carrier (so in fault) and no
// sockets.
func mntLoopNode(t *testing.T, save func(path string, names []string) error) *Node {
	t.Helper()
	addrs, err := vip.NewManager()
	if err != nil {
		t.Skipf("netlink: %v", err)
	}
	log, _ := trkNewLog()
	cfg := &config.Config{File: "t.yaml", StateDir: t.TempDir(), Instances: []config.Instance{{
		Name: "web", Interface: "vipd-test0", VRID: 51, Priority: 100, Version: 3, AdvertInterval: time.Second, Preempt: true,
		VIPs: []config.VIP{{Address: netip.MustParsePrefix("198.18.0.100/32")}}}}}
	n := &Node{
		log: log, cfg: cfg, dp: &hostDataplane{addrs: addrs}, rcv: newHostReceiver(), clk: hostClock{},
		addrCh: make(chan vip.Change, 64), linkCh: make(chan LinkInfo, 16),
		statusQ: make(chan chan Status), reloadQ: make(chan reloadReq), trackCh: make(chan TrackResult, 64),
		maintQ: make(chan maintReq), loopDone: make(chan struct{}),
		maint: newMaintWriter(log),
	}
	n.maint.save = save
	ifc := &iface{name: "vipd-test0", index: 1 << 30, primary: netip.MustParseAddr("198.18.0.11")}
	in := newInstance(cfg.Instances[0], ifc)
	ifc.byVRID[51] = in
	ifc.insts = []*instance{in}
	n.insts = []*instance{in}
	return n
}

// The maintenance file is written off the protocol loop: while a save is
// stuck on the disk the loop answers status at once, and the change is in
// force; SetMaintenance returns when the save does, with ErrNotSaved if it
// failed.
func TestMaintenanceSaveNotOnLoop(t *testing.T) {
	saving := make(chan []string)
	result := make(chan error)
	stop := make(chan struct{}) // closed at the end: no save blocks any more
	n := mntLoopNode(t, func(_ string, names []string) error {
		select {
		case saving <- names:
		case <-stop:
			return nil
		}
		select {
		case err := <-result:
			return err
		case <-stop:
			return nil
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx, nil) }()
	defer func() {
		close(stop)
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	for _, tc := range []struct {
		on      bool
		saveErr error
	}{{true, nil}, {false, errors.New("no space left on device")}} {
		set := make(chan error, 1)
		go func() { set <- n.SetMaintenance(context.Background(), "web", tc.on) }()
		var names []string
		select {
		case names = <-saving:
		case <-time.After(5 * time.Second):
			t.Fatal("the state file was not saved")
		}
		if want := map[bool][]string{true: {"web"}, false: {}}[tc.on]; !slices.Equal(names, want) {
			t.Errorf("saving %q, want %q", names, want)
		}
		// The save is stuck: the loop must still answer.
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := n.Status(sctx)
		scancel()
		if err != nil {
			t.Fatalf("maintenance %v: status while the state file is being written: %v (the loop waits on the disk)", tc.on, err)
		}
		if len(st.Instances) != 1 || st.Instances[0].Maintenance != tc.on {
			t.Errorf("status while saving: %+v, want maintenance %v in force", st.Instances, tc.on)
		}
		select {
		case err := <-set:
			t.Fatalf("SetMaintenance returned %v before its change was saved", err)
		default:
		}
		result <- tc.saveErr
		err = <-set
		switch {
		case tc.saveErr == nil && err != nil:
			t.Errorf("maintenance %v: %v", tc.on, err)
		case tc.saveErr != nil && !errors.Is(err, ErrNotSaved):
			t.Errorf("maintenance %v with a failing save: %v, want ErrNotSaved", tc.on, err)
		}
	}
}
