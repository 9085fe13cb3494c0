package config

import (
	"strings"
	"time"
)

// notifyHooks are the argv keys of a notify mapping, in the order the
// hooks of one state change run: the state's own, keepalived, command.
var notifyHooks = []string{"master", "backup", "fault", "stop", "keepalived", "command"}

// notify reads the hooks of an instance or a sync group. Notify.Line is
// the line of its mapping.
func (p *parser) notify(f field) *Notify {
	fs, ok := p.fields(f, "in notify", append(notifyHooks, "timeout", "user", "group")...)
	if !ok {
		return nil
	}
	qualify(fs, f.name+".")
	n := &Notify{Timeout: 10 * time.Second, Line: f.line}
	targets := map[string]*[]string{
		"command": &n.Command, "master": &n.Master, "backup": &n.Backup,
		"fault": &n.Fault, "stop": &n.Stop, "keepalived": &n.Keepalived,
	}
	any := false
	for _, key := range notifyHooks {
		if cf, ok := fs[key]; ok {
			*targets[key] = p.command(cf)
			any = true
		}
	}
	if !any {
		p.errorf(f.line, "%s: no hook; give at least one of %s", f.name, strings.Join(notifyHooks, ", "))
	}
	if df, ok := fs["timeout"]; ok {
		if d, ok := p.durationIn(df, 100*time.Millisecond, time.Hour); ok {
			n.Timeout = d
		}
	}
	n.User, n.Group = p.runAs(fs, "user", "group")
	return n
}

// runAs reads the user and group keys of fs (each may be absent). Their
// existence is checked by Load, which reads /etc/passwd and /etc/group.
func (p *parser) runAs(fs map[string]field, userKey, groupKey string) (user, group Account) {
	read := func(key, what string) Account {
		f, ok := fs[key]
		if !ok {
			return Account{}
		}
		s, ok := p.str(f)
		if !ok {
			return Account{}
		}
		if !validAccountName(s) {
			p.errorf(f.line, "%s: %q is not a valid %s name (1 to 32 bytes, no ':', '/', whitespace or NUL)", f.name, s, what)
			return Account{}
		}
		return Account{Name: s, Key: f.name, Line: f.line}
	}
	return read(userKey, "user"), read(groupKey, "group")
}

// validAccountName accepts what /etc/passwd and /etc/group can hold as a
// name: useradd's limit of 32 bytes, and none of the bytes that would
// break a line of those files or a path.
func validAccountName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		switch c {
		case ':', '/', ' ', '\t', '\n', '\v', '\f', '\r', 0:
			return false
		}
	}
	return true
}

// Hooks returns the argv lists of n that are set, each with its key, in
// the order they run for one state change: the state's own first, then
// keepalived, then command.
func (n *Notify) Hooks() []NamedCommand {
	var out []NamedCommand
	for _, h := range []NamedCommand{
		{"master", n.Master}, {"backup", n.Backup}, {"fault", n.Fault}, {"stop", n.Stop},
		{"keepalived", n.Keepalived}, {"command", n.Command},
	} {
		if len(h.Argv) > 0 {
			out = append(out, h)
		}
	}
	return out
}

// NamedCommand is one hook of a Notify: its key and its argv.
type NamedCommand struct {
	Key  string
	Argv []string
}
