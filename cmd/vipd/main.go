// Command vipd is a VRRP daemon that floats virtual IP addresses between the
// nodes of an HA pair (or group) on one Ethernet segment.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/vipd/vipd/internal/manual"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const defaultConfig = "/etc/vipd/vipd.yaml"

// usageText is `vipd --help`, from internal/manual like the man page.
var usageText = manual.Usage()

// exitError carries a process exit code up to main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	os.Exit(runIn(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runIn(args, strings.NewReader(""), stdout, stderr)
}

func runIn(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "maintenance":
		err = cmdMaintenance(args[1:], stdout, stderr)
	case "doctor":
		err = cmdDoctor(args[1:], stdout, stderr)
	case "events":
		err = cmdEvents(args[1:], stdout, stderr)
	case "convert":
		err = cmdConvert(args[1:], stdin, stdout, stderr)
	case "version", "--version", "-version":
		err = cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
	default:
		fmt.Fprintf(stderr, "vipd: unknown command %q\n\n%s", args[0], usageText)
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "vipd %s: %v\n", args[0], err)
		return 1
	}
}

// parseInterspersed parses flags that may come before or after positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// flagError is how a command ends when its flags do not parse: exit 0
// after -h or --help (the flag set printed the usage), 2 otherwise (it
// printed the error and the usage).
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return exitError{0}
	}
	return exitError{2}
}

// newFlagSet returns the flag set of command name; its usage (-h, or after
// a flag error) is the command's entry in internal/manual.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vipd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, flagSetUsage(name, fs)) }
	return fs
}

// flagSetUsage is command name's usage from internal/manual, followed by
// any flag of fs the manual does not list or gives another default, and
// any it lists that fs lacks,
// so that a flag added in one place only shows (and fails
// TestFlagsMatchManual).
func flagSetUsage(name string, fs *flag.FlagSet) string {
	c, ok := manual.Lookup(name)
	if !ok {
		c = manual.Command{Synopsis: "vipd " + name}
	}
	var b strings.Builder
	b.WriteString(c.CommandUsage())
	fs.VisitAll(func(f *flag.Flag) {
		mf, ok := c.Flag(f.Name)
		switch {
		case !ok:
			fmt.Fprintf(&b, "  --%s (not in the manual)\n        %s\n", f.Name, f.Usage)
		case mf.Default != f.DefValue:
			fmt.Fprintf(&b, "  --%s: the default is %q, the manual says %q\n", f.Name, f.DefValue, mf.Default)
		}
	})
	for _, f := range c.Flags {
		if fs.Lookup(f.Name) == nil {
			fmt.Fprintf(&b, "  --%s (in the manual, not taken)\n", f.Name)
		}
	}
	return b.String()
}

func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (see 'vipd %s -h')", pos[0], name)
	}
	return nil
}

func versionInfo() (ver, rev string) {
	ver, rev = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if err := noArgs("version", pos); err != nil {
		return err
	}
	ver, rev := versionInfo()
	fmt.Fprintf(stdout, "vipd %s (commit %s, %s, %s/%s)\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
