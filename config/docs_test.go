package config

import (
	"os"
	"strings"
	"testing"
)

// yamlBlocks returns the ```yaml blocks of a Markdown file.
func yamlBlocks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(b)
	for {
		i := strings.Index(rest, "```yaml\n")
		if i < 0 {
			return blocks
		}
		rest = rest[i+len("```yaml\n"):]
		j := strings.Index(rest, "```")
		if j < 0 {
			t.Fatalf("%s: a yaml block is not closed", path)
		}
		blocks = append(blocks, rest[:j])
		rest = rest[j:]
	}
}

// The configuration examples of the contract (DESIGN.md) and of the README
// must stay valid: every block that is a whole file (it lists instances and
// leaves nothing out with a "# ..." placeholder) parses without an error.
func TestDocumentedExamplesParse(t *testing.T) {
	for _, doc := range []string{"../DESIGN.md", "../README.md"} {
		n := 0
		for i, blk := range yamlBlocks(t, doc) {
			whole := strings.Contains(blk, "\ninstances:") || strings.HasPrefix(blk, "instances:")
			if !whole || strings.Contains(blk, "# ...") {
				continue
			}
			n++
			if _, err := Parse(doc, []byte(blk)); err != nil {
				t.Errorf("%s, yaml block %d: %v", doc, i+1, err)
			}
		}
		if n == 0 {
			t.Errorf("%s has no whole configuration example", doc)
		}
	}
}
