package report

import (
	"bufio"
	"context"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium returns the path of a Chromium binary or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("chromium not installed (Debian: apt-get install chromium); skipping the headless report check")
	return ""
}

// runChromium loads page headless with the given extra flags and returns
// stdout and stderr. Flags keep Chromium off the network and away from the
// user's profile.
func runChromium(t *testing.T, bin, page string, extra ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}, extra...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// pageConsoleMessages picks out of Chromium's stderr the lines that report
// the page's own console output or uncaught exceptions. Chromium logs every
// console message of a page as "…:CONSOLE:<line>] "<text>", source: <url>
// (<line>)" (at INFO level whatever the message's level, so the level
// cannot be trusted) and uncaught exceptions as such a line with
// "Uncaught …". The report has no scripts and is the only file:// page
// loaded, so any console line whose source is a file:// URL (matched on the
// scheme, not the path, which Chromium may percent-encode), or any
// "Uncaught" line, is a fault.
// Everything else on stderr is Chromium's own infrastructure noise in a
// container — D-Bus connection failures, sandbox and GPU-process warnings,
// the Debian wrapper's shell message — and is ignored.
func pageConsoleMessages(stderr string) []string {
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		l := sc.Text()
		if (strings.Contains(l, ":CONSOLE") && strings.Contains(l, "source: file://")) ||
			strings.Contains(l, "Uncaught") || strings.Contains(l, "ERROR:CONSOLE") {
			msgs = append(msgs, l)
		}
	}
	return msgs
}

func TestPageConsoleFilter(t *testing.T) {
	log := `/usr/bin/chromium: 9: [: 25276063744: unexpected operator
[1:2:1127/231602.772375:ERROR:dbus/bus.cc:405] Failed to connect to the bus: Failed to connect to socket /run/dbus/system_bus_socket
[3:3:1127/231602.799037:WARNING:sandbox/policy/linux/sandbox_linux.cc:404] InitializeSandbox() called with multiple threads in process gpu-process.
[4:4:1127/231615.002089:INFO:CONSOLE:1] "boom", source: file:///r/index.html (1)
[4:4:1127/231615.002216:INFO:CONSOLE:1] "Uncaught ReferenceError: f is not defined", source: file:///elsewhere.html (1)
[4:4:1127/231615.002216:INFO:CONSOLE:0] "chrome-internal", source: chrome://newtab/ (0)`
	got := pageConsoleMessages(log)
	if len(got) != 2 || !strings.Contains(got[0], "boom") || !strings.Contains(got[1], "Uncaught") {
		t.Errorf("filter kept %q", got)
	}
}

// TestReportInChromium renders a sample report in headless Chromium: the
// page must load without console messages, its DOM must hold the results
// tables and the plot's <img>, and the screenshot must show the table
// (header background colour) and the size plot (its first series' colour).
func TestReportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skipping headless Chromium")
	}
	bin := chromium(t)
	dir := outDir(t)
	out, err := filepath.Abs(filepath.Join(dir, "report"))
	if err != nil {
		t.Fatal(err)
	}
	if err := HTML(out, sampleReport(t, dir)); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(out, "index.html")

	dom, stderr := runChromium(t, bin, page, "--dump-dom")
	for _, want := range []string{`<table class="results" data-spread="std">`, `<td>0.85 ± 0.02</td>`,
		`<img src="assets/001-size.png" alt="Dice vs training size">`, `<table class="comparison">`, `<details class="run">`} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	if msgs := pageConsoleMessages(stderr); len(msgs) > 0 {
		t.Errorf("console messages from the page:\n%s", strings.Join(msgs, "\n"))
	}

	shot := filepath.Join(dir, "shot.png")
	os.Remove(shot)
	_, stderr = runChromium(t, bin, page, "--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars")
	if msgs := pageConsoleMessages(stderr); len(msgs) > 0 {
		t.Errorf("console messages from the page:\n%s", strings.Join(msgs, "\n"))
	}
	img := readPNG(t, shot)
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Fatalf("screenshot %v", b)
	}
	// Not blank: many distinct colours in the upper half (tables, plot).
	top := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 1280, 1500))
	distinct := map[color.RGBA]bool{}
	b := top.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bb, _ := top.At(x, y).RGBA()
			distinct[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bb >> 8), 255}] = true
		}
	}
	if len(distinct) < 50 {
		t.Errorf("screenshot nearly blank: %d distinct colours", len(distinct))
	}
	// The table header background (#eef3f8) and the size plot's first
	// series (Okabe–Ito blue, antialiasing tolerated) are on screen.
	t.Logf("screenshot %s: %d distinct colours", shot, len(distinct))
	if n := countColour(top, color.RGBA{0xee, 0xf3, 0xf8, 0xff}, 1); n < 2000 {
		t.Errorf("table header colour: %d pixels", n)
	} else {
		t.Logf("table header colour: %d pixels", n)
	}
	if n := countColour(top, seriesColour(0), 10); n < 100 {
		t.Errorf("size plot series colour: %d pixels", n)
	} else {
		t.Logf("size plot series colour: %d pixels", n)
	}
}
