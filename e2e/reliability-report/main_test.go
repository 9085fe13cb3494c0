package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRowsOrdersAndKeepsTheLast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	lines := `{"id":"10","case":"ten","pass":true}
{"id":"3b","case":"three b","pass":true}
{"id":"3a","case":"first try","pass":false}

{"id":"2","case":"two","pass":true}
{"id":"3a","case":"three a","pass":true}
`
	write(t, path, lines)
	rows, err := readRows(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.ID+"="+r.Case)
	}
	if want := "2=two 3a=three a 3b=three b 10=ten"; strings.Join(got, " ") != want {
		t.Errorf("rows %q, want %q", strings.Join(got, " "), want)
	}
	write(t, path, "{\"case\":\"no id\"}\n")
	if _, err := readRows(path); err == nil {
		t.Error("a row without an id was accepted")
	}
}

func TestFuzzRow(t *testing.T) {
	dir := t.TempDir()
	passing := filepath.Join(dir, "pass.log")
	write(t, passing, `fuzz: elapsed: 0s, gathering baseline coverage: 35/35 completed, now fuzzing with 2 workers
fuzz: elapsed: 3s, execs: 65676 (21891/sec), new interesting: 2 (total: 37)
fuzz: elapsed: 1m3s, execs: 1234567 (0/sec), new interesting: 4 (total: 39)
PASS
ok  	github.com/vipd/vipd/vrrp	20.128s
`)
	r, err := fuzzRow(fuzzRun{pkg: "./vrrp", target: "FuzzUnmarshal", budget: "1000000x", log: passing}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Pass || r.ID != "7a" || r.Figure != "1,234,567 execs in 63 s; corpus 39 entries (4 new)" || r.Seconds != 63 || r.Asserted == "" {
		t.Errorf("passing run: %+v", r)
	}
	if !strings.Contains(r.Done, "-fuzztime 1000000x") {
		t.Errorf("passing run's command does not give its budget: %q", r.Done)
	}

	var flags fuzzFlags
	if err := flags.Set("./vrrp FuzzUnmarshal 1000000x=fuzz-vrrp.log"); err != nil || len(flags) != 1 ||
		flags[0] != (fuzzRun{pkg: "./vrrp", target: "FuzzUnmarshal", budget: "1000000x", log: "fuzz-vrrp.log"}) {
		t.Errorf("Set: %v, %+v", err, flags)
	}
	if err := flags.Set("./vrrp FuzzUnmarshal=fuzz-vrrp.log"); err == nil {
		t.Error("Set took a run without a budget")
	}

	failing := filepath.Join(dir, "fail.log")
	write(t, failing, `fuzz: elapsed: 0s, gathering baseline coverage: 0/21 completed
failure while testing seed corpus entry: FuzzDecodeMaintenance/one-byte-over-limit
--- FAIL: FuzzDecodeMaintenance (0.17s)
    --- FAIL: FuzzDecodeMaintenance (0.00s)
        fuzz_test.go:35: accepted a 4097-byte body
FAIL
`)
	r, err = fuzzRow(fuzzRun{pkg: "./internal/control", target: "FuzzDecodeMaintenance", budget: "200000x", log: failing}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Pass || r.ID != "7c" || !strings.Contains(r.Figure, "one-byte-over-limit") || !strings.Contains(r.Figure, "accepted a 4097-byte body") {
		t.Errorf("failing run: %+v", r)
	}
}

func TestRender(t *testing.T) {
	rows := []row{
		{ID: "1", Case: "a | b", Done: "did\nthis", Asserted: "that", Figure: "3 ms", Pass: true, Test: "TestA", Seconds: 1.5},
		{ID: "2", Case: "c", Pass: false, Test: "TestB/sub", Seconds: 2},
	}
	lab := labOutcome{read: true, ok: false, elapsed: "9.1s", failed: []string{"TestB/sub", "TestB", "TestC"}}
	var b bytes.Buffer
	if render(&b, rows, lab, nil, "env") {
		t.Error("render reported success with a failed case")
	}
	out := b.String()
	for _, want := range []string{
		"**1 of 2 passed.** Lab cases: 3.5 s of test time (`go test` run: FAIL, 9.1s).",
		"| 1 | a \\| b | did this | that | 3 ms | pass |",
		"| 2 | c |  |  | — | **FAIL** |",
		"Failed without recording a row: TestC.",
		"Failing: 2 (TestB/sub).",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if !render(&b, rows[:1], labOutcome{read: true, ok: true, elapsed: "1s"}, nil, "env") {
		t.Errorf("render reported failure for a clean run:\n%s", b.String())
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
