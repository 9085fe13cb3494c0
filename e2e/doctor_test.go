package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vipd/vipd/e2e/pair"
)

func doctor(t *testing.T, p *pair.Pair, n *pair.Node) (string, int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.Host.NS, p.Bin, "doctor", "--config", n.Config, "--listen", "500ms").CombinedOutput()
	return string(out), exitCode(err)
}

func TestDoctor(t *testing.T) {
	p := newPair(t, "dr")
	startPair(t, p, pair.NodeConfig{}, pair.NodeConfig{})

	// Healthy pair, seen from the backup: one master heard, no failure.
	out, code := doctor(t, p, p.B)
	if code != 0 || !strings.Contains(out, "VRID 51 advertised by 198.18.0.11 (priority 150)") ||
		!strings.Contains(out, "interface eth0 is up with carrier") || !strings.Contains(out, "sends adverts from 198.18.0.12") {
		t.Errorf("doctor on a healthy backup: exit %d\n%s", code, out)
	}

	// An alias nobody configured is reported with the command to remove it.
	_, err := p.B.Host.Run("ip", "addr", "add", "198.18.0.77/32", "dev", "eth0")
	must(t, err)
	out, _ = doctor(t, p, p.B)
	if !strings.Contains(out, "carries 198.18.0.77/32, which no vipd instance owns") {
		t.Errorf("doctor missed an undocumented alias:\n%s", out)
	}

}
