package metrics

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vipd/vipd/internal/serve/servetest"
	"github.com/vipd/vipd/vrrp"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden from the current output")

// testStatus is a node with three instances: a master, a backup that knows
// its master, and an instance in fault whose master is unknown.
func testStatus() vrrp.Status {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pfx := netip.MustParsePrefix
	web := vrrp.InstanceStatus{
		Name: "web", Interface: "eth0", VRID: 51, Version: 3,
		State: vrrp.StateMaster, Priority: 150, EffectivePriority: 150,
		AdvertInterval: time.Second, MasterAdvertInterval: time.Second,
		PrimaryAddr: netip.MustParseAddr("198.18.0.1"), MasterAddr: netip.MustParseAddr("198.18.0.1"),
		MasterPriority: 150, LastTransition: t0.Add(3*time.Second + 500*time.Millisecond),
		VIPs: []vrrp.VIPStatus{
			{Address: pfx("198.18.0.100/32"), Description: "public web", Owner: "web team", Present: true,
				Conflicts: []vrrp.VIPConflict{{MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}, Since: t0}}},
			{Address: pfx("198.18.0.101/32"), Description: `legacy "www" alias`, Owner: "", Present: false,
				AddError: "vip: add 198.18.0.101/32 on interface 2: no buffer space available", AddFailures: 3},
		},
		Counters: vrrp.Counters{
			AdvertsSent: 1234, AdvertsReceived: 7, PriorityZeroSent: 0, PriorityZeroReceived: 1,
			GARPSent: 12, AddressListMismatch: 2, VIPsRestored: 1,
			Transitions: map[[2]vrrp.State]uint64{
				{vrrp.StateInit, vrrp.StateBackup}:   1,
				{vrrp.StateBackup, vrrp.StateMaster}: 2,
				{vrrp.StateMaster, vrrp.StateBackup}: 1,
			},
			ChecksumSeen: [2]uint64{5, 2},
		},
	}
	web.Trackers = []vrrp.TrackerStatus{
		{Kind: "interface", Name: "eth2", Weight: -10},
		{Kind: "process", Name: "lb", Failing: true, Value: 3, Weight: -50},
	}
	web.Routes = []vrrp.RouteStatus{
		{To: pfx("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.2.1"), Interface: "eth1", Table: 100, Present: true},
		{To: pfx("198.18.8.0/24"), Interface: "eth1", Source: netip.MustParseAddr("198.18.0.101"), Waiting: true},
	}
	web.Rules = []vrrp.RuleStatus{{From: pfx("198.18.0.100/32"), Table: 100, Priority: 100, Present: true}}
	web.RoutesRestored, web.RulesRestored = 1, 2
	web.Upstreams = []vrrp.UpstreamStatus{
		{Address: netip.MustParseAddr("198.18.0.254"), Default: true, State: vrrp.UpstreamMoved, Attempts: 1, LastCheck: t0},
		{Address: netip.MustParseAddr("198.18.0.253"), State: vrrp.UpstreamNotMoved, Attempts: 4, LastCheck: t0, Error: "no echo reply"},
		{Default: true, State: vrrp.UpstreamChecking}, // not looked up yet: no series
	}
	web.UpstreamCounts = []vrrp.UpstreamCount{
		{Upstream: netip.MustParseAddr("198.18.0.254"), Moved: 2, NotMoved: 1},
		{Upstream: netip.MustParseAddr("198.18.0.253"), NotMoved: 4, Errors: 1},
	}
	web.Counters.Dropped[vrrp.DropChecksum] = 4
	web.Counters.Dropped[vrrp.DropTTL] = 1

	db := vrrp.InstanceStatus{
		Name: "db", Interface: "eth0", VRID: 52, Version: 2,
		State: vrrp.StateBackup, Priority: 100, EffectivePriority: 100,
		AdvertInterval: 2 * time.Second, MasterAdvertInterval: 2 * time.Second,
		PrimaryAddr: netip.MustParseAddr("198.18.0.1"), MasterAddr: netip.MustParseAddr("198.18.0.2"),
		MasterPriority: 200, LastTransition: t0.Add(time.Second),
		VIPs: []vrrp.VIPStatus{{Address: pfx("198.18.0.110/32"), Description: "postgres", Owner: "dba"}},
		Counters: vrrp.Counters{
			AdvertsReceived: 900,
			Transitions:     map[[2]vrrp.State]uint64{{vrrp.StateInit, vrrp.StateBackup}: 1},
			ChecksumSeen:    [2]uint64{0, 900},
		},
	}
	db.Counters.Dropped[vrrp.DropAuth] = 3

	mail := vrrp.InstanceStatus{
		Name: "mail", Interface: "eth1", VRID: 7, Version: 3,
		State: vrrp.StateFault, Priority: 100, EffectivePriority: 100,
		AdvertInterval: 100 * time.Millisecond, MasterAdvertInterval: 100 * time.Millisecond,
		Counters: vrrp.Counters{Transitions: map[[2]vrrp.State]uint64{}},
	}

	st := vrrp.Status{
		Started: t0, ReloadOK: false, ReloadTime: t0.Add(time.Hour), ReloadErrors: 1,
		Instances:           []vrrp.InstanceStatus{web, db, mail},
		StaticRoutes:        []vrrp.RouteStatus{{To: pfx("198.18.10.0/24"), Via: netip.MustParseAddr("198.18.0.254"), Present: true}},
		StaticRules:         []vrrp.RuleStatus{{To: pfx("198.18.10.0/24"), IIF: "eth0", FwMark: "0x10/0xff", Table: 254, Priority: 200}},
		StaticRulesRestored: 1,
		Interfaces: []vrrp.InterfaceStatus{
			{Name: "eth0", Index: 2, Up: true, Primary: netip.MustParseAddr("198.18.0.1")},
			{Name: "eth1", Index: 3, Up: false},
		},
	}
	st.Interfaces[0].Dropped[vrrp.DropVRID] = 17
	st.Interfaces[0].Dropped[vrrp.DropTooShort] = 1
	return st
}

func fixedStatus(st vrrp.Status, err error) StatusFunc {
	return func(context.Context) (vrrp.Status, error) { return st, err }
}

var testBuild = BuildInfo{Version: "v1.2.3", Commit: "abc1234"}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

func scrape(t *testing.T, st StatusFunc) string {
	t.Helper()
	code, body := get(t, NewHandler(st, testBuild), http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	return body
}

// vipdOnly keeps the vipd_ families of an exposition and makes the Go
// version in vipd_build_info a placeholder, so that the golden file holds
// neither the runtime's and the process' series nor the toolchain version.
func vipdOnly(text string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		name := line
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			if f := strings.Fields(rest); len(f) >= 2 {
				name = f[1]
			}
		}
		if !strings.HasPrefix(name, "vipd_") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return strings.ReplaceAll(b.String(), `goversion="`+runtime.Version()+`"`, `goversion="GOVERSION"`)
}

func TestMetricsGolden(t *testing.T) {
	got := vipdOnly(scrape(t, fixedStatus(testStatus(), nil)))
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/metrics -run TestMetricsGolden -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("/metrics differs from %s (-want +got); if the change is meant, rerun with -update:\n%s", golden, diff)
	}
}

// The names DESIGN.md's Metrics section and issue 3 promise.
var promisedMetrics = []string{
	"vipd_vrrp_state",
	"vipd_vrrp_transitions_total",
	"vipd_vrrp_priority",
	"vipd_vrrp_effective_priority",
	"vipd_vrrp_adverts_sent_total",
	"vipd_vrrp_adverts_received_total",
	"vipd_vrrp_adverts_dropped_total",
	"vipd_vrrp_priority_zero_sent_total",
	"vipd_vrrp_priority_zero_received_total",
	"vipd_vrrp_last_transition_timestamp_seconds",
	"vipd_vip_present",
	"vipd_route_present",
	"vipd_rule_present",
	"vipd_route_restored_total",
	"vipd_rule_restored_total",
	"vipd_garp_sent_total",
	"vipd_config_last_reload_successful",
	"vipd_config_last_reload_timestamp_seconds",
	"vipd_build_info",
	"vipd_vrrp_address_list_mismatch_total",
	"vipd_vrrp_master_address",
}

func parseText(t *testing.T, text string) map[string]*familyView {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	out := map[string]*familyView{}
	for name, mf := range mfs {
		fv := &familyView{typ: mf.GetType().String(), help: mf.GetHelp()}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			}
			fv.series = append(fv.series, seriesView{labels, v})
		}
		out[name] = fv
	}
	return out
}

type familyView struct {
	typ, help string
	series    []seriesView
}

type seriesView struct {
	labels map[string]string
	value  float64
}

func (f *familyView) find(match map[string]string) []seriesView {
	var out []seriesView
	for _, s := range f.series {
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

func TestMetricsPromisedNames(t *testing.T) {
	fams := parseText(t, scrape(t, fixedStatus(testStatus(), nil)))
	for _, name := range promisedMetrics {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s is missing from /metrics", name)
		}
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "vipd_") {
			continue
		}
		if len(f.help) < 20 {
			t.Errorf("%s: HELP %q says too little", name, f.help)
		}
		if strings.HasSuffix(name, "_total") != (f.typ == "COUNTER") {
			t.Errorf("%s is a %s: counters and only counters end in _total", name, f.typ)
		}
	}
}

func TestMetricsSeries(t *testing.T) {
	fams := parseText(t, scrape(t, fixedStatus(testStatus(), nil)))
	web := map[string]string{"instance": "web", "interface": "eth0", "vrid": "51"}

	// Per-instance families carry instance, interface and vrid.
	for name, f := range fams {
		if !strings.HasPrefix(name, "vipd_vrrp_") && !strings.HasPrefix(name, "vipd_vip_") && name != "vipd_garp_sent_total" {
			continue
		}
		for _, s := range f.series {
			for _, l := range []string{"instance", "interface", "vrid"} {
				if _, ok := s.labels[l]; !ok {
					t.Errorf("%s%v lacks the %s label", name, s.labels, l)
				}
			}
		}
	}

	// One state series per state and instance; exactly the current one is 1.
	for _, inst := range []struct{ name, state string }{{"web", "master"}, {"db", "backup"}, {"mail", "fault"}} {
		ss := fams["vipd_vrrp_state"].find(map[string]string{"instance": inst.name})
		if len(ss) != len(vrrp.AllStates()) {
			t.Errorf("vipd_vrrp_state{instance=%q}: %d series, want %d", inst.name, len(ss), len(vrrp.AllStates()))
		}
		for _, s := range ss {
			if want := boolValue(s.labels["state"] == inst.state); s.value != want {
				t.Errorf("vipd_vrrp_state%v = %v, want %v", s.labels, s.value, want)
			}
		}
	}

	// Every pair of distinct states exists, also those never taken.
	n := len(vrrp.AllStates())
	if got := len(fams["vipd_vrrp_transitions_total"].find(map[string]string{"instance": "mail"})); got != n*(n-1) {
		t.Errorf("vipd_vrrp_transitions_total{instance=mail}: %d series, want %d", got, n*(n-1))
	}

	// Drops: every reason per instance, and per interface unattributed.
	if got := len(fams["vipd_vrrp_adverts_dropped_total"].find(web)); got != len(vrrp.AllDropReasons()) {
		t.Errorf("drops for web: %d series, want %d", got, len(vrrp.AllDropReasons()))
	}
	unattr := fams["vipd_vrrp_adverts_dropped_total"].find(map[string]string{"instance": "", "interface": "eth0", "vrid": "", "reason": "unknown_vrid"})
	if len(unattr) != 1 || unattr[0].value != 17 {
		t.Errorf("unattributed unknown_vrid drops on eth0: %v, want one series of 17", unattr)
	}

	// The master's address: ourselves, a peer, and no series when unknown.
	for inst, want := range map[string]string{"web": "198.18.0.1", "db": "198.18.0.2", "mail": ""} {
		ss := fams["vipd_vrrp_master_address"].find(map[string]string{"instance": inst})
		switch {
		case want == "" && len(ss) != 0:
			t.Errorf("vipd_vrrp_master_address for %s: %v, want no series", inst, ss)
		case want != "" && (len(ss) != 1 || ss[0].labels["address"] != want || ss[0].value != 1):
			t.Errorf("vipd_vrrp_master_address for %s: %v, want address %s", inst, ss, want)
		}
	}

	// Description and owner stay out of vipd_vip_present.
	for _, s := range fams["vipd_vip_present"].series {
		if _, ok := s.labels["description"]; ok {
			t.Errorf("vipd_vip_present%v carries the description", s.labels)
		}
	}
	info := fams["vipd_vip_info"].find(map[string]string{"vip": "198.18.0.101"})
	if len(info) != 1 || info[0].labels["description"] != `legacy "www" alias` || info[0].labels["owner"] != "" {
		t.Errorf("vipd_vip_info for 198.18.0.101: %v", info)
	}

	bi := fams["vipd_build_info"].series
	if len(bi) != 1 || bi[0].labels["version"] != "v1.2.3" || bi[0].labels["commit"] != "abc1234" || bi[0].labels["goversion"] != runtime.Version() {
		t.Errorf("vipd_build_info: %v", bi)
	}
}

func TestMetricsLint(t *testing.T) {
	// What /metrics serves parses as the text format and passes the
	// Prometheus client's lint (names, units, help, counters).
	text := scrape(t, fixedStatus(testStatus(), nil))
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	var list []*dto.MetricFamily
	for _, mf := range mfs {
		list = append(list, mf)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
}

func TestMetricsEmptyNode(t *testing.T) {
	// A node with no instances still answers with its node-wide series.
	fams := parseText(t, scrape(t, fixedStatus(vrrp.Status{ReloadOK: true}, nil)))
	for _, name := range []string{"vipd_build_info", "vipd_config_last_reload_successful", "vipd_start_time_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing for a node without instances", name)
		}
	}
	if s := fams["vipd_config_last_reload_timestamp_seconds"].series; len(s) != 1 || s[0].value != 0 {
		t.Errorf("reload time of a zero status: %v, want 0", s)
	}
}

func TestMetricsScrapeFailure(t *testing.T) {
	h := handler(func(ctx context.Context) (vrrp.Status, error) {
		<-ctx.Done()
		return vrrp.Status{}, ctx.Err()
	}, testBuild, 10*time.Millisecond, 10*time.Millisecond)
	code, body := get(t, h, http.MethodGet, "/metrics")
	if code != http.StatusInternalServerError || !strings.Contains(body, "deadline exceeded") {
		t.Errorf("scrape of a wedged node: %d %q, want 500 naming the timeout", code, body)
	}
	code, body = get(t, NewHandler(fixedStatus(vrrp.Status{}, vrrp.ErrNotRunning), testBuild), http.MethodGet, "/metrics")
	if code != http.StatusInternalServerError || !strings.Contains(body, vrrp.ErrNotRunning.Error()) {
		t.Errorf("scrape of a stopped node: %d %q, want 500 with the error", code, body)
	}
}

func TestMetricsTimeouts(t *testing.T) {
	// The handler bounds each status call: 2s for a scrape, 1s for /healthz.
	for path, want := range map[string]time.Duration{"/metrics": scrapeStatusTimeout, "/healthz": healthStatusTimeout} {
		var left time.Duration
		st := func(ctx context.Context) (vrrp.Status, error) {
			dl, ok := ctx.Deadline()
			if !ok {
				t.Errorf("%s: status called without a deadline", path)
			}
			left = time.Until(dl)
			return testStatus(), nil
		}
		if code, body := get(t, NewHandler(st, testBuild), http.MethodGet, path); code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if left <= 0 || left > want {
			t.Errorf("%s: status deadline %v away, want within %v", path, left, want)
		}
	}
	if scrapeStatusTimeout != 2*time.Second || healthStatusTimeout != time.Second {
		t.Errorf("timeouts %v/%v, want 2s/1s", scrapeStatusTimeout, healthStatusTimeout)
	}
}

func TestHealthz(t *testing.T) {
	code, body := get(t, NewHandler(fixedStatus(testStatus(), nil), testBuild), http.MethodGet, "/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthy: %d %q, want 200 \"ok\\n\"", code, body)
	}
	code, body = get(t, NewHandler(fixedStatus(vrrp.Status{}, vrrp.ErrNotRunning), testBuild), http.MethodGet, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, vrrp.ErrNotRunning.Error()) {
		t.Errorf("not running: %d %q, want 503 with the error", code, body)
	}
	h := handler(func(ctx context.Context) (vrrp.Status, error) {
		<-ctx.Done()
		return vrrp.Status{}, ctx.Err()
	}, testBuild, time.Minute, 10*time.Millisecond)
	code, body = get(t, h, http.MethodGet, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "deadline exceeded") {
		t.Errorf("wedged: %d %q, want 503 naming the timeout", code, body)
	}
}

func TestMetricsHandlerRoutes(t *testing.T) {
	h := NewHandler(fixedStatus(testStatus(), nil), testBuild)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/metrics/", http.StatusNotFound},
		{http.MethodGet, "/v1/status", http.StatusNotFound},
		{http.MethodHead, "/healthz", http.StatusOK},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
	} {
		if code, _ := get(t, h, tc.method, tc.path); code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}
}

func TestStartMetricsErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	h := http.NotFoundHandler()
	for _, addr := range []string{busy.Addr().String(), "127.0.0.1:notaport", "198.51.100.1:9654"} {
		if stop, err := Start(addr, h, nil); err == nil {
			stop(context.Background())
			t.Errorf("Start(%q): no error", addr)
		} else if !strings.Contains(err.Error(), addr) {
			t.Errorf("Start(%q): %v does not name the address", addr, err)
		}
	}
	stop, err := Start("", h, nil)
	if err != nil {
		t.Fatalf("Start(\"\"): %v", err)
	}
	if err := stop(context.Background()); err != nil {
		t.Errorf("stop of a listener that is off: %v", err)
	}
}

// listenAddr reads the bound address from Start's log line.
func listenAddr(t *testing.T, logs *bytes.Buffer) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(logs.Bytes()))
	for {
		var rec struct{ Msg, Addr string }
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("no \"metrics listening\" line with addr in the log: %v\n%s", err, logs)
		}
		if rec.Msg == "metrics listening" && rec.Addr != "" {
			return rec.Addr
		}
	}
}

func TestStartMetricsServesAndStops(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	entered, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", NewHandler(fixedStatus(testStatus(), nil), testBuild))
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done\n")
	})
	stop, err := Start("127.0.0.1:0", mux, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := listenAddr(t, &logs)

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("GET /healthz: %d %q", resp.StatusCode, body)
	}

	// A request in flight when stop is called completes.
	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{resp.StatusCode, string(b), err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- stop(context.Background()) }()

	// Wait until the listener is closed (stop has begun), then let the
	// request finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting 5s after stop was called")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if r := <-slow; r.err != nil || r.code != http.StatusOK || r.body != "done\n" {
		t.Errorf("request in flight during stop: %+v, want 200 done", r)
	}
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := stop(context.Background()); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// promtool runs Prometheus' promtool with args (from the repository root)
// and fails the test on a non-zero exit. Without promtool the test is
// skipped, unless VIPD_LAB=required (CI installs it).
func promtool(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("VIPD_LAB") == "required" {
			t.Fatal("VIPD_LAB=required but promtool is not on PATH (Debian: apt-get install prometheus)")
		}
		t.Skip("promtool not on PATH (Debian: apt-get install prometheus)")
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckMetrics(t *testing.T) {
	text := scrape(t, fixedStatus(testStatus(), nil))
	if out := promtool(t, text, "check", "metrics"); strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics reported:\n%s", out)
	}
}

func TestPromtoolAlertRules(t *testing.T) {
	promtool(t, "", "check", "rules", "deploy/prometheus/alerts.yml")
	promtool(t, "", "test", "rules", "deploy/prometheus/alerts_test.yml")
}

func TestPromtoolScrapeConfig(t *testing.T) {
	// scrape.yml is a snippet; wrap it into a whole config with the rules.
	snippet, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "scrape.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := "rule_files: [" + rules + "]\n" + string(snippet)
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := promtool(t, "", "check", "config", path)
	if !strings.Contains(out, "SUCCESS") || slices.Contains(strings.Fields(out), "FAILED") {
		t.Errorf("promtool check config:\n%s", out)
	}
}

// The metrics listener serves maxConns connections at once and answers
// the next one 503.
func TestMetricsListenerLimitsConnections(t *testing.T) {
	var logs servetest.SyncBuffer
	stop, err := Start("127.0.0.1:0", NewHandler(fixedStatus(testStatus(), nil), testBuild),
		slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	dial := servetest.Dialer(t, "tcp", listenAddr(t, bytes.NewBufferString(logs.String())))
	held := servetest.Fill(t, dial, maxConns, "/healthz")
	code, body := servetest.Request(t, dial(), "/metrics")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections to the metrics listener") {
		t.Errorf("connection %d: %d %q, want 503 saying there are too many connections", maxConns+1, code, body)
	}
	held[0].Close()
	servetest.Eventually(t, "a connection is served after one closed", func() bool {
		code, _ := servetest.Request(t, dial(), "/healthz")
		return code == http.StatusOK
	})
	if !strings.Contains(logs.String(), "refusing connections") {
		t.Errorf("no log line about the refused connection:\n%s", logs.String())
	}
	if maxConns != 16 {
		t.Errorf("maxConns = %d; README promises 16", maxConns)
	}
}

// scrapeWith GETs /metrics with the given request headers and returns the
// response, its body read whole (not decompressed).
func scrapeWith(t *testing.T, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	NewHandler(fixedStatus(testStatus(), nil), testBuild).ServeHTTP(rec, req)
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics with %v: %d\n%s", header, resp.StatusCode, body)
	}
	return resp, body
}

// A scraper that accepts gzip gets the same exposition, gzipped.
func TestMetricsGzip(t *testing.T) {
	resp, body := scrapeWith(t, map[string]string{"Accept-Encoding": "gzip"})
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", got)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("body is not gzip: %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if len(body) >= len(plain) {
		t.Errorf("gzipped body of %d bytes for %d bytes of text", len(body), len(plain))
	}
	_, want := scrapeWith(t, nil)
	if diff := cmp.Diff(vipdOnly(string(want)), vipdOnly(string(plain))); diff != "" {
		t.Errorf("gunzipped vipd_ series differ from the plain scrape (-plain +gunzipped):\n%s", diff)
	}
}

// Without an Accept header, and for a scraper that asks for the text
// format, /metrics is the text format 0.0.4 uncompressed.
func TestMetricsTextFormat(t *testing.T) {
	for _, accept := range []string{"", "text/plain;version=0.0.4;q=1,*/*;q=0.1"} {
		resp, body := scrapeWith(t, map[string]string{"Accept": accept})
		ct := resp.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8") {
			t.Errorf("Accept %q: Content-Type %q, want the text format 0.0.4", accept, ct)
		}
		if enc := resp.Header.Get("Content-Encoding"); enc != "" {
			t.Errorf("Accept %q without Accept-Encoding: Content-Encoding %q", accept, enc)
		}
		if !bytes.Contains(body, []byte("\n# TYPE vipd_vrrp_adverts_sent_total counter\n")) {
			t.Errorf("Accept %q: no text-format TYPE line for vipd_vrrp_adverts_sent_total", accept)
		}
	}
}

// A scraper that asks for OpenMetrics (as Prometheus does first) gets it:
// the content type, counter families named without _total, samples with
// it, and the # EOF terminator, and the same values as the text format.
func TestMetricsOpenMetrics(t *testing.T) {
	resp, body := scrapeWith(t, map[string]string{
		"Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75," +
			"text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
	})
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Fatalf("Content-Type %q, want OpenMetrics 1.0.0", ct)
	}
	text := string(body)
	if !strings.HasSuffix(text, "# EOF\n") {
		t.Errorf("OpenMetrics body does not end with # EOF:\n...%s", text[max(0, len(text)-200):])
	}
	for _, want := range []string{
		"\n# TYPE vipd_vrrp_adverts_sent counter\n",
		"\nvipd_vrrp_adverts_sent_total{instance=\"web\",interface=\"eth0\",vrid=\"51\"} 1234.0\n",
		"\n# TYPE vipd_vrrp_state gauge\n",
		"\nvipd_vrrp_state{instance=\"web\",interface=\"eth0\",state=\"master\",vrid=\"51\"} 1.0\n",
		"\nvipd_vip_info{description=\"legacy \\\"www\\\" alias\",instance=\"web\",interface=\"eth0\",owner=\"\",vip=\"198.18.0.101\",vrid=\"51\"} 1.0\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("OpenMetrics body lacks %q", strings.TrimSpace(want))
		}
	}

	// Every vipd_ sample has the same value in both formats.
	p := expfmt.NewTextParser(model.LegacyValidation)
	_, plain := scrapeWith(t, nil)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "vipd_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			line := name
			if len(pairs) > 0 {
				line += "{" + strings.Join(pairs, ",") + "}"
			}
			if !omHas(text, line, v) {
				t.Errorf("OpenMetrics lacks %s %v", line, v)
			}
			n++
		}
	}
	if n < 100 {
		t.Errorf("compared %d vipd_ samples; the test status has more", n)
	}
}

// omHas reports whether an OpenMetrics body has the sample series with
// value v (OpenMetrics writes integers as 1.0, the text format as 1).
func omHas(text, series string, v float64) bool {
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			got, err := strconv.ParseFloat(rest, 64)
			return err == nil && got == v
		}
	}
	return false
}
