package main

import (
	"fmt"
	"io"

	"github.com/vipd/vipd/internal/convert"
	"github.com/vipd/vipd/internal/kaconf"
)

// cmdConvert reads a keepalived.conf (FILE, or stdin when FILE is absent or
// "-") and writes the vipd YAML on stdout, with one
// "file:line: keyword: message" line on stderr for everything that has no
// equivalent. Exit 0: all mapped; 3: usable, something dropped; 1: the file
// cannot be read or holds no usable instance.
func cmdConvert(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert", stderr)
	host := fs.String("host", "", "host name for keepalived's @host conditional lines (default: this host's name up to the first dot)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) > 1 {
		return fmt.Errorf("unexpected argument %q (see 'vipd convert -h')", pos[1])
	}
	opt := kaconf.Options{ConfigID: *host}
	var tree *kaconf.Tree
	if len(pos) == 0 || pos[0] == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		// Includes are relative to the current directory.
		tree = kaconf.Read("-", data, opt)
	} else {
		tree, err = kaconf.ReadFile(pos[0], opt)
		if err != nil {
			return err
		}
	}
	res := convert.Convert(tree, convert.Options{})
	if res.Instances > 0 {
		if _, err := stdout.Write(res.YAML); err != nil {
			return err
		}
	}
	for _, r := range res.Reports {
		fmt.Fprintln(stderr, r.String())
	}
	if code := res.ExitCode(); code != 0 {
		return exitError{code}
	}
	return nil
}
