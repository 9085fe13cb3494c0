package manual

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the tables of README.md and DESIGN.md from this package")

// docTable is one generated table in a Markdown file, found by its header.
type docTable struct {
	file, section, header string
	render                func() string
}

var docTables = []docTable{
	{"../../README.md", "## Command line", "| command | does |", READMECommands},
	{"../../DESIGN.md", "## Command line", "| command | flags | does |", DesignCommands},
	{"../../DESIGN.md", "### Keys", "| key | type | default | rule |", DesignKeys},
}

// findTable returns where the first table starting with header after the
// heading section begins and ends in doc (byte offsets), or -1 when the
// section holds no such table or the heading is not there exactly once.
func findTable(doc, section, header string) (start, end int) {
	sec := strings.Index(doc, "\n"+section+"\n")
	if sec < 0 || strings.Count(doc, "\n"+section+"\n") != 1 {
		return -1, -1
	}
	next := strings.Index(doc[sec+1:], "\n#")
	if next < 0 {
		next = len(doc) - sec - 1
	}
	i := strings.Index(doc[sec:sec+1+next], "\n"+header+"\n")
	if i < 0 {
		return -1, -1
	}
	start = sec + i + 1
	end = start
	for end < len(doc) && doc[end] == '|' {
		nl := strings.IndexByte(doc[end:], '\n')
		if nl < 0 {
			return start, len(doc)
		}
		end += nl + 1
	}
	return start, end
}

// The README's and DESIGN.md's tables are what this package renders: a
// flag, command or key documented in one place only fails here.
func TestDocTablesMatch(t *testing.T) {
	for _, dt := range docTables {
		b, err := os.ReadFile(dt.file)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		start, end := findTable(doc, dt.section, dt.header)
		if start < 0 {
			t.Errorf("%s: no table with the header %q in the section %q", dt.file, dt.header, dt.section)
			continue
		}
		want := dt.render()
		got := doc[start:end]
		if got == want {
			continue
		}
		if *update {
			if err := os.WriteFile(dt.file, []byte(doc[:start]+want+doc[end:]), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("%s: the table %q differs from internal/manual at its line %d:\n doc:    %s\n manual: %s\n(edit internal/manual, then go test ./internal/manual -update)", dt.file, dt.header, i+1, g, w)
				break
			}
		}
	}
}

func TestFindTable(t *testing.T) {
	doc := "# x\n\n| a | b |\n|---|---|\n| 0 | 0 |\n\n## y\n\ntext\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## z\n\n| a | b |\n"
	s, e := findTable(doc, "## y", "| a | b |")
	if s < 0 || doc[s:e] != "| a | b |\n|---|---|\n| 1 | 2 |\n" {
		t.Errorf("findTable: %d, %d", s, e)
	}
	if s, _ := findTable(doc, "## z", "| c |"); s != -1 {
		t.Errorf("findTable of a missing table: %d, want -1", s)
	}
	if s, _ := findTable(doc+"\n## y\n", "## y", "| a | b |"); s != -1 {
		t.Errorf("findTable with the section twice: %d, want -1", s)
	}
}

func TestUsageListsEveryCommand(t *testing.T) {
	u := Usage()
	for _, c := range Commands {
		if !strings.Contains(u, "\n  "+strings.TrimPrefix(c.Synopsis, "vipd ")+"\n        "+c.Short+"\n") {
			t.Errorf("Usage() lacks %s:\n%s", c.Name, u)
		}
	}
	c, ok := Lookup("--version")
	if !ok || c.Name != "version" {
		t.Errorf("Lookup(--version) = %q, %v", c.Name, ok)
	}
	st, _ := Lookup("status")
	if got, want := st.CommandUsage(), "usage: vipd status [--socket PATH | --config FILE] [--json]\n"; !strings.HasPrefix(got, want) || !strings.Contains(got, "\n  --json\n        print the status as JSON\n") {
		t.Errorf("status usage:\n%s", got)
	}
}
