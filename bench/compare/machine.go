package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vipd/vipd/e2e/pair"
)

// machineInfo is what the report says about the machine and the software.
type machineInfo struct {
	cpus       int
	cpuModel   string
	memory     string
	kernel     string
	goVersion  string
	vipd       string
	keepalived string
	loadStart  string
	loadEnd    string
}

func readMachine(vipdBin string) machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), goVersion: runtime.Version(), loadStart: readLoad()}
	m.cpuModel = firstField("/proc/cpuinfo", "model name")
	if kb := firstField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int
		if _, err := fmt.Sscanf(kb, "%d kB", &n); err == nil {
			m.memory = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(vipdBin, "version").CombinedOutput(); err == nil {
		m.vipd = strings.Join(strings.Fields(string(out)), " ")
	}
	if bin, err := pair.KeepalivedPath(); err == nil {
		out, _ := exec.Command(bin, "--version").CombinedOutput()
		if line, _, _ := strings.Cut(string(out), "\n"); line != "" {
			m.keepalived = strings.TrimSpace(line)
		}
	}
	return m
}

// firstField returns the value of the first "key : value" line of a /proc
// file whose key is key.
func firstField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// readLoad returns the 1, 5 and 15 minute load averages.
func readLoad() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// goBench is the outcome of vipd's hot-path Go benchmarks.
type goBench struct {
	command string
	lines   []string // the Benchmark result lines
	cpu     string
	err     error
}

// goBenchArgs runs the per-advert hot-path benchmarks of package vrrp and
// the takeover's address add (vip) and gratuitous ARP (arp), which need
// root for their namespace, as the bench runs.
var goBenchArgs = []string{"test", "./vrrp", "./vip", "./arp", "-run", "^$", "-bench", "^Benchmark(HotPath|Add|Announce)", "-benchmem", "-count", "1"}

// runGoBench runs the hot-path benchmarks from the module root.
func runGoBench() goBench {
	g := goBench{command: "go " + strings.Join(goBenchArgs, " ")}
	fmt.Fprintln(os.Stderr, "gobench:", g.command)
	root, err := moduleRoot()
	if err != nil {
		g.err = err
		return g
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		g.err = err
		return g
	}
	cmd := exec.Command(goTool, goBenchArgs...)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.err = fmt.Errorf("%s: %w: %s", g.command, err, strings.TrimSpace(string(out)))
		return g
	}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Benchmark"):
			g.lines = append(g.lines, line)
		case strings.HasPrefix(line, "cpu:"):
			g.cpu = strings.TrimSpace(strings.TrimPrefix(line, "cpu:"))
		}
	}
	fmt.Fprintf(os.Stderr, "gobench: %d results in %v\n", len(g.lines), time.Since(start).Round(time.Second))
	return g
}

// moduleRoot is the nearest directory at or above the working directory
// with a go.mod.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod at or above the working directory")
		}
		d = parent
	}
}
