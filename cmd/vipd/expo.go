package main

import (
	"bufio"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// vipd writes the Prometheus text exposition format (version 0.0.4) itself.
// Its series are a snapshot rendered at scrape time, which needs no
// registry, and the client library with its protobuf dependencies would
// add about 2.5 MB to the daemon's resident memory for nothing else.

const expositionContentType = "text/plain; version=0.0.4; charset=utf-8"

type valueKind uint8

const (
	gaugeKind valueKind = iota
	counterKind
)

// desc names a metric family and its label names.
type desc struct {
	name, help string
	labels     []string
	order      []int // label indices sorted by label name, for output
}

func newDesc(name, help string, labels ...string) *desc {
	d := &desc{name: name, help: help, labels: labels}
	for i := range labels {
		d.order = append(d.order, i)
	}
	slices.SortFunc(d.order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return d
}

type sample struct {
	values []string
	value  float64
}

type family struct {
	d       *desc
	kind    valueKind
	samples []sample
}

// exposition collects samples and writes them in the text format, families
// sorted by name and samples by their label values.
type exposition struct {
	fams []*family
	byD  map[*desc]*family
}

func (e *exposition) add(d *desc, kind valueKind, v float64, values ...string) {
	if e.byD == nil {
		e.byD = map[*desc]*family{}
	}
	f := e.byD[d]
	if f == nil {
		f = &family{d: d, kind: kind}
		e.byD[d] = f
		e.fams = append(e.fams, f)
	}
	f.samples = append(f.samples, sample{values: slices.Clone(values), value: v})
}

func (e *exposition) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	slices.SortFunc(e.fams, func(a, b *family) int { return strings.Compare(a.d.name, b.d.name) })
	for _, f := range e.fams {
		d := f.d
		slices.SortStableFunc(f.samples, func(a, b sample) int {
			for _, i := range d.order {
				if c := strings.Compare(a.values[i], b.values[i]); c != 0 {
					return c
				}
			}
			return 0
		})
		kind := "gauge"
		if f.kind == counterKind {
			kind = "counter"
		}
		bw.WriteString("# HELP " + d.name + " " + escapeHelp(d.help) + "\n")
		bw.WriteString("# TYPE " + d.name + " " + kind + "\n")
		for _, s := range f.samples {
			bw.WriteString(d.name)
			if len(d.labels) > 0 {
				bw.WriteByte('{')
				for j, i := range d.order {
					if j > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(d.labels[i] + `="` + escapeLabel(s.values[i]) + `"`)
				}
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(formatValue(s.value))
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// The process and Go runtime series operators expect next to an
// exporter's own (the names are the Prometheus client libraries').
var (
	procCPU     = newDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
	procRSS     = newDesc("process_resident_memory_bytes", "Resident memory size in bytes.")
	procVirt    = newDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.")
	procStart   = newDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
	procFDs     = newDesc("process_open_fds", "Number of open file descriptors.")
	procMaxFDs  = newDesc("process_max_fds", "Maximum number of open file descriptors.")
	goRoutines  = newDesc("go_goroutines", "Number of goroutines that currently exist.")
	goThreads   = newDesc("go_threads", "Number of OS threads created.")
	goHeapInuse = newDesc("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.")
	goInfo      = newDesc("go_info", "Information about the Go environment.", "version")
	processT0   = time.Now()
)

// collectProcess adds the process and Go series, from /proc/self and the
// runtime; a value that cannot be read is left out.
func collectProcess(e *exposition) {
	const clockTicks = 100 // USER_HZ on Linux
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 22 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				e.add(procCPU, counterKind, (ut+st)/clockTicks)
				if vsize, err := strconv.ParseFloat(f[20], 64); err == nil {
					e.add(procVirt, gaugeKind, vsize)
				}
				if rss, err := strconv.ParseFloat(f[21], 64); err == nil {
					e.add(procRSS, gaugeKind, rss*float64(os.Getpagesize()))
				}
			}
		}
	}
	e.add(procStart, gaugeKind, float64(processT0.UnixNano())/1e9)
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		e.add(procFDs, gaugeKind, float64(len(fds)))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		e.add(procMaxFDs, gaugeKind, float64(lim.Cur))
	}
	e.add(goRoutines, gaugeKind, float64(runtime.NumGoroutine()))
	if n, _ := runtime.ThreadCreateProfile(nil); n > 0 {
		e.add(goThreads, gaugeKind, float64(n))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	e.add(goHeapInuse, gaugeKind, float64(ms.HeapInuse))
	e.add(goInfo, gaugeKind, 1, runtime.Version())
}
