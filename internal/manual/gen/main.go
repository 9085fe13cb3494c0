// Command gen writes vipd's man pages and shell completions from
// internal/manual into a directory: vipd.8, vipd.yaml.5, vipd.bash (bash
// completion) and _vipd (zsh). `make deb` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vipd/vipd/internal/manual"
)

func main() {
	out := flag.String("out", ".", "directory to write into")
	version := flag.String("version", "dev", "vipd's version, for the pages' footer")
	date := flag.String("date", "", "the pages' date (YYYY-MM-DD)")
	example := flag.String("example", "", "a configuration file to show in vipd.yaml(5)")
	flag.Parse()
	if err := gen(*out, *version, *date, *example); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func gen(out, version, date, example string) error {
	var ex string
	if example != "" {
		b, err := os.ReadFile(example)
		if err != nil {
			return err
		}
		ex = string(b)
	}
	files := map[string]string{
		"vipd.8":      manual.Page8(version, date),
		"vipd.yaml.5": manual.Page5(version, date, ex),
		"vipd.bash":   manual.Bash(),
		"_vipd":       manual.Zsh(),
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(out, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
