// Command reliability-report writes RELIABILITY.md, the table of vipd's
// reliability cases, from one run of them:
//
//   - the JSON lines that the e2e reliability tests append to the file named
//     by VIPD_RELIABILITY_OUT (one row per case: what was done, what was
//     asserted, the measured figures, pass or fail);
//   - optionally the `go test -v` output of that run, for its outcome and
//     total time, and to catch a test that ended without writing its row;
//   - the output of each bounded fuzzing run, for its exec count.
//
// It writes the table even when cases failed, and then exits 1.
//
//	go run ./e2e/reliability-report -in cases.jsonl -lab-log lab.log \
//	    -fuzz './vrrp FuzzUnmarshal 1000000x=fuzz-vrrp.log' -out RELIABILITY.md
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// row mirrors relRow in e2e/reliability_lab_test.go: one case's line.
type row struct {
	ID       string  `json:"id"`
	Case     string  `json:"case"`
	Done     string  `json:"done"`
	Asserted string  `json:"asserted"`
	Figure   string  `json:"figure"`
	Pass     bool    `json:"pass"`
	Test     string  `json:"test"`
	Seconds  float64 `json:"seconds"`
}

// fuzzRun is one bounded fuzzing run: the package and target, the
// -fuzztime budget it was given, and the file its `go test -fuzz` output
// went to.
type fuzzRun struct {
	pkg, target, budget, log string
}

type fuzzFlags []fuzzRun

func (f *fuzzFlags) String() string { return fmt.Sprint(*f) }

// Set takes "PKG TARGET BUDGET=LOGFILE".
func (f *fuzzFlags) Set(s string) error {
	spec, log, ok := strings.Cut(s, "=")
	fields := strings.Fields(spec)
	if !ok || len(fields) != 3 || log == "" {
		return fmt.Errorf("want \"PKG TARGET BUDGET=LOGFILE\", got %q", s)
	}
	*f = append(*f, fuzzRun{pkg: fields[0], target: fields[1], budget: fields[2], log: log})
	return nil
}

// fuzzAsserts says what each fuzz target checks, for the table.
var fuzzAsserts = map[string]string{
	"FuzzUnmarshal":         "no panic; every error is a typed drop reason; whatever parses re-marshals to as many bytes and parses again to the same advert and checksum mode",
	"FuzzParse":             "no panic; exactly one of a config or a non-empty, line-ordered list of file:line errors; an accepted config meets the schema's invariants",
	"FuzzDecodeMaintenance": "no panic; a refusal says \"bad request body\" and returns nothing else; an accepted body is one JSON object within the 4096 bytes the socket reads, with a non-empty instance; the CLI's encoding of the decoded request decodes to the same request",
}

func main() {
	in := flag.String("in", os.Getenv("VIPD_RELIABILITY_OUT"), "JSON lines written by the reliability tests")
	labLog := flag.String("lab-log", "", "the `go test -v` output of the reliability run (optional)")
	out := flag.String("out", "RELIABILITY.md", "Markdown file to write")
	var fuzz fuzzFlags
	flag.Var(&fuzz, "fuzz", "a fuzzing run, \"PKG TARGET BUDGET=LOGFILE\" with BUDGET its -fuzztime (repeatable)")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "reliability-report: -in (or VIPD_RELIABILITY_OUT) is required")
		os.Exit(2)
	}
	ok, err := run(*in, *labLog, *out, fuzz)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability-report:", err)
		os.Exit(2)
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "reliability-report: wrote %s; some cases failed\n", *out)
		os.Exit(1)
	}
	fmt.Printf("reliability-report: wrote %s; every case passed\n", *out)
}

func run(in, labLog, out string, fuzz []fuzzRun) (bool, error) {
	rows, err := readRows(in)
	if err != nil {
		return false, err
	}
	if len(rows) == 0 {
		return false, fmt.Errorf("%s: no reliability rows (did the lab run?)", in)
	}
	var lab labOutcome
	if labLog != "" {
		if lab, err = readLabLog(labLog); err != nil {
			return false, err
		}
	}
	var fuzzRows []row
	for i, f := range fuzz {
		r, err := fuzzRow(f, i)
		if err != nil {
			return false, err
		}
		fuzzRows = append(fuzzRows, r)
	}
	var b bytes.Buffer
	allOK := render(&b, rows, lab, fuzzRows, environment())
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		return false, err
	}
	return allOK, nil
}

// readRows reads the JSON lines; a case recorded twice keeps its last row.
func readRows(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	byID := map[string]row{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r row
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if r.ID == "" {
			return nil, fmt.Errorf("%s:%d: row without an id", path, n)
		}
		byID[r.ID] = r
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rows := make([]row, 0, len(byID))
	for _, r := range byID {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int { return compareIDs(a.ID, b.ID) })
	return rows, nil
}

// compareIDs orders "2" before "10" and "3a" before "3b".
func compareIDs(a, b string) int {
	na, sa := splitID(a)
	nb, sb := splitID(b)
	if na != nb {
		return na - nb
	}
	return strings.Compare(sa, sb)
}

func splitID(id string) (int, string) {
	i := 0
	for i < len(id) && id[i] >= '0' && id[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(id[:i])
	return n, id[i:]
}

// labOutcome is what the `go test -v` output says.
type labOutcome struct {
	read    bool
	ok      bool
	elapsed string   // the package's total, "95.312s"
	failed  []string // top-level tests that failed
}

var (
	okLine   = regexp.MustCompile(`^ok\s+\S+\s+(\S+)`)
	failLine = regexp.MustCompile(`^FAIL\s+\S+\s+(\S+)`)
	testFail = regexp.MustCompile(`^--- FAIL: (\S+)`)
)

func readLabLog(path string) (labOutcome, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return labOutcome{}, err
	}
	o := labOutcome{read: true}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case okLine.MatchString(line):
			o.ok, o.elapsed = true, okLine.FindStringSubmatch(line)[1]
		case failLine.MatchString(line):
			o.ok, o.elapsed = false, failLine.FindStringSubmatch(line)[1]
		case testFail.MatchString(line):
			o.failed = append(o.failed, testFail.FindStringSubmatch(line)[1])
		}
	}
	return o, nil
}

var (
	execsRE    = regexp.MustCompile(`fuzz: elapsed: ((?:\d+h)?(?:\d+m)?\d+s), execs: (\d+) \(\d+/sec\), new interesting: (\d+) \(total: (\d+)\)`)
	baselineRE = regexp.MustCompile(`gathering baseline coverage: \d+/(\d+) completed`)
)

// fuzzRow reads one fuzzing run's output.
func fuzzRow(f fuzzRun, i int) (row, error) {
	b, err := os.ReadFile(f.log)
	if err != nil {
		return row{}, err
	}
	r := row{
		ID:       "7" + string(rune('a'+i)),
		Case:     "Fuzz: " + f.target + " (" + f.pkg + ")",
		Done:     fmt.Sprintf("`go test %s -run '^$' -fuzz %s -fuzztime %s`; the corpus (testdata/fuzz, f.Add seeds and the local cache) runs first", f.pkg, f.target, f.budget),
		Asserted: fuzzAsserts[f.target],
		Test:     f.target,
	}
	text := string(b)
	var elapsed, execs, fresh, total string
	for _, m := range execsRE.FindAllStringSubmatch(text, -1) {
		elapsed, execs, fresh, total = m[1], m[2], m[3], m[4]
	}
	r.Pass = !strings.Contains(text, "--- FAIL") && regexp.MustCompile(`(?m)^ok\s`).MatchString(text)
	switch {
	case execs != "":
		// Go prints the elapsed time as a duration: 57s, 1m9s.
		d, err := time.ParseDuration(elapsed)
		if err != nil {
			return row{}, fmt.Errorf("%s: elapsed time %q: %w", f.log, elapsed, err)
		}
		r.Figure = fmt.Sprintf("%s execs in %.0f s; corpus %s entries (%s new)", thousands(execs), d.Seconds(), total, fresh)
		r.Seconds = d.Seconds()
	case baselineRE.MatchString(text):
		r.Figure = fmt.Sprintf("0 execs: stopped while running the %s corpus entries (seeds and cache)", baselineRE.FindStringSubmatch(text)[1])
	default:
		r.Figure = "no fuzzing output"
	}
	if !r.Pass {
		if m := regexp.MustCompile(`failure while testing seed corpus entry: (\S+)`).FindStringSubmatch(text); m != nil {
			r.Figure += "; failing seed " + m[1]
		}
		if m := regexp.MustCompile(`(?m)^\s+\S+_test\.go:\d+: (.*)$`).FindStringSubmatch(text); m != nil {
			r.Figure += ": " + m[1]
		}
	}
	return r, nil
}

// thousands writes 1234567 as 1,234,567.
func thousands(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// environment describes the machine and tree the run came from.
func environment() string {
	parts := []string{time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		parts = append(parts, "Linux "+unix.ByteSliceToString(u.Release[:]))
	}
	parts = append(parts, runtime.Version(), fmt.Sprintf("%d CPUs", runtime.NumCPU()))
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		parts = append(parts, "commit "+strings.TrimSpace(string(out)))
	}
	return strings.Join(parts, ", ")
}

// render writes the document and reports whether everything passed.
func render(w io.Writer, rows []row, lab labOutcome, fuzz []row, env string) bool {
	allOK := true
	fmt.Fprint(w, "# vipd reliability\n\n")
	fmt.Fprintf(w, "Generated by `make reliability` from one run (%s). Do not edit by hand: run it again.\n\n", env)
	fmt.Fprint(w, "Each case runs in the network-namespace lab (e2e/reliability_test.go): two vipd nodes "+
		"(priority 150 and 100, 100 ms adverts) and a client pinging the VIP, and checks where the VIP is, "+
		"what the client saw and that no vipd process died. Fuzz targets run for a fixed number of executions each; "+
		"their corpora are kept under each package's testdata/fuzz.\n\n")

	passed := 0
	all := append(slices.Clone(rows), fuzz...)
	for _, r := range all {
		if r.Pass {
			passed++
		} else {
			allOK = false
		}
	}
	var labSum float64
	for _, r := range rows {
		labSum += r.Seconds
	}
	fmt.Fprintf(w, "**%d of %d passed.** Lab cases: %.1f s of test time", passed, len(all), labSum)
	if lab.read {
		fmt.Fprintf(w, " (`go test` run: %s, %s)", passFail(lab.ok), lab.elapsed)
		if !lab.ok {
			allOK = false
		}
	}
	fmt.Fprint(w, ".\n\n")

	fmt.Fprint(w, "| # | Case | What was done | What was asserted | Measured | Result |\n")
	fmt.Fprint(w, "|---|---|---|---|---|---|\n")
	for _, r := range all {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n",
			cell(r.ID), cell(r.Case), cell(r.Done), cell(r.Asserted), cell(orDash(r.Figure)), result(r.Pass))
	}

	// A test that failed without leaving a row (killed by a timeout, say)
	// must not vanish from the table.
	recorded := map[string]bool{}
	for _, r := range rows {
		recorded[strings.SplitN(r.Test, "/", 2)[0]] = true
	}
	var missing []string
	for _, name := range lab.failed {
		if top := strings.SplitN(name, "/", 2)[0]; !recorded[top] && !slices.Contains(missing, top) {
			missing = append(missing, top)
		}
	}
	if len(missing) > 0 {
		allOK = false
		fmt.Fprintf(w, "\nFailed without recording a row: %s.\n", strings.Join(missing, ", "))
	}
	var failed []string
	for _, r := range all {
		if !r.Pass {
			failed = append(failed, fmt.Sprintf("%s (%s)", r.ID, r.Test))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nFailing: %s. The run's test output has the details.\n", strings.Join(failed, ", "))
	}
	return allOK
}

func passFail(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

func result(ok bool) string {
	if ok {
		return "pass"
	}
	return "**FAIL**"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
