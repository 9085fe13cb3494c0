// Package config reads vipd's YAML configuration file into a validated
// Config.
//
// It owns the schema: which keys exist, their types, their defaults and
// the limits RFC 5798 and RFC 3768 put on them, plus the checks that span
// instances (unique names, unique VRIDs per interface, each VIP in one
// instance only). Every problem is reported as an Error naming the file and
// the line, and all of them are reported at once, so that `vipd check` and a
// failed reload show the whole list rather than one fix per attempt.
//
// The package must never do I/O beyond reading the file it is given: it does
// not look at interfaces, addresses or sockets (whether eth0 exists or a VIP
// is already configured is the daemon's business at run time). It must never
// return a partial result either: a Config comes back only when the whole
// file is valid, and otherwise the caller gets nil and the full list of
// errors, so that a bad reload can keep the running configuration intact.
package config
