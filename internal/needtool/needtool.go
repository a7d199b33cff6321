// Package needtool finds the real programs some tests run (nats-server,
// coturn, ffmpeg): a test without its program skips, unless CONFAB_E2E is
// set, which makes the tests on real components mandatory (CI installs
// them), so a missing program fails instead of passing silently.
package needtool

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns the path of program, looked up on PATH and then at the
// extra places given (Debian puts some daemons in /usr/sbin). Without it
// the test skips, or fails under CONFAB_E2E; pkg names the Debian package
// that provides it.
func Path(t testing.TB, program, pkg string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	for _, p := range extra {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if os.Getenv("CONFAB_E2E") != "" {
		t.Fatalf("%s is not installed, and CONFAB_E2E makes the tests on real components mandatory (apt-get install %s)", program, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s)", program, pkg)
	return ""
}
