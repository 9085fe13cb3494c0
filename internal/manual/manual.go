// Package manual is the one source of vipd's user documentation that has a
// fixed shape: the commands and their flags, and the keys of vipd.yaml.
//
// From it come `vipd --help` and each command's `-h` (cmd/vipd), the man
// pages vipd(8) and vipd.yaml(5) and the bash and zsh completions (built by
// `go run ./internal/manual/gen` for `make deb`), and the Command line tables
// of README.md and DESIGN.md and DESIGN.md's key table, which a test compares
// with what this package renders. Change the text here, then run
// `go test ./internal/manual -update` to rewrite the tables.
//
// Text is Markdown inline: backticks for code, `\|` for a bar inside a
// table cell. The package must never read files or the environment.
package manual

import (
	"fmt"
	"strings"
)

// Command is one subcommand of vipd.
type Command struct {
	Name     string   // as typed: "run"
	Args     string   // positional arguments for DESIGN.md's table: "INSTANCE on|off"
	Aliases  []string // other spellings: "--version"
	Synopsis string   // the whole line, plain text: "vipd run [--config FILE] [--socket PATH]"
	Short    string   // one line for `vipd --help` and the completions
	Flags    []Flag
	Summary  string // README.md's "does" (Markdown)
	Detail   string // DESIGN.md's "does" and vipd(8) (Markdown)
	// NotInREADME leaves the command out of README.md's table.
	NotInREADME bool
}

// Flag is one flag of a command. vipd takes it as -name or --name.
type Flag struct {
	Name    string // without dashes
	Arg     string // the value's placeholder; "" for a boolean
	Default string // the flag's default as the flag package prints it ("" for none)
	Note    string // DESIGN.md's parenthesis after the flag (Markdown), "" for none
	Help    string // the `-h` line (plain text)
}

// Key is one key of vipd.yaml (all Markdown).
type Key struct {
	Name, Type, Default, Rule string
}

// Lookup returns the command called (or aliased) name.
func Lookup(name string) (Command, bool) {
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
		for _, a := range c.Aliases {
			if a == name {
				return c, true
			}
		}
	}
	return Command{}, false
}

// Flag returns the command's flag called name.
func (c Command) Flag(name string) (Flag, bool) {
	for _, f := range c.Flags {
		if f.Name == name {
			return f, true
		}
	}
	return Flag{}, false
}

// SocketNote is said after the commands in `vipd --help` and vipd(8).
const SocketNote = "status, events and maintenance find the socket with --socket, or in the control_socket of --config FILE, or at /run/vipd/vipd.sock."

// Usage is `vipd --help`.
func Usage() string {
	var b strings.Builder
	b.WriteString("usage: vipd <command> [flags]\n\ncommands:\n")
	for _, c := range Commands {
		fmt.Fprintf(&b, "  %s\n        %s\n", strings.TrimPrefix(c.Synopsis, "vipd "), c.Short)
	}
	fmt.Fprintf(&b, "\n%s\nRun 'vipd <command> -h' for a command's flags.\n", wrap(SocketNote, 76))
	return b.String()
}

// CommandUsage is `vipd NAME -h`.
func (c Command) CommandUsage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s\n", c.Synopsis, c.Short)
	if len(c.Flags) > 0 {
		b.WriteString("\nflags:\n")
	}
	for _, f := range c.Flags {
		fmt.Fprintf(&b, "  --%s\n        %s", strings.TrimSpace(f.Name+" "+f.Arg), f.Help)
		if f.Default != "" && f.Default != "false" && f.Default != "0s" {
			fmt.Fprintf(&b, " (default %s)", f.Default)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// wrap breaks text into lines of at most width bytes at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		if n > 0 && n+1+len(w) > width {
			b.WriteString("\n")
			n = 0
		} else if n > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// cellEscape makes plain text safe in a Markdown table cell.
func cellEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// READMECommands is README.md's Command line table.
func READMECommands() string {
	var b strings.Builder
	b.WriteString("| command | does |\n|---|---|\n")
	for _, c := range Commands {
		if c.NotInREADME {
			continue
		}
		b.WriteString(row("`"+cellEscape(c.Synopsis)+"`", c.Summary))
	}
	return b.String()
}

// DesignCommands is DESIGN.md's Command line table.
func DesignCommands() string {
	var b strings.Builder
	b.WriteString("| command | flags | does |\n|---|---|---|\n")
	for _, c := range Commands {
		name := "`vipd " + cellEscape(strings.TrimSpace(c.Name+" "+c.Args)) + "`"
		if len(c.Aliases) > 0 {
			name += " (also `" + strings.Join(c.Aliases, "`, `") + "`)"
		}
		var flags []string
		for _, f := range c.Flags {
			s := "`--" + strings.TrimSpace(f.Name+" "+f.Arg) + "`"
			if f.Note != "" {
				s += " (" + f.Note + ")"
			}
			flags = append(flags, s)
		}
		fl := "—"
		if len(flags) > 0 {
			fl = strings.Join(flags, ", ")
		}
		b.WriteString(row(name, fl, c.Detail))
	}
	return b.String()
}

// DesignKeys is DESIGN.md's key table.
func DesignKeys() string {
	var b strings.Builder
	b.WriteString("| key | type | default | rule |\n|---|---|---|---|\n")
	for _, k := range Keys {
		b.WriteString(row(k.Name, k.Type, k.Default, k.Rule))
	}
	return b.String()
}

// row is one line of a Markdown table; an empty cell is "| |".
func row(cells ...string) string {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range cells {
		if c != "" {
			b.WriteString(" " + c)
		}
		b.WriteString(" |")
	}
	b.WriteString("\n")
	return b.String()
}
