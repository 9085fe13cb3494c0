package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/e2e/lab"
	"github.com/vipd/vipd/e2e/pair"
)

// Lab tests of where addresses go, beside keepalived: a password longer
// than VRRPv2's 8 bytes, unicast from a second address of the interface
// (source_address / unicast_src_ip), an instance without VIPs, and a VIP on
// another interface with a label.

// v2LongPass is a 12-byte password in keepalived.conf, which keepalived
// runs and vipd runs converted by `vipd convert`: both send and check its
// first 8 bytes.
var v2LongPass = flavour{name: "v2-longpass-1s", code: "l", version: 2, interval: time.Second, authPass: "vipd-e2e-pwd", converted: true}

// TestNetLongAuthPass: keepalived (v2, auth_type PASS, a 12-byte auth_pass)
// and vipd given the same 12 bytes hand over both ways, whichever is the
// preferred master: link cut, preemption, graceful stop, restart, the VIP
// on exactly the master each time, and neither complains of the other's
// password.
func TestNetLongAuthPass(t *testing.T) {
	for _, master := range []string{vipd, keepalived} {
		t.Run(master+"-master", func(t *testing.T) {
			t.Parallel()
			// The two daemons' own notes that they cut the password.
			handOver(t, v2LongPass, master, "Truncating auth_pass to 8 characters")
		})
	}
}

// Second addresses of the lab hosts, on eth0 beside their primary ones:
// adverts come from these.
var (
	srcA = netip.MustParseAddr("198.18.0.21")
	srcB = netip.MustParseAddr("198.18.0.22")
)

// addSecondAddr puts a on n's eth0 as a secondary address.
func addSecondAddr(t *testing.T, n *pair.Node, a netip.Addr) {
	t.Helper()
	if out, err := n.Host.Run("ip", "addr", "add", a.String()+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("adding %s on %s: %v\n%s", a, n.Host.Name, err, out)
	}
	out, err := n.Host.Run("ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(out, a.String()+"/24") || !strings.Contains(out, "secondary") {
		t.Fatalf("%s is not a secondary address of %s's eth0 (err %v):\n%s", a, n.Host.Name, err, out)
	}
}

// runUnicast configures n for daemon d with unicast adverts from src to
// peer, v2 with the 12-byte password, and starts it.
func runUnicast(t *testing.T, p *pair.Pair, n *pair.Node, d string, prio uint8, src, peer netip.Addr) {
	t.Helper()
	f := v2LongPass
	kc := pair.KeepalivedConfig{Priority: prio, AdvertInterval: f.interval, Version: f.version, AuthPass: f.authPass,
		Extra: fmt.Sprintf("    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }\n", src, peer)}
	switch d {
	case vipd:
		// What `vipd convert` makes of the keepalived.conf.
		must(t, p.ConfigureConverted(n, kc))
		must(t, p.Start(n))
	case keepalived:
		must(t, p.ConfigureKeepalived(n, kc))
		must(t, p.StartKeepalived(n))
	}
}

// captureOn records VRRP on host h's iface into pcap while during runs,
// then for after more.
func captureOn(t *testing.T, h *lab.Host, iface, filter, pcap string, during func(), after time.Duration) {
	t.Helper()
	logPath := pcap + ".log"
	proc := startTshark(t, h, logPath, "-n", "-i", iface, "-f", filter, "-c", "500", "-a", "duration:60", "-w", pcap)
	during()
	time.Sleep(after)
	_ = proc.Signal(syscall.SIGINT) // tshark writes the file out and exits
	if _, err := proc.Wait(10 * time.Second); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("tshark: %v:\n%s", err, b)
	}
}

// TestNetUnicastSourceAddress: vipd and keepalived, unicast to each other
// from a second address of eth0 (vipd's source_address, keepalived's
// unicast_src_ip), hand over both ways. On the wire every advert comes
// from the configured source, never from a primary address, and each
// daemon accepts the other's: the backup stays backup while the master
// advertises, and takes over when it stops.
func TestNetUnicastSourceAddress(t *testing.T) {
	for _, master := range []string{vipd, keepalived} {
		t.Run(master+"-master", func(t *testing.T) {
			t.Parallel()
			p := newInteropPair(t, "nu"+master[:1], "Truncating auth_pass to 8 characters")
			backup := other(master)
			wait := v2LongPass.wait()
			addSecondAddr(t, p.A, srcA)
			addSecondAddr(t, p.B, srcB)

			runUnicast(t, p, p.B, backup, 100, srcB, srcA)
			must(t, p.WaitHolder(p.B, pair.VIP, wait))
			runUnicast(t, p, p.A, master, 150, srcA, srcB)
			must(t, p.WaitHolder(p.A, pair.VIP, wait))
			// The backup hears the master's adverts: it stays backup for
			// longer than its Master_Down_Interval.
			time.Sleep(pair.MasterDownInterval(100, time.Second) + time.Second)
			hs, err := p.Holders(pair.VIP)
			must(t, err)
			if len(hs) != 1 || hs[0] != p.A {
				t.Fatalf("holders of the VIP with %s master: %v, want a only", master, hs)
			}
			assertClientAt(t, p, p.A)

			// Graceful stop, captured on a's port of the bridge: what a
			// sends comes in there and what b sends to a goes out there.
			pcap := filepath.Join(p.Dir, "unicast.pcap")
			captureOn(t, p.Lab.Bridge(), p.A.Host.Name, "ip proto 112", pcap, func() {
				time.Sleep(1500 * time.Millisecond) // an advert of a's at least
				must(t, p.Stop(p.A))
				must(t, p.WaitHolder(p.B, pair.VIP, wait))
			}, 2500*time.Millisecond)
			assertClientAt(t, p, p.B)
			pkts := decodeVRRP(t, pcap, "FALSE")
			srcs := map[string]int{}
			for _, pk := range pkts {
				srcs[pk.src]++
				if pk.auth != "vipd-e2e" {
					t.Errorf("advert from %s carries password %q, want the first 8 bytes", pk.src, pk.auth)
				}
			}
			t.Logf("adverts by source around the stop: %v", srcs)
			if srcs[srcA.String()] == 0 || srcs[srcB.String()] == 0 || len(srcs) != 2 {
				t.Errorf("adverts by source %v: want some from %s (a) and %s (b) and none from elsewhere", srcs, srcA, srcB)
			}

			// And back: the restarted master preempts.
			must(t, p.Restart(p.A))
			must(t, p.WaitHolder(p.A, pair.VIP, wait))
			assertClientAt(t, p, p.A)
			vn := p.A
			if master != vipd {
				vn = p.B
			}
			st := statusInto[struct {
				Instances []struct {
					SourceAddress string            `json:"source_address"`
					Dropped       map[string]uint64 `json:"dropped"`
					Counters      struct {
						AdvertsReceived uint64 `json:"adverts_received"`
					} `json:"counters"`
				} `json:"instances"`
			}](t, p, vn)
			in := st.Instances[0]
			want := srcA.String()
			if vn == p.B {
				want = srcB.String()
			}
			if in.SourceAddress != want || len(in.Dropped) != 0 || in.Counters.AdvertsReceived == 0 {
				t.Errorf("vipd's status: source %q (want %s), dropped %v, received %d", in.SourceAddress, want, in.Dropped, in.Counters.AdvertsReceived)
			}
		})
	}
}

// writeNoVIPs writes n's configuration, for daemon d, of instance web
// without VIPs, VRRPv2 at 1 s: keepalived 2.2.7 refuses an instance
// without VIPs with version 3, and the configurations that have none (cloud
// setups moving an address from a notify script) keep its default, 2.
func writeNoVIPs(t *testing.T, p *pair.Pair, n *pair.Node, d string, prio uint8) {
	t.Helper()
	n.Priority = prio
	var conf, path string
	switch d {
	case vipd:
		path = n.Config
		conf = fmt.Sprintf("metrics_listen: \"\"\ncontrol_socket: %s\nstate_dir: %s\ninstances:\n"+
			"  - name: web\n    interface: eth0\n    vrid: 51\n    priority: %d\n    version: 2\n    advert_interval: 1s\n",
			socketOf(p, n), filepath.Join(p.Dir, n.Host.Name+"-state"), prio)
	case keepalived:
		path = p.KeepalivedConf(n)
		conf = fmt.Sprintf("global_defs {\n    router_id %s\n    vrrp_version 2\n}\n"+
			"vrrp_instance web {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority %d\n    advert_int 1\n}\n",
			n.Host.NS, prio)
	}
	must(t, os.WriteFile(path, []byte(conf), 0o600))
}

// vipdState is the state of n's vipd instance; "" while vipd does not
// answer yet.
func vipdState(t *testing.T, p *pair.Pair, n *pair.Node) (state, master string) {
	t.Helper()
	out, err := exec.Command(p.Bin, "status", "--json", "--socket", socketOf(p, n)).Output()
	if err != nil {
		return "", ""
	}
	var s statusJSON
	if err := json.Unmarshal(out, &s); err != nil || len(s.Instances) != 1 {
		t.Fatalf("status of %s: %v\n%s", n.Host.Name, err, out)
	}
	return s.Instances[0].State, s.Instances[0].MasterAddress
}

// waitVipdState polls until n's vipd instance is in state.
func waitVipdState(t *testing.T, p *pair.Pair, n *pair.Node, state string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, m := vipdState(t, p, n)
		if st == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vipd on %s is %s (master %s) after %v, want %s", n.Host.Name, st, m, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keepalivedLastState is the state keepalived's current run on n last
// logged entering.
func keepalivedLastState(t *testing.T, n *pair.Node) string {
	t.Helper()
	b, err := os.ReadFile(n.Log)
	must(t, err)
	s := string(b)
	if i := strings.LastIndex(s, "\n---- "); i >= 0 {
		s = s[i:]
	}
	last := ""
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, "(web) Entering "); i >= 0 {
			last = strings.Fields(l[i+len("(web) Entering "):])[0]
		}
	}
	return last
}

// TestNetNoVIPs: an instance without VIPs beside keepalived's instance
// without virtual_ipaddress elects the right master both ways, with adverts
// carrying no address that neither daemon complains about.
func TestNetNoVIPs(t *testing.T) {
	p := newInteropPair(t, "nz")
	wait := 6 * time.Second

	// keepalived preferred: vipd is backup and knows keepalived as master.
	writeNoVIPs(t, p, p.B, vipd, 100)
	must(t, p.Start(p.B))
	waitVipdState(t, p, p.B, "master", wait)
	writeNoVIPs(t, p, p.A, keepalived, 150)
	must(t, p.StartKeepalived(p.A))
	waitVipdState(t, p, p.B, "backup", wait)
	waitLog(t, p.A, "(web) Entering MASTER STATE", wait)
	if _, m := vipdState(t, p, p.B); m != "198.18.0.11" {
		t.Errorf("vipd sees the master at %q, want keepalived's 198.18.0.11", m)
	}
	time.Sleep(4 * time.Second)
	if st, _ := vipdState(t, p, p.B); st != "backup" || keepalivedLastState(t, p.A) != "MASTER" {
		t.Fatalf("after 4 s: vipd %s, keepalived %s; want backup and MASTER", st, keepalivedLastState(t, p.A))
	}

	// On the wire: adverts with no address.
	pcap := filepath.Join(p.Dir, "novip.pcap")
	capture(t, p, pcap, 1500*time.Millisecond, func() {
		must(t, p.Stop(p.A)) // keepalived resigns: vipd takes over
		waitVipdState(t, p, p.B, "master", wait)
	})
	pkts := decodeVRRP(t, pcap, "FALSE")
	if len(pkts) == 0 {
		t.Fatal("no adverts captured")
	}
	for _, pk := range pkts {
		if pk.vips != "" || pk.malformed != "" {
			t.Errorf("advert from %s: addresses %q, malformed %q", pk.src, pk.vips, pk.malformed)
		}
	}

	// vipd preferred: keepalived, lower now, stays backup.
	must(t, p.Stop(p.B))
	writeNoVIPs(t, p, p.B, vipd, 200)
	must(t, p.Start(p.B))
	waitVipdState(t, p, p.B, "master", wait)
	must(t, p.StartKeepalived(p.A))
	time.Sleep(5 * time.Second) // longer than keepalived's Master_Down_Interval
	if st, _ := vipdState(t, p, p.B); st != "master" {
		t.Errorf("vipd at priority 200 is %s beside keepalived at 150", st)
	}
	if ks := keepalivedLastState(t, p.A); ks != "BACKUP" {
		t.Errorf("keepalived at 150 beside vipd at 200 is %q, want BACKUP", ks)
	}
	// vipd stops: keepalived takes over.
	must(t, p.Stop(p.B))
	waitLog(t, p.A, "(web) Entering MASTER STATE", wait)
}

// otherVIP is the address put on the nodes' second interface.
var otherVIP = netip.MustParseAddr("198.18.1.100")

// addVeth gives n a second interface, eth1, a veth whose peer eth1p stays
// in n's namespace (captures on it see what vipd sends on eth1).
func addVeth(t *testing.T, n *pair.Node) {
	t.Helper()
	for _, args := range [][]string{
		{"ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"},
		{"ip", "link", "set", "eth1", "up"},
		{"ip", "link", "set", "eth1p", "up"},
	} {
		if out, err := n.Host.Run(args...); err != nil {
			t.Fatalf("%s on %s: %v\n%s", strings.Join(args, " "), n.Host.Name, err, out)
		}
	}
}

// addrLines lists n's IPv4 address lines (`ip -o`) that hold a.
func addrLines(t *testing.T, n *pair.Node, a netip.Addr) []string {
	t.Helper()
	out, err := n.Host.Run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		t.Fatalf("ip addr on %s: %v\n%s", n.Host.Name, err, out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " "+a.String()+"/") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	return lines
}

// waitOtherVIP polls until otherVIP is on eth1 with its label on want
// alone (nil: nobody).
func waitOtherVIP(t *testing.T, p *pair.Pair, want *pair.Node, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		var seen []string
		for _, n := range p.Nodes() {
			ls := addrLines(t, n, otherVIP)
			seen = append(seen, fmt.Sprintf("%s: %q", n.Host.Name, ls))
			if n == want {
				ok = ok && len(ls) == 1 && strings.Contains(ls[0], " eth1 inet "+otherVIP.String()+"/32 scope global eth1:web")
			} else {
				ok = ok && len(ls) == 0
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %v to hold %s on eth1 labelled eth1:web alone: %v", want, otherVIP, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNetVIPOnOtherInterface: a VIP with interface eth1 (not the eth0
// adverts use) and label eth1:web is on the master's eth1, with the label,
// and nowhere else; the master announces it with gratuitous ARP on eth1;
// a stop moves it to the other node, and the last stop removes it.
func TestNetVIPOnOtherInterface(t *testing.T) {
	p := newPair(t, "nv")
	for _, n := range p.Nodes() {
		addVeth(t, n)
	}
	extra := fmt.Sprintf("      - address: %s\n        interface: eth1\n        label: \"eth1:web\"\n", otherVIP)
	for _, n := range []*pair.Node{p.A, p.B} {
		prio := uint8(150)
		if n == p.B {
			prio = 100
		}
		must(t, p.Configure(n, pair.NodeConfig{Priority: prio, AdvertInterval: interval}))
		b, err := os.ReadFile(n.Config)
		must(t, err)
		must(t, os.WriteFile(n.Config, append(b, extra...), 0o600))
	}
	must(t, p.Start(p.B))
	waitOtherVIP(t, p, p.B, 3*time.Second)

	// a joins and preempts; its eth1 is captured for ARP meanwhile.
	pcap := filepath.Join(p.Dir, "garp.pcap")
	captureOn(t, p.A.Host, "eth1p", "arp", pcap, func() {
		must(t, p.Start(p.A))
		waitOtherVIP(t, p, p.A, 3*time.Second)
		must(t, p.WaitHolder(p.A, pair.VIP, time.Second))
	}, 500*time.Millisecond)
	out, err := p.A.Host.Run("tshark", "-n", "-r", pcap, "-Y", "arp.src.proto_ipv4 == "+otherVIP.String()+" && arp.dst.proto_ipv4 == "+otherVIP.String(),
		"-T", "fields", "-e", "arp.opcode")
	must(t, err)
	var garps []string
	for _, f := range strings.Fields(out) {
		if f == "1" || f == "2" { // tshark's notes come on the same output
			garps = append(garps, f)
		}
	}
	t.Logf("gratuitous ARP for %s on a's eth1: opcodes %v", otherVIP, garps)
	if !slices.Contains(garps, "1") || !slices.Contains(garps, "2") {
		t.Errorf("no gratuitous ARP request and reply for %s on eth1: %v", otherVIP, garps)
	}
	// Only the VIP on eth1 is announced there.
	out, err = p.A.Host.Run("tshark", "-n", "-r", pcap, "-Y", "arp.src.proto_ipv4 == "+pair.VIP.String(), "-T", "fields", "-e", "arp.opcode")
	must(t, err)
	if slices.ContainsFunc(strings.Fields(out), func(f string) bool { return f == "1" || f == "2" }) {
		t.Errorf("eth0's VIP announced on eth1: %q", out)
	}

	st := statusInto[struct {
		Instances []struct {
			VIPs []struct {
				Address   string `json:"address"`
				Interface string `json:"interface"`
				Label     string `json:"label"`
				Present   bool   `json:"present"`
			} `json:"vips"`
		} `json:"instances"`
	}](t, p, p.A)
	if v := st.Instances[0].VIPs; len(v) != 2 || v[1].Address != otherVIP.String() || v[1].Interface != "eth1" || v[1].Label != "eth1:web" || !v[1].Present {
		t.Errorf("status VIPs: %+v", v)
	}

	must(t, p.Stop(p.A))
	waitOtherVIP(t, p, p.B, 3*time.Second)
	must(t, p.Stop(p.B))
	waitOtherVIP(t, p, nil, time.Second)
}
