package report

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPct(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{0, 1}, {50, 5}, {95, 10}, {100, 10}} {
		if got := Pct(s, tc.p); got != tc.want {
			t.Errorf("Pct(1..10, %d) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := Pct([]time.Duration{7}, 95); got != 7 {
		t.Errorf("Pct of one value = %d, want 7", got)
	}
}

func TestMs(t *testing.T) {
	if got := Ms(305100 * time.Microsecond); got != "305.1 ms" {
		t.Errorf("Ms = %q", got)
	}
}

func TestReplaceSection(t *testing.T) {
	const b, e = "<!-- x:begin -->", "<!-- x:end -->"
	path := filepath.Join(t.TempDir(), "r.md")
	read := func() string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}

	// A missing file is created with the section.
	if err := ReplaceSection(path, b, e, "one\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), b+"\none\n"+e+"\n"; got != want {
		t.Fatalf("new file:\n%q\nwant\n%q", got, want)
	}

	// Text before and after the markers is kept; the section is replaced.
	if err := os.WriteFile(path, []byte("# head\n\n"+b+"\nold\nlines\n"+e+"\n\n## tail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceSection(path, b, e, "new"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# head\n\n"+b+"\nnew\n"+e+"\n\n## tail\n"; got != want {
		t.Fatalf("replaced:\n%q\nwant\n%q", got, want)
	}

	// Without markers the section is appended after a blank line.
	if err := os.WriteFile(path, []byte("# head\nbody"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceSection(path, b, e, "s\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# head\nbody\n\n"+b+"\ns\n"+e+"\n"; got != want {
		t.Fatalf("appended:\n%q\nwant\n%q", got, want)
	}

	// One marker alone is refused and the file left as it was.
	if err := os.WriteFile(path, []byte("x\n"+e+"\n"+b+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceSection(path, b, e, "s"); err == nil {
		t.Fatal("markers out of order: no error")
	}
	if got := read(); got != "x\n"+e+"\n"+b+"\n" {
		t.Fatalf("file changed after an error: %q", got)
	}
}
