package pair

import "fmt"

// KeepalivedPIDs returns the PIDs of keepalived's parent (the process the
// lab started) and of its VRRP child (from the child's pid file, checked
// to be the parent's child at start-up), while keepalived runs on n. The
// benchmark reads their CPU time and memory from /proc.
func (n *Node) KeepalivedPIDs() (parent, vrrpChild int, err error) {
	if n.ka == nil || n.Proc == nil || n.Proc.Exited() || n.ka.child < 0 {
		return 0, 0, fmt.Errorf("keepalived is not running on %s", n.Host.Name)
	}
	return n.Proc.PID, n.ka.childPID, nil
}
