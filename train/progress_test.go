package train

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestProgressPlainLines: training with a non-terminal progress
// destination (a log) writes plain lines, one per epoch at least, and no
// carriage returns.
func TestProgressPlainLines(t *testing.T) {
	data := tinyData(t)
	cfg := tinyConfig(data, "dice")
	cfg.Epochs = 2
	tr, err := New(cfg, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := tr.Run(Options{Progress: &b}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "\r") {
		t.Fatalf("carriage return in log output %q", out)
	}
	for e := 1; e <= 2; e++ {
		if want := fmt.Sprintf("train dice ep %d/2 loss ", e); !strings.Contains(out, want) {
			t.Fatalf("no %q line in %q", want, out)
		}
	}
	if !strings.Contains(out, "val_dice") {
		t.Fatalf("no validation Dice in %q", out)
	}
}
