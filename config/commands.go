package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// checkCommands refuses a hook or tracker program that anyone but root or
// vipd's own user could replace or change, as keepalived's
// enable_script_security does: vipd would run what they wrote. A program
// that runs as a configured user other than root must not be changeable by
// that user either, even when it is vipd's own: the user a hook runs as is
// not trusted with what it runs (keepalived checks only what runs as root;
// vipd checks everything).
func checkCommands(cfg *Config) Errors {
	var errs Errors
	check := func(line int, what string, argv []string, run *Credential) {
		if len(argv) == 0 {
			return
		}
		if err := commandSecure(argv[0], trustFor(run)); err != nil {
			errs = append(errs, Error{File: cfg.File, Line: line, Msg: fmt.Sprintf("%s: refusing %s: %v", what, argv[0], err)})
		}
	}
	hooks := func(n *Notify, of string) {
		if n == nil {
			return
		}
		for _, h := range n.Hooks() {
			what := "notify hook of " + of
			if h.Key != "command" {
				what = "notify." + h.Key + " hook of " + of
			}
			check(n.Line, what, h.Argv, n.Run)
		}
	}
	for _, in := range cfg.Instances {
		for _, s := range in.Track.Scripts {
			check(s.Line, "track script "+s.Name, s.Command, s.Run)
		}
		hooks(in.Notify, in.Name)
	}
	for _, g := range cfg.SyncGroups {
		hooks(g.Notify, "sync group "+g.Name)
	}
	slices.SortStableFunc(errs, func(a, b Error) int { return cmp.Compare(a.Line, b.Line) })
	return errs
}

// trust is who may own the components of a program's path.
type trust struct {
	uids  map[uint32]bool
	runAs *Credential // the configured user the program runs as, if any
}

// trustFor returns the owners trusted for a program run as run (nil: as
// vipd itself): root and vipd's own user, less the user it runs as unless
// that is root.
func trustFor(run *Credential) trust {
	t := trust{uids: map[uint32]bool{0: true, uint32(os.Geteuid()): true}, runAs: run}
	if run != nil && run.UID != 0 {
		delete(t.uids, run.UID)
	}
	return t
}

// maxSymlinkHops bounds the symbolic links followed for one path, as the
// kernel does (ELOOP after 40).
const maxSymlinkHops = 40

// commandSecure walks the absolute path prog one component at a time from
// "/", following symbolic links as the kernel would, and checks that
// everything on the way is owned by a trusted user and that nobody else can
// change it:
//   - the program is a regular file writable by its owner only;
//   - each directory is writable by its owner only, or has the sticky bit
//     (like /tmp): there only the owner of an entry can rename or remove it,
//     and the next component is itself checked to be owned by a trusted
//     user;
//   - each symbolic link is owned by a trusted user, and its target is
//     walked in turn.
//
// A program that does not exist is accepted if nobody else could create
// it: its parent directory must be writable by its owner only, sticky or
// not. Running it then fails at run time, where it is reported.
func commandSecure(prog string, trusted trust) error {
	done := "/"
	if err := componentSecure(done, true, trusted); err != nil {
		return err
	}
	rest := splitPath(prog)
	othersMayCreate := false // the last directory walked is sticky and writable by others
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		if c == "." {
			continue
		}
		if c == ".." {
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			if othersMayCreate {
				return fmt.Errorf("%s does not exist, and users other than root and vipd's could create it in %s (mode %s)", next, done, modeOf(done))
			}
			return nil
		}
		if err != nil {
			return err // names the path
		}
		last := len(rest) == 0
		switch mode := fi.Mode(); {
		case mode&fs.ModeSymlink != 0:
			if err := ownerTrusted(next, fi, trusted); err != nil {
				return err
			}
			if hops++; hops > maxSymlinkHops {
				return fmt.Errorf("%s: too many levels of symbolic links", prog)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				done = "/"
			}
			rest = append(splitPath(target), rest...)
			continue
		case mode.IsDir():
			if last {
				return fmt.Errorf("%s is a directory", next)
			}
		case mode.IsRegular():
			if !last {
				return fmt.Errorf("%s is not a directory", next)
			}
		default:
			return fmt.Errorf("%s is not a regular file (mode %s)", next, mode)
		}
		if err := componentSecure(next, fi.IsDir(), trusted); err != nil {
			return err
		}
		othersMayCreate = fi.Mode()&fs.ModeSticky != 0 && fi.Mode().Perm()&0o022 != 0
		done = next
	}
	return nil
}

// componentSecure checks one directory or the program itself (not a
// symbolic link).
func componentSecure(path string, dir bool, trusted trust) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if err := ownerTrusted(path, fi, trusted); err != nil {
		return err
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o022 == 0:
		return nil
	case dir && fi.Mode()&fs.ModeSticky != 0:
		return nil // entries are checked one by one
	case dir:
		return fmt.Errorf("directory %s is writable by %s (mode %s); make it writable by its owner only", path, writers(perm), fi.Mode())
	default:
		return fmt.Errorf("%s is writable by %s (mode %s); make it writable by its owner only", path, writers(perm), fi.Mode())
	}
}

func ownerTrusted(path string, fi fs.FileInfo, trusted trust) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", path)
	}
	switch {
	case trusted.uids[st.Uid]:
		return nil
	case trusted.runAs != nil && st.Uid == trusted.runAs.UID:
		others := "root"
		if euid := uint32(os.Geteuid()); euid != 0 && trusted.uids[euid] {
			others = fmt.Sprintf("root or to the user vipd runs as (uid %d)", os.Geteuid())
		}
		return fmt.Errorf("%s is owned by %s (uid %d), the user it runs as, who could change what runs; it must belong to %s", path, trusted.runAs.User, st.Uid, others)
	}
	return fmt.Errorf("%s is owned by uid %d; it must belong to root or to the user vipd runs as (uid %d)", path, st.Uid, os.Geteuid())
}

func writers(perm fs.FileMode) string {
	switch {
	case perm&0o022 == 0o022:
		return "its group and others"
	case perm&0o020 != 0:
		return "its group"
	default:
		return "others"
	}
}

func modeOf(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return "unknown"
	}
	return fi.Mode().String()
}

// splitPath returns the non-empty components of p.
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}
