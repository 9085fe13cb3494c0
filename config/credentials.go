package config

import (
	"cmp"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// accounts is what resolveCredentials needs of the system's user database;
// tests give it a table instead of /etc/passwd and /etc/group.
type accounts interface {
	lookupUser(name string) (*user.User, error)
	lookupUserID(uid uint32) (*user.User, error)
	lookupGroup(name string) (*user.Group, error)
	groupIDs(u *user.User) ([]string, error)
	ids() (euid, egid uint32) // vipd's own
}

// osAccounts reads the system's database through os/user, which parses
// /etc/passwd and /etc/group itself when vipd is built without cgo.
type osAccounts struct{}

func (osAccounts) lookupUser(name string) (*user.User, error) { return user.Lookup(name) }
func (osAccounts) lookupUserID(uid uint32) (*user.User, error) {
	return user.LookupId(strconv.FormatUint(uint64(uid), 10))
}
func (osAccounts) lookupGroup(name string) (*user.Group, error) { return user.LookupGroup(name) }
func (osAccounts) groupIDs(u *user.User) ([]string, error)      { return u.GroupIds() }
func (osAccounts) ids() (uint32, uint32)                        { return uint32(os.Geteuid()), uint32(os.Getegid()) }

// resolveCredentials sets Run on every hook and tracker script that has a
// user or group, its own or script_user/script_group: the numeric user,
// group and supplementary groups it runs as. A hook's or script's own user
// replaces script_user, and then the group is its own group or that user's
// primary group (script_group is not mixed with another user); its own
// group alone replaces script_group. A name that does not exist, and a
// user or group other than vipd's own while vipd is not root (it could not
// switch to it), are errors at the line that names them.
func resolveCredentials(cfg *Config, db accounts) Errors {
	r := &resolver{cfg: cfg, db: db, reported: map[Error]bool{}}
	r.euid, r.egid = db.ids()
	for i := range cfg.Instances {
		in := &cfg.Instances[i]
		for j := range in.Track.Scripts {
			s := &in.Track.Scripts[j]
			s.Run = r.resolve(s.User, s.Group)
		}
		if in.Notify != nil {
			in.Notify.Run = r.resolve(in.Notify.User, in.Notify.Group)
		}
	}
	for i := range cfg.SyncGroups {
		if n := cfg.SyncGroups[i].Notify; n != nil {
			n.Run = r.resolve(n.User, n.Group)
		}
	}
	slices.SortStableFunc(r.errs, func(a, b Error) int { return cmp.Compare(a.Line, b.Line) })
	return r.errs
}

type resolver struct {
	cfg        *Config
	db         accounts
	euid, egid uint32
	errs       Errors
	reported   map[Error]bool // script_user is resolved once per hook; report it once
}

func (r *resolver) errorf(line int, format string, args ...any) {
	e := Error{File: r.cfg.File, Line: line, Msg: fmt.Sprintf(format, args...)}
	if !r.reported[e] {
		r.reported[e] = true
		r.errs = append(r.errs, e)
	}
}

func (r *resolver) resolve(ownUser, ownGroup Account) *Credential {
	u, g := ownUser, ownGroup
	if u.Name == "" {
		u = r.cfg.ScriptUser
		if g.Name == "" {
			g = r.cfg.ScriptGroup
		}
	}
	if u.Name == "" && g.Name == "" {
		return nil // as vipd itself
	}
	c := &Credential{}
	var pu *user.User
	var err error
	if u.Name != "" {
		pu, err = r.db.lookupUser(u.Name)
		if err != nil {
			r.errorf(u.Line, "%s: %s", u.Key, lookupProblem("user", u.Name, err))
			return nil
		}
	} else {
		// A group alone: vipd's own user in that group.
		pu, err = r.db.lookupUserID(r.euid)
		if err != nil {
			pu = &user.User{Uid: strconv.FormatUint(uint64(r.euid), 10), Gid: strconv.FormatUint(uint64(r.egid), 10), Username: "uid " + strconv.FormatUint(uint64(r.euid), 10)}
		}
	}
	uid, err1 := strconv.ParseUint(pu.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(pu.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		r.errorf(u.Line, "%s: user %q has a non-numeric id (uid %q, gid %q)", u.Key, pu.Username, pu.Uid, pu.Gid)
		return nil
	}
	c.User, c.UID, c.GID = pu.Username, uint32(uid), uint32(gid)
	c.Group = strconv.FormatUint(gid, 10)
	if g.Name != "" {
		pg, err := r.db.lookupGroup(g.Name)
		if err != nil {
			r.errorf(g.Line, "%s: %s", g.Key, lookupProblem("group", g.Name, err))
			return nil
		}
		id, err := strconv.ParseUint(pg.Gid, 10, 32)
		if err != nil {
			r.errorf(g.Line, "%s: group %q has a non-numeric id %q", g.Key, g.Name, pg.Gid)
			return nil
		}
		c.Group, c.GID = pg.Name, uint32(id)
	}
	if r.euid != 0 {
		if c.UID != r.euid || c.GID != r.egid {
			at := u
			if c.UID == r.euid {
				at = g
			}
			r.errorf(at.Line, "%s: hooks and scripts cannot run as user %s (uid %d) and group %s (gid %d): vipd runs as uid %d, gid %d, not as root, and cannot switch to another user or group; run vipd as root or remove the setting",
				at.Key, c.User, c.UID, c.Group, c.GID, r.euid, r.egid)
			return nil
		}
		// vipd's own user and group: nothing to switch, and no
		// supplementary groups can be set without root.
		c.Groups = nil
		return c
	}
	c.Groups = []uint32{c.GID}
	ids, err := r.db.groupIDs(pu)
	if err != nil && u.Name != "" {
		r.errorf(u.Line, "%s: cannot read the groups of user %s: %v", u.Key, pu.Username, err)
		return nil
	}
	for _, s := range ids {
		if id, err := strconv.ParseUint(s, 10, 32); err == nil && !slices.Contains(c.Groups, uint32(id)) {
			c.Groups = append(c.Groups, uint32(id))
		}
	}
	return c
}

func lookupProblem(what, name string, err error) string {
	switch err.(type) {
	case user.UnknownUserError, user.UnknownGroupError:
		return fmt.Sprintf("no %s named %q on this system", what, name)
	}
	return fmt.Sprintf("cannot look up %s %q: %v", what, name, err)
}
